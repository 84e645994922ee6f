"""Distributed mode (WORK_MODE=distributed): the work as procrastinate tasks on PostgreSQL.

Each task is a thin wrapper around the plain async function the embedded tick calls too (sync_user +
after_sync, train_users_now, send_digest, refresh_candidates). A periodic scheduler — deferred once
per cron tick by whichever worker gets there first (procrastinate dedupes periodic defers in the
database) — reads what is due from the database and defers one job per user, training shard or digest.

Correct with many workers:
- `lock`: a job waits while another job with the same lock runs: one sync of a user at a time (the
  cookie refresh is inside the sync), one training pass of a shard, one sender per digest.
- `queueing_lock`: at most one waiting job per user/shard/digest, however often the scheduler runs.
- A worker that stops sending heartbeats is dead: the recovery task hands its running jobs back to
  the queue (procrastinate's stalled-job recovery), and every body is idempotent (a sync no longer
  due is skipped; a digest resumes with its undelivered picks; a training pass trains whoever is due).
- Transient failures raise and are retried with exponential backoff.
"""

from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import procrastinate
from procrastinate.exceptions import AlreadyEnqueued
from procrastinate.jobs import DeleteJobCondition, Status
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from bilibili import BilibiliError, RiskControl
from jobs.digest import DigestReport, claim_due_digests, send_digest
from jobs.metrics import JOBS_DONE, SYNC_SECONDS, TRAIN_SECONDS
from jobs.onboarding import first_sync_and_train, sync_the_rest
from jobs.schedule import after_sync
from jobs.sync import candidate_refresh_due, refresh_candidates, sync_user
from jobs.training import rebuild_shared, rebuild_twotower, shared_due, train_users_now, twotower_due
from services import Services
from settings import Settings
from storage import picks, users
from storage.db import Database
from storage.models import DigestStatus

log = logging.getLogger(__name__)

QUEUES = ("onboard", "sync", "train", "digest")
ONBOARD_QUEUE = "onboard"  # a user who just logged in waits for their first picks: served first
SCHEDULE_QUEUE = "schedule"  # the scheduler and the stalled-job recovery; every worker listens to it
PRUNE_CRON = "17 * * * *"  # finished jobs past FAILED_JOBS_KEEP_DAYS go once an hour
SYNC_SCHEDULE_LIMIT = 10_000  # due users deferred per scheduler run
# A worker takes the highest priority first: the scheduler and recovery never wait behind thousands
# of syncs; a user who just logged in waits for their first picks; a digest has a time the user
# expects it; a retrain makes picks better; the rest of a first sync has a user watching its status;
# syncs can wait.
PRIORITY = {"schedule": 30, "onboard": 25, "digest": 20, "train": 10, "sync_now": 8, "onboard_rest": 5, "sync": 0}


class TransientFailure(Exception):
    """Worth another try later (a digest Telegram did not take all of, say)."""


RETRY = procrastinate.RetryStrategy(
    max_attempts=6,
    exponential_wait=2,
    retry_exceptions=[TransientFailure, OperationalError, BilibiliError, OSError],
)


@dataclass
class Runtime:
    """What a task needs from its process; the worker hands it over as procrastinate context."""

    services: Services
    bot: Any  # telegram.Bot (with the shared-pace rate limiter); None on processes that never send
    train_shards: int


def _runtime(context: procrastinate.JobContext) -> Runtime:
    return context.additional_context["runtime"]


def libpq_url(database_url: str) -> str:
    """postgresql+psycopg://… (SQLAlchemy) → postgresql://… (libpq, what procrastinate's pool takes)."""
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


def build_app(settings: Settings) -> procrastinate.App:
    """The procrastinate app with BiliPick's tasks; the scheduler's cron comes from SCHEDULER_CRON."""
    connector = procrastinate.PsycopgConnector(conninfo=libpq_url(settings.storage.resolved_database_url))
    # A succeeded job's row goes when it finishes (the scheduler alone leaves thousands a day);
    # failed ones stay FAILED_JOBS_KEEP_DAYS for a look (`prune_finished_jobs`).
    keep = settings.work.keep_succeeded_jobs
    delete = DeleteJobCondition.NEVER if keep else DeleteJobCondition.SUCCESSFUL
    app = procrastinate.App(connector=connector, worker_defaults={"delete_jobs": delete})
    _register(app, settings)
    return app


