"""/sync: one user's sync right now, told in one status message edited in place as it runs.

The same body runs on the front (embedded mode, a background task) and on a worker (distributed
mode, the `sync_now` task, editing the message the front sent by its id), like the onboarding.
"""

from __future__ import annotations

import logging
import math
import time

from jobs.onboarding import STATUS_EVERY_S, OnboardingView, report_counts, train_now
from jobs.schedule import after_sync
from jobs.sync import ACCOUNT_CHANGED, SyncReport, sync_user
from services import Services
from storage import picks

log = logging.getLogger(__name__)


async def sync_now(services: Services, user_id: int, view: OnboardingView) -> SyncReport:
    """Sync the user now, retrain when it brought something new, and end the status message with
    what changed (or why it failed). Plans the next scheduled sync as any sync does."""
    await view.status("syncnow_running")
    told_at = time.monotonic()

    async def on_progress(report: SyncReport) -> None:
        nonlocal told_at
        if time.monotonic() - told_at >= STATUS_EVERY_S:
            told_at = time.monotonic()
            await view.status("syncnow_progress", **report_counts(report))

    report = await sync_user(services, user_id, on_progress)
    log.info(
        "sync now user=%d new=%d calls=%d seconds=%.2f error=%s",
        user_id,
        report.new_items,
        report.calls,
        report.seconds,
        report.error,
    )
    after_sync(services, user_id, report)  # the next sync, the retry, or the login marked dead
    if report.error == ACCOUNT_CHANGED:
        return report  # /forget or another account meanwhile: nothing of this sync is theirs
    if report.error == "session_dead":
        await view.status("session_dead")
        return report
    if not report.ok:
        if report.error and report.error.startswith("risk_control"):
            minutes = max(1, math.ceil(services.bili.throttle.pause_left_s / 60))
            await view.status("syncnow_limited", minutes=minutes)
        else:
            await view.status("sync_failed")
        return report
    if report.new_items:  # the picks should know it now, not at the next training pass
        await train_now(services, user_id)
    model = picks.latest_model_version(services.db, user_id)
    await view.status(
        "syncnow_done", new=report.new_items, **report_counts(report), version=model.version if model else 0
    )
    return report
