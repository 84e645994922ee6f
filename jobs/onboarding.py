"""Right after a login: the first sync and training, with progress told to the user."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from jobs.schedule import after_sync
from services import Services
from jobs.sync import sync_user
from jobs.training import train_users_now
from storage import users

log = logging.getLogger(__name__)

Notify = Callable[..., Awaitable[None]]


async def first_sync_and_train(services: Services, user_id: int, notify: Notify) -> bool:
    """True when the first personal model is ready. `notify(key, **values)` tells the user."""
    await notify("sync_started")
    report = await sync_user(services, user_id)
    after_sync(services, user_id, report)
    log.info(
        "first sync user=%d new=%d meta=%d calls=%d seconds=%.2f error=%s",
        user_id, report.new_items, report.metadata_fetched, report.calls, report.seconds, report.error,
    )  # fmt: skip
    if not report.ok:
        await notify("session_dead" if report.error == "session_dead" else "sync_failed")
        return False
    counts = {k: report.counts.get(k, 0) for k in ("watch", "favorite", "coin", "like")}
    await notify("sync_progress", **counts)
    try:
        trained = await train_users_now(services, [user_id])
    except Exception:  # noqa: BLE001 - the behaviour is stored: the tick's next training pass retries
        log.exception("first training user=%d failed; left to the next training pass", user_id)
        users.mark_training_due(services.db, user_id, at=services.now())
        return False
    if not trained.users:
        return False
    await notify("first_picks_ready")
    return True