ONBOARD_SLOTS = 1  # jobs of the onboard queue a worker runs besides its --concurrency


async def run_worker_loops(app: procrastinate.App, queues: list[str], concurrency: int, **options: Any) -> None:
    """procrastinate's worker on `queues` with `concurrency` slots until a signal stops it; when it
    serves the onboard queue, also a slot for onboarding alone: priorities order the waiting jobs,
    but a login must not wait until one of the slots long syncs and training passes hold frees up."""
    main = asyncio.ensure_future(app.run_worker_async(queues=queues, concurrency=concurrency, **options))
    if ONBOARD_QUEUE not in queues:
        await main
        return
    reserved_options = {**options, "install_signal_handlers": False}  # the main loop stops on signals
    reserved = asyncio.ensure_future(
        app.run_worker_async(queues=[ONBOARD_QUEUE], concurrency=ONBOARD_SLOTS, name="onboard", **reserved_options)
    )
    try:
        await main  # returns on SIGTERM/SIGINT (its signal handlers)
    finally:
        reserved.cancel()  # procrastinate stops gracefully: the running onboarding finishes first
        try:
            await reserved
        except asyncio.CancelledError:
            pass
        except Exception:  # noqa: BLE001 - it died early; the other slots served the onboarding meanwhile
            log.exception("the onboarding slot's worker failed")


MIGRATION_RECORD = "bilipick_procrastinate_migrations"  # procrastinate keeps no record of its own


def ensure_queue_schema(db: Database, migrations_dir: Path | None = None) -> list[str]:
    """procrastinate's tables at the installed procrastinate's schema; the migrations applied now.

    A fresh database gets the full schema, with every migration of the installed release recorded
    as applied (in MIGRATION_RECORD). Tables that predate the record were made by this release's
    schema script (the only way BiliPick ever made them) and are recorded the same way. Then each
    migration file not yet recorded is applied in name (= version) order, each in its own transaction
    with its record, so a crash leaves no half-applied migration. A session advisory lock keeps two
    processes starting together from both migrating. procrastinate's "pre" and "post" migrations of
    a release are applied together: stop the old workers before starting new ones across a release
    that has "post" migrations (README, "Upgrades").
    """
    from procrastinate.schema import SchemaManager

    folder = Path(migrations_dir or SchemaManager.get_migrations_path())
    available = sorted(path.name for path in folder.glob("*.sql"))
    applied: list[str] = []
    with db.engine.connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(hashtext('bilipick:procrastinate-schema'))"))
        conn.commit()
        try:
            recorded = _baseline_queue_schema(conn, available)
            for name in available:
                if name in recorded:
                    continue
                _run_script(conn, (folder / name).read_text(encoding="utf-8"))
                conn.execute(text(f"INSERT INTO {MIGRATION_RECORD} (name) VALUES (:name)"), {"name": name})
                conn.commit()
                applied.append(name)
                log.info("procrastinate migration %s applied", name)
        finally:
            conn.rollback()
            conn.execute(text("SELECT pg_advisory_unlock(hashtext('bilipick:procrastinate-schema'))"))
            conn.commit()
    return applied


