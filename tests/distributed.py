"""A simulated day in distributed mode, shared by tests/test_distributed.py and bench/scale.py:
N linked users due for a sync, a training pass and a digest; worker subprocesses
(`python -m jobs.worker`) against the doubles and a throwaway PostgreSQL database; what came out."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pydantic import SecretStr
from sqlalchemy import text

from bot import build_application
from jobs.queue import QUEUES, ensure_queue_schema
from jobs.sync import refresh_candidates
from services import Services, build_model_store
from settings import DistributedSettings
from tests.botenv import TOKEN
from tests.doubles.bilibili import BilibiliDouble
from tests.doubles.telegram import TelegramDouble
from tests.harness import link_user, make_services

ROOT = Path(__file__).resolve().parent.parent
PICKS = 2  # per digest: fewer messages per user, so the day is about syncing and training
FAST_CRON = "* * * * * */2"  # the scheduler every 2 s instead of every minute


def distributed_services(data_dir: Path, double: BilibiliDouble, database_url: str) -> Services:
    """The front's Services in distributed mode: the models in the database."""
    svc = make_services(data_dir, double, database_url)
    svc.settings.work = DistributedSettings(WORK_MODE="distributed", SCHEDULER_CRON=FAST_CRON)
    svc.models = build_model_store(svc.settings, svc.db)
    ensure_queue_schema(svc.db)  # the workers would; the test reads the queue from the start
    return svc


def seed_day(
    svc: Services, double: BilibiliDouble, tg: TelegramDouble, n: int, first_id: int = 1, n_history: int = 40
) -> list[int]:
    """n users whose sync is due now and whose digest slot (UTC) passed a minute ago."""
    slot = (datetime.now(UTC) - timedelta(minutes=1)).strftime("%H:%M")
    ids = []
    for i in range(n):
        double.add_generated_user(100_000 + first_id + i, seed=first_id + i, n_history=n_history)
        tg.user(first_id + i)
        tg.known_chat(first_id + i)  # they have talked to the bot before
        ids.append(
            link_user(
                svc,
                double,
                first_id + i,
                100_000 + first_id + i,
                linked_ago_s=3600,
                timezone="UTC",
                digest_time=slot,
                picks_per_page=PICKS,
            )
        )
    return ids


async def prime_candidates(svc: Services) -> None:
    """Today's candidates before the day starts (the digests choose from them)."""
    await refresh_candidates(svc, force=True)


def worker_env(svc: Services, double: BilibiliDouble, tg: TelegramDouble, database_url: str, **extra: str) -> dict:
    env = dict(os.environ)
    env.update(
        WORK_MODE="distributed",
        DATABASE_URL=database_url,
        DATA_DIR=str(svc.settings.storage.data_dir),
        FERNET_KEYS=svc.settings.storage.fernet_keys.get_secret_value(),
        BOT_TOKEN=tg.token,
        TELEGRAM_BASE_URL=tg.base_url,
        BILIBILI_API_URL=double.url,
        BILIBILI_PASSPORT_URL=double.url,
        BILIBILI_WWW_URL=double.url,
        BILIBILI_IMAGE_URL=double.url,
        BILIBILI_MAX_RPS="0",
        BILIBILI_TIMEOUT="5",
        BILIBILI_RETRIES="2",
        BILIBILI_BACKOFF_BASE="0.01",
        BILIBILI_RISK_PAUSE_BASE="0.3",
        BILIBILI_RISK_PAUSE_MAX="2",
        SCHEDULER_CRON=FAST_CRON,
        WORKER_HEARTBEAT="1",
        WORKER_STALLED_AFTER="4",
        TRAIN_SHARDS="4",
        KEEP_SUCCEEDED_JOBS="1",  # overlapping_syncs reads the finished sync jobs' events
        PYTHONPATH=str(ROOT),
    )
    env.update(extra)
    return env


