"""The JobQueue only ticks; what is due lives in the database, so a restart loses and repeats nothing."""

from __future__ import annotations

import asyncio
import logging
import time

from telegram.ext import Application, ContextTypes

from bilibili import RiskControl
from delivery.i18n import t
from jobs.digest import DigestRunner
from jobs.schedule import after_sync
from jobs.sync import refresh_candidates_safely, sync_user
from jobs.training import rebuild_shared, rebuild_twotower, shared_due, train_users_now, twotower_due
from services import SERVICES_KEY, Services
from storage import users

log = logging.getLogger(__name__)

SYNC_BATCH = 20


class Ticker:
    """Each tick keeps one background run of each going: syncs, training, due digests."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.digests = DigestRunner(services)
        self.sync_task: asyncio.Task | None = None
        self.train_task: asyncio.Task | None = None
        self.digest_task: asyncio.Task | None = None

    async def __call__(self, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self.tick(context.application)

    async def tick(self, app: Application) -> None:
        if self.sync_task is None or self.sync_task.done():
            self.sync_task = self.services.spawn(self.run_syncs(app), name="sync-run")
        if self.train_task is None or self.train_task.done():
            self.train_task = self.services.spawn(self.run_training(), name="train-run")
        if self.digest_task is None or self.digest_task.done():
            # In the background too: a fan-out to thousands of users takes minutes, the tick stays short.
            self.digest_task = self.services.spawn(self.digests.run(app.bot), name="digest-run")

    async def run_syncs(self, app: Application) -> None:
        svc, started = self.services, time.monotonic()
        due = users.users_due_sync(svc.db, svc.now(), limit=SYNC_BATCH)
        done = items = calls = failures = 0
        try:
            calls += await _refresh_candidates_safely(svc)
        except RiskControl:
            due = []  # bilibili blocked us: every sync waits for the backoff
        for user in due:
            if svc.syncing(user.id) or not users.sync_due(svc.db, user.id, svc.now()):
                continue  # being synced right now, or synced since the batch was read (onboarding)
            report = await sync_user(svc, user.id)
            done, items, calls = done + 1, items + report.new_items, calls + report.calls
            try:
                if after_sync(svc, user.id, report):
                    await _tell(app, user.chat_id, t(user.language, "session_dead"))
            except Exception:  # noqa: BLE001 - e.g. the database went away: the other users still sync
                log.exception("job=sync user=%d: planning the next sync failed", user.id)
                report.error = report.error or "after_sync_failed"
            if not report.ok:
                failures += 1
                if report.error and report.error.startswith("risk_control"):
                    break  # an IP-wide block: the rest wait for the next run
        if due:
            log.info(
                "job=sync users=%d items=%d calls=%d failures=%d seconds=%.1f",
                done,
                items,
                calls,
                failures,
                time.monotonic() - started,
            )

    async def run_training(self) -> None:
        svc = self.services
        due = [u.id for u in users.users_due_training(svc.db, svc.now())]
        if due:
            try:
                await train_users_now(svc, due)
            except Exception:  # a failed pass must not stop future ticks; the users stay due
                log.exception("job=train failed users=%d", len(due))
        if shared_due(svc):  # on their own schedule, or dropped by a /forget
            await rebuild_shared(svc)
        if twotower_due(svc):  # the two-tower recall model: the same schedule, its own task
            try:
                await rebuild_twotower(svc)
            except Exception:  # noqa: BLE001 - ranking goes on without recall until the next try
                log.exception("job=twotower failed")


async def _refresh_candidates_safely(svc: Services) -> int:
    """Calls made; RiskControl propagates (it pauses everything), other failures wait for next run."""
    before = svc.bili.calls
    await refresh_candidates_safely(svc)
    return svc.bili.calls - before


async def _tell(app: Application, chat_id: int, text: str) -> None:
    try:
        await app.bot.send_message(chat_id, text)
    except Exception as exc:  # noqa: BLE001 - a notice must not break the run
        log.info("notice not delivered: %s", type(exc).__name__)


def schedule_ticks(app: Application, services: Services) -> Ticker:
    ticker = Ticker(services)
    app.job_queue.run_repeating(
        ticker,
        interval=services.settings.jobs.tick_seconds,
        first=1,
        name="tick",
        job_kwargs={"misfire_grace_time": 3600, "coalesce": True, "max_instances": 1},
    )
    app.bot_data.setdefault(SERVICES_KEY, services)
    return ticker