def _baseline_queue_schema(conn: Any, available: list[str]) -> set[str]:
    """The record table; on a fresh database the full schema. The names recorded as applied."""
    from procrastinate.schema import SchemaManager

    conn.execute(
        text(
            f"CREATE TABLE IF NOT EXISTS {MIGRATION_RECORD} "
            "(name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
    )
    fresh = conn.execute(text("SELECT to_regclass('procrastinate_jobs')")).scalar() is None
    if fresh:
        _run_script(conn, SchemaManager.get_schema())
        log.info("procrastinate schema applied")
    recorded = set(conn.execute(text(f"SELECT name FROM {MIGRATION_RECORD}")).scalars())
    if fresh or not recorded:  # the schema script of this release: everything up to now is in it
        conn.execute(
            text(f"INSERT INTO {MIGRATION_RECORD} (name) SELECT unnest(CAST(:names AS text[])) ON CONFLICT DO NOTHING"),
            {"names": available},
        )
        recorded |= set(available)
    conn.commit()
    return recorded


def _run_script(conn: Any, script: str) -> None:
    """A SQL script as it is: no parameters, so its % signs stay literal."""
    with conn.connection.cursor() as cursor:
        cursor.execute(script)


async def _defer(task: procrastinate.tasks.Task, lock: str | None, queueing_lock: str, **kwargs: Any) -> bool:
    """True when deferred; False when the same job already waits (its queueing lock)."""
    try:
        await task.configure(lock=lock, queueing_lock=queueing_lock).defer_async(**kwargs)
        return True
    except AlreadyEnqueued:
        return False


def _register(app: procrastinate.App, settings: Settings) -> None:
    work = settings.work

    @app.task(name="sync_user", queue="sync", priority=PRIORITY["sync"], retry=RETRY, pass_context=True)
    async def sync_user_task(context: procrastinate.JobContext, user_id: int) -> None:
        rt = _runtime(context)
        await sync_due_user(rt.services, rt.bot, user_id, retried=context.job.attempts > 0)

    @app.task(name="train_shard", queue="train", priority=PRIORITY["train"], retry=RETRY, pass_context=True)
    async def train_shard_task(context: procrastinate.JobContext, shard: int) -> None:
        rt = _runtime(context)
        await train_due_shard(rt.services, shard, rt.train_shards)

    @app.task(name="rebuild_shared", queue="train", priority=PRIORITY["train"], retry=RETRY, pass_context=True)
    async def rebuild_shared_task(context: procrastinate.JobContext) -> None:
        await rebuild_shared(_runtime(context).services)

    # The two-tower recall model: one build for all shards, as the shared signals.
    @app.task(name="rebuild_twotower", queue="train", priority=PRIORITY["train"], retry=RETRY, pass_context=True)
    async def rebuild_twotower_task(context: procrastinate.JobContext) -> None:
        await rebuild_twotower(_runtime(context).services)

    @app.task(name="refresh_candidates", queue="sync", priority=PRIORITY["train"], retry=RETRY, pass_context=True)
    async def refresh_candidates_task(context: procrastinate.JobContext) -> None:
        svc = _runtime(context).services
        try:
            with svc.bili.refusing_pauses():  # no worker slot sleeps out a risk pause
                await refresh_candidates(svc)  # at most every few hours (in the DB)
        except RiskControl:
            log.info("job=refresh_candidates: bilibili risk pause, the next scheduler run defers it again")

    @app.task(name="send_digest", queue="digest", priority=PRIORITY["digest"], retry=RETRY, pass_context=True)
    async def send_digest_task(context: procrastinate.JobContext, user_id: int, local_date: str) -> None:
        rt = _runtime(context)
        await send_claimed_digest(rt.services, rt.bot, user_id, local_date)

    # The first part of a new user's first sync (quick sync, first model, "first picks ready"), deferred
    # by the front after the QR confirm; `user:<id>`: no other sync of the user runs meanwhile.
    @app.task(name="onboard_user", queue=ONBOARD_QUEUE, priority=PRIORITY["onboard"], retry=RETRY, pass_context=True)
    async def onboard_task(context: procrastinate.JobContext, user_id: int, message_id: int | None = None) -> None:
        rt = _runtime(context)

        async def defer_rest(msg_id: int | None, version: int, trained_on: int) -> None:
            # Queueing lock `sync:<id>`: the scheduler sees the user's sync queued and adds none.
            await _defer(
                onboard_rest_task,
                f"user:{user_id}",
                f"sync:{user_id}",
                user_id=user_id,
                message_id=msg_id,
                version=version,
                trained_on=trained_on,
            )

        await onboard_user(rt.services, rt.bot, user_id, message_id, defer_rest, retried=context.job.attempts > 0)

    # The rest of that first sync (older history, every folder, retrains as it grows): a sync-queue job,
    # so the urgent slot is free again once the first picks are out.
    @app.task(name="onboard_rest", queue="sync", priority=PRIORITY["onboard_rest"], retry=RETRY, pass_context=True)
    async def onboard_rest_task(
        context: procrastinate.JobContext, user_id: int, message_id: int | None, version: int, trained_on: int
    ) -> None:
        rt = _runtime(context)
        await sync_rest_of_onboarding(rt.services, rt.bot, user_id, message_id, version, trained_on)

    # /sync: the user watches its status message (the front sent it; the worker edits it by id).
    # Above the scheduled syncs; `user:<id>`: never beside another sync of the user.
    @app.task(name="sync_now", queue="sync", priority=PRIORITY["sync_now"], retry=RETRY, pass_context=True)
    async def sync_now_task(context: procrastinate.JobContext, user_id: int, message_id: int | None = None) -> None:
        rt = _runtime(context)
        await sync_user_now(rt.services, rt.bot, user_id, message_id)

    tasks = {
        "sync": sync_user_task,
        "train": train_shard_task,
        "shared": rebuild_shared_task,
        "twotower": rebuild_twotower_task,
        "refresh": refresh_candidates_task,
        "digest": send_digest_task,
    }

    @app.periodic(cron=work.scheduler_cron, periodic_id="scheduler")
    # `lock`: one scheduler run at a time (a run over many users outlasts a short cron period).
    @app.task(
        name="schedule",
        queue=SCHEDULE_QUEUE,
        priority=PRIORITY["schedule"],
        lock="schedule",
        queueing_lock="schedule",
        pass_context=True,
    )
    async def schedule_task(context: procrastinate.JobContext, timestamp: int) -> None:
        await schedule_due_work(_runtime(context), tasks)

    @app.periodic(cron=work.scheduler_cron, periodic_id="recover")
    @app.task(
        name="recover_stalled",
        queue=SCHEDULE_QUEUE,
        priority=PRIORITY["schedule"],
        queueing_lock="recover",
        pass_context=True,
    )
    async def recover_task(context: procrastinate.JobContext, timestamp: int) -> None:
        # No `lock` here: a recovery killed mid-run must not block every later one.
        await recover_stalled_jobs(context.app, work.stalled_after_s)

    @app.periodic(cron=PRUNE_CRON, periodic_id="prune")
    @app.task(
        name="prune_finished_jobs",
        queue=SCHEDULE_QUEUE,
        priority=PRIORITY["schedule"],
        queueing_lock="prune",
        pass_context=True,
    )
    async def prune_task(context: procrastinate.JobContext, timestamp: int) -> None:
        await prune_finished_jobs(context.app, work.failed_jobs_keep_days)


async def defer_onboarding(app: procrastinate.App, user_id: int, message_id: int | None) -> bool:
    """The front, after a QR login: a worker runs the first sync (`message_id`: the status message
    the front sent, which the worker edits). False when one already waits for this user."""
    task = app.tasks["onboard_user"]
    return await _defer(task, f"user:{user_id}", f"onboard:{user_id}", user_id=user_id, message_id=message_id)


async def defer_sync_now(app: procrastinate.App, user_id: int, message_id: int | None) -> bool:
    """The front, on /sync: a worker syncs the user now, editing the status message `message_id`.
    False when one already waits for this user."""
    task = app.tasks["sync_now"]
    return await _defer(task, f"user:{user_id}", f"sync_now:{user_id}", user_id=user_id, message_id=message_id)


# The bodies: plain functions over the same building blocks the embedded tick uses.


def _onboarding_view(svc: Services, bot: Any, user_id: int, message_id: int | None):
    from delivery.onboarding import BotOnboardingView

    user = users.get_user_by_id(svc.db, user_id)
    if user is None or user.credentials is None or user.session_dead or bot is None:
        return None  # logged out or forgotten meanwhile: nothing to onboard
    return BotOnboardingView(bot, user.chat_id, user.language, message_id)


async def onboard_user(
    svc: Services, bot: Any, user_id: int, message_id: int | None, defer_rest: Any, retried: bool = False
) -> None:
    """The first part of a first sync on a worker, as the front runs it in embedded mode; the rest is
    handed to `defer_rest(message_id, version, trained_on)`. A retried job (its worker died) edits the
    same status message; if it never finishes, ONBOARDING_HOLD lets the scheduled sync take over."""
    if (view := _onboarding_view(svc, bot, user_id, message_id)) is None:
        return

    async def rest(version: int, trained_on: int) -> None:
        await defer_rest(view.message_id, version, trained_on)

    ready = await first_sync_and_train(svc, user_id, view, rest, retried=retried)
    JOBS_DONE.labels("onboard_user", "ok" if ready else "failed").inc()


async def sync_rest_of_onboarding(
    svc: Services, bot: Any, user_id: int, message_id: int | None, version: int, trained_on: int
) -> None:
    if (view := _onboarding_view(svc, bot, user_id, message_id)) is None:
        return
    await sync_the_rest(svc, user_id, view, version, trained_on)
    JOBS_DONE.labels("onboard_rest", "ok").inc()


async def sync_user_now(svc: Services, bot: Any, user_id: int, message_id: int | None) -> None:
    """/sync on a worker: the user's sync now (due or not), as the front runs it in embedded mode.
    A risk pause is not slept out in a worker slot: the message says when, the user stays due."""
    from jobs.sync_now import sync_now

    if (view := _onboarding_view(svc, bot, user_id, message_id)) is None:
        return
    if svc.bili.throttle.paused:
        users.postpone_sync(svc.db, user_id, svc.now() + math.ceil(svc.bili.throttle.pause_left_s))
        await view.status("syncnow_limited", minutes=max(1, math.ceil(svc.bili.throttle.pause_left_s / 60)))
        return
    with svc.bili.refusing_pauses():
        report = await sync_now(svc, user_id, view)
    SYNC_SECONDS.observe(report.seconds)
    JOBS_DONE.labels("sync_now", "ok" if report.ok else "failed").inc()


async def sync_due_user(svc: Services, bot: Any, user_id: int, retried: bool = False) -> None:
    """Sync one user if still due (a job deferred twice, or retried after a crash, syncs once).

    `retried`: an earlier attempt failed, perhaps after storing the new behaviour; this attempt then
    finds nothing new, so it asks for the retrain that attempt never got to."""
    user = users.get_user_by_id(svc.db, user_id)
    if user is None or user.credentials is None or user.session_dead:
        return
    if user.next_sync_at is None or user.next_sync_at > svc.now():
        JOBS_DONE.labels("sync_user", "not_due").inc()
        return
    # A risk pause (bilibili's, up to 30 min) is not waited out in a worker slot: the scheduler, the
    # digests and training would wait behind every sync sleeping it out. The slot goes back instead.
    if svc.bili.throttle.paused:
        return _after_risk_pause(svc, user_id)
    with svc.bili.refusing_pauses():
        report = await sync_user(svc, user_id)
    SYNC_SECONDS.observe(report.seconds)
    if report.error is not None and report.error.startswith("risk_control") and svc.bili.throttle.paused:
        if report.new_items or retried:  # what it stored before the pause still gets its retrain
            users.mark_training_due(svc.db, user_id, at=svc.now())
        return _after_risk_pause(svc, user_id)
    JOBS_DONE.labels("sync_user", "ok" if report.ok else "failed").inc()
    if after_sync(svc, user_id, report) and bot is not None:  # plans the next sync (or the retry)
        await _tell_session_dead(bot, user)
    if retried and report.ok:
        users.mark_training_due(svc.db, user_id, at=svc.now())
    if not report.ok:
        log.info("job=sync user=%d error=%s (next try planned)", user_id, report.error)


def _after_risk_pause(svc: Services, user_id: int) -> None:
    """Sync again when bilibili's risk pause ends; not a failure of this user's (no backoff)."""
    users.postpone_sync(svc.db, user_id, svc.now() + math.ceil(svc.bili.throttle.pause_left_s))
    JOBS_DONE.labels("sync_user", "risk_paused").inc()


async def _tell_session_dead(bot: Any, user) -> None:
    from delivery.i18n import t

    try:
        await bot.send_message(user.chat_id, t(user.language, "session_dead"))
    except Exception as exc:  # noqa: BLE001 - a notice must not fail the sync
        log.info("notice not delivered: %s", type(exc).__name__)


async def train_due_shard(svc: Services, shard: int, shards: int) -> None:
    """Train the due users of one shard (user id mod shards) in one batched pass."""
    due = [u.id for u in users.users_due_training(svc.db, svc.now()) if u.id % shards == shard]
    if not due:
        return
    report = await train_users_now(svc, due)
    TRAIN_SECONDS.observe(report.seconds)
    JOBS_DONE.labels("train_shard", "ok").inc()


async def send_claimed_digest(svc: Services, bot: Any, user_id: int, local_date: str) -> None:
    digest = picks.get_digest(svc.db, user_id, local_date)
    if digest is None or digest.status != DigestStatus.CLAIMED:
        return  # sent, skipped or blocked already: exactly once
    report = DigestReport()
    sent = await send_digest(svc, bot, digest, report)
    JOBS_DONE.labels("send_digest", "sent" if sent else "not_sent").inc()
    if not sent and report.failures:
        raise TransientFailure(f"digest {digest.id}: {', '.join(report.errors)}")


async def schedule_due_work(rt: Runtime, tasks: dict[str, procrastinate.tasks.Task]) -> dict[str, int]:
    """The distributed tick: defer a job for each due user, training shard and claimed digest."""
    svc, now = rt.services, rt.services.now()
    deferred = {"sync": 0, "train": 0, "digest": 0}
    if candidate_refresh_due(svc):  # the job itself would find nothing to do (most runs)
        await _defer(tasks["refresh"], "candidates", "candidates")
    queued = queued_locks(svc.db, "sync:")  # waiting or running: still due until it finishes
    for user in users.users_due_sync(svc.db, now, limit=SYNC_SCHEDULE_LIMIT):
        if f"sync:{user.id}" not in queued:
            deferred["sync"] += await _defer(tasks["sync"], f"user:{user.id}", f"sync:{user.id}", user_id=user.id)
    due_training = users.users_due_training(svc.db, now)
    for shard in sorted({u.id % rt.train_shards for u in due_training}):
        deferred["train"] += await _defer(tasks["train"], f"train:{shard}", f"train:{shard}", shard=shard)
    if shared_due(svc):  # on their own schedule (one build for all shards), or dropped by a /forget
        await _defer(tasks["shared"], "train:shared", "train:shared")
    if twotower_due(svc):
        await _defer(tasks["twotower"], "train:twotower", "train:twotower")
    for digest in await claim_due_digests(svc, DigestReport()):
        lock = f"digest:{digest.user_id}:{digest.local_date}"
        deferred["digest"] += await _defer(
            tasks["digest"], lock, lock, user_id=digest.user_id, local_date=digest.local_date
        )
    if any(deferred.values()):
        log.info("job=schedule deferred sync=%d train=%d digest=%d", *deferred.values())
    return deferred


def queued_locks(db: Database, prefix: str) -> set[str]:
    """Queueing locks of the jobs waiting or running, so the scheduler skips them in one query."""
    with db.engine.connect() as conn:
        return set(
            conn.execute(
                text(
                    "SELECT queueing_lock FROM procrastinate_jobs WHERE status IN ('todo', 'doing') "
                    "AND queueing_lock LIKE :prefix"
                ),
                {"prefix": prefix + "%"},
            ).scalars()
        )


async def recover_stalled_jobs(app: procrastinate.App, stalled_after_s: float) -> int:
    """Jobs of workers silent for `stalled_after_s` go back to the queue (another worker runs them)."""
    recovered = 0
    for job in await app.job_manager.get_stalled_jobs(seconds_since_heartbeat=stalled_after_s):
        try:
            await app.job_manager.retry_job(job)
            recovered += 1
        except Exception:  # noqa: BLE001 - its twin already waits (queueing lock) or another recovery won
            try:
                await app.job_manager.finish_job(job, status=Status.FAILED, delete_job=False)
            except Exception as exc:  # noqa: BLE001
                log.info("stalled job %s left: %s", job.id, type(exc).__name__)
    if recovered:
        log.warning("job=recover requeued=%d stalled jobs", recovered)
    return recovered


async def prune_finished_jobs(app: procrastinate.App, keep_days: int) -> None:
    """Finished jobs (failed, cancelled, aborted, and succeeded ones KEEP_SUCCEEDED_JOBS kept) whose
    last event is older than `keep_days` leave the table, their events with them."""
    await app.job_manager.delete_old_jobs(
        nb_hours=keep_days * 24, include_failed=True, include_cancelled=True, include_aborted=True
    )