def start_worker(env: dict, log_path: Path, queues: str = ",".join(QUEUES), concurrency: int = 4) -> subprocess.Popen:
    log = open(log_path, "ab")
    return subprocess.Popen(
        [sys.executable, "-m", "jobs.worker", "--queues", queues, "--concurrency", str(concurrency)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def stop_worker(proc: subprocess.Popen, kill: bool = False) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class DayOutcome:
    users: int
    synced: int  # users whose sync succeeded (next sync planned in the future, behaviour stored)
    trained: int  # users with a model version
    digests_sent: int
    duplicates: int  # pick messages beyond what the user's digest recorded
    overlapping_syncs: int  # pairs of sync jobs of one user running at the same time

    @property
    def lost(self) -> int:
        return (self.users - self.synced) + (self.users - self.trained) + (self.users - self.digests_sent)


def outcome(svc: Services, tg: TelegramDouble, user_ids: list[int], started_at: int) -> DayOutcome:
    from tests.botenv import pick_messages

    with svc.db.engine.connect() as conn:
        synced = conn.execute(
            text(
                "SELECT count(*) FROM users u WHERE u.id = ANY(:ids) AND u.next_sync_at > :t "
                "AND EXISTS (SELECT 1 FROM behaviours b WHERE b.user_id = u.id)"
            ),
            {"ids": user_ids, "t": started_at},
        ).scalar()
        trained = conn.execute(
            text("SELECT count(DISTINCT user_id) FROM model_versions WHERE user_id = ANY(:ids)"), {"ids": user_ids}
        ).scalar()
        sent = conn.execute(
            text("SELECT count(*) FROM digests WHERE status = 'sent' AND user_id = ANY(:ids)"), {"ids": user_ids}
        ).scalar()
        delivered = dict(
            conn.execute(
                text(
                    "SELECT u.telegram_id, count(s.id) FROM users u LEFT JOIN shown s ON s.user_id = u.id "
                    "AND s.message_id IS NOT NULL WHERE u.id = ANY(:ids) GROUP BY u.telegram_id"
                ),
                {"ids": user_ids},
            ).all()
        )
    # A pick message the database does not know as delivered once is a duplicate.
    duplicates = sum(max(0, len(pick_messages(tg, tid)) - n) for tid, n in delivered.items())
    return DayOutcome(len(user_ids), synced, trained, sent, duplicates, overlapping_syncs(svc))


def overlapping_syncs(svc: Services) -> int:
    """From procrastinate's event log: a sync job runs from 'started' to its next event."""
    with svc.db.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT j.id, j.args->>'user_id', e.type::text, e.at FROM procrastinate_events e "
                "JOIN procrastinate_jobs j ON j.id = e.job_id WHERE j.task_name = 'sync_user' ORDER BY e.at, e.id"
            )
        ).all()
    open_runs: dict[int, tuple[str, datetime]] = {}
    runs: dict[str, list[tuple[datetime, datetime]]] = {}
    for job_id, user, kind, at in rows:
        if job_id in open_runs:
            u, began = open_runs.pop(job_id)
            runs.setdefault(u, []).append((began, at))
        if kind == "started":
            open_runs[job_id] = (user, at)
    far = datetime.max.replace(tzinfo=UTC)
    for u, began in open_runs.values():
        runs.setdefault(u, []).append((began, far))
    overlaps = 0
    for spans in runs.values():
        spans.sort()
        overlaps += sum(1 for a, b in zip(spans, spans[1:]) if b[0] < a[1])
    return overlaps


async def wait_for_day(
    svc: Services,
    tg: TelegramDouble,
    user_ids: list[int],
    started_at: int,
    timeout: float,
    workers: list[subprocess.Popen] = (),
) -> DayOutcome:
    """Until every user is synced, trained and sent a digest (or the timeout); what came out."""
    deadline = time.monotonic() + timeout
    while True:
        got = await asyncio.to_thread(outcome, svc, tg, user_ids, started_at)
        if got.lost == 0 or time.monotonic() > deadline:
            return got
        if workers and all(w.poll() is not None for w in workers):
            raise AssertionError(f"every worker exited: {[w.returncode for w in workers]}")
        await asyncio.sleep(1.0)


@asynccontextmanager
async def running_front(svc: Services, tg: TelegramDouble):
    """bot.py's application in distributed mode (answers Telegram, runs no tick), long polling."""
    svc.settings.telegram.bot_token = SecretStr(TOKEN)
    svc.settings.telegram.base_url = tg.base_url
    app = build_application(svc.settings, svc)
    assert not app.job_queue.jobs(), "distributed mode: the front schedules no tick"
    await app.initialize()
    await app.post_init(app)
    await app.start()
    await app.updater.start_polling(poll_interval=0.0, timeout=1)
    try:
        yield app
    finally:
        await app.updater.stop()
        await app.stop()
        await app.post_stop(app)
        await app.shutdown()
        await app.post_shutdown(app)
