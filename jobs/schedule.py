"""When each user's next sync and retrain are due (the database holds the truth; ticks read it)."""

from __future__ import annotations

import zlib

from jobs.sync import ACCOUNT_CHANGED
from services import Services
from storage import behaviour, users

RETRY_AFTER_FAILURE_S = 15 * 60


def stagger(user_id: int, interval_s: float) -> int:
    """A stable per-user offset so users' syncs spread across the interval instead of bunching."""
    return zlib.crc32(str(user_id).encode()) % max(1, int(interval_s // 10))


def after_sync(services: Services, user_id: int, report) -> bool:
    """Plan the next sync; ask for a retrain when the sync brought new behaviour.

    True when the login just died: the caller tells the user, once.
    """
    now, interval = services.now(), services.settings.jobs.sync_interval_s
    if report.error == "session_dead":
        return users.mark_session_dead(services.db, user_id)  # no syncs until a new /login
    if report.error == ACCOUNT_CHANGED:
        return False  # the new login planned its own first sync
    if report.new_items:  # stored before any later step failed: those rows are worth a model
        users.mark_training_due(services.db, user_id, at=now)
    if report.ok:
        users.update_user(services.db, user_id, next_sync_at=now + int(interval) + stagger(user_id, interval))
        behaviour.clear_sync_failures(services.db, user_id)
    else:
        failures = behaviour.count_sync_failure(services.db, user_id, now)
        users.update_user(services.db, user_id, next_sync_at=now + retry_delay(failures, interval))
    return False


def retry_delay(failures: int, interval_s: float) -> int:
    """15 min after the first failure, doubling with each one in a row, at most the normal interval:
    a user whose sync always fails (a bug, odd data) costs little and never heads every batch."""
    return int(min(RETRY_AFTER_FAILURE_S * 2 ** max(0, min(failures, 16) - 1), max(interval_s, RETRY_AFTER_FAILURE_S)))


def after_feedback(services: Services, user_id: int) -> None:
    """Taps are debounced: one retrain a few minutes after the first unprocessed tap."""
    users.mark_training_due(services.db, user_id, at=services.now() + int(services.settings.jobs.retrain_debounce_s))
