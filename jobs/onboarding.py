"""Right after a login: first picks fast, then the rest of the history in the background.

1. `quick_sync` (urgent: the other bilibili traffic waits) reads the newest history and the strong
   signals and the metadata of a few dozen videos; a first model is trained on that and the user
   is told their first picks are ready.
2. `sync_user` then reads everything else (older history page by page, every folder, the metadata
   of every video, candidates, related videos), retraining as the known history grows.
One status message, edited in place, shows the progress and ends with what was learnt.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

import recommender as rec
from jobs.pull import HISTORY
from jobs.schedule import after_sync
from jobs.sync import ACCOUNT_CHANGED, SyncReport, quick_sync, sync_user
from jobs.training import train_users_now
from services import Services
from storage import behaviour, users

log = logging.getLogger(__name__)

STATUS_EVERY_S = 5.0  # at most one status edit per this many seconds (but the last one always)
RETRAIN_GROWTH = 2.0  # retrain during the background sync each time the videos with metadata doubled


class OnboardingView(Protocol):
    """How onboarding talks to the user (delivery/onboarding.py implements it with a Telegram bot)."""

    async def status(self, key: str, **values: object) -> None:
        """The one status message: sent the first time, edited in place afterwards."""

    async def notify(self, key: str, **values: object) -> None:
        """A message of its own (the user should notice it)."""


# The background part handed elsewhere (distributed mode: a sync-queue job), given the first model's
# version and how many videos' metadata it was trained on.
DeferRest = Callable[[int, int], Awaitable[None]]


async def first_sync_and_train(
    services: Services, user_id: int, view: OnboardingView, defer_rest: DeferRest | None = None, retried: bool = False
) -> bool:
    """True when the first personal model is ready; returns once the background sync ended too, or
    once `defer_rest` handed it on. An account synced before (a new login of the same account) gets
    one ordinary sync instead. `retried`: an earlier attempt (its worker died) may have stored the
    first part: the quick part again (it reads only what is newer), not a whole sync before the picks."""
    await view.status("sync_started")
    whole = behaviour.get_cursor(services.db, user_id, HISTORY) is not None and not retried  # synced before
    report = await (sync_user(services, user_id) if whole else quick_sync(services, user_id))
    _log("whole" if whole else "first part", user_id, report)
    if report.ok and not whole and not _learnt_anything(report):
        # The first part read one folder's first page: the rest of the account may still hold something.
        report = await sync_user(services, user_id)
        _log("whole", user_id, report)
        whole = True  # no background sync follows
    if not report.ok or whole:
        after_sync(services, user_id, report)  # plans the next sync (or the retry, or marks the login dead)
    if not report.ok:
        if report.error != ACCOUNT_CHANGED:
            await view.status("session_dead" if report.error == "session_dead" else "sync_failed")
        return False
    if not _learnt_anything(report):
        # No model can be trained from nothing: say so, rather than "training…" for ever. The
        # scheduled syncs look again; the first one that stores something asks for a training.
        await view.status("sync_no_history")
        return False
    await view.status("sync_training", **report_counts(report))
    version = await train_now(services, user_id)
    if version is None:
        return False
    await view.notify("first_picks_ready")
    if whole:
        await _tell_done(services, user_id, view, report, version)
    elif defer_rest is not None:
        await defer_rest(version, report.metadata_fetched)
    else:
        await sync_the_rest(services, user_id, view, version, report.metadata_fetched)
    return True


async def sync_the_rest(services: Services, user_id: int, view: OnboardingView, version: int, trained_on: int) -> None:
    """The full sync behind the first picks; the scheduled syncs keep off while it runs.
    `trained_on`: how many videos' metadata the first model had."""
    state = {"version": version, "trained_on": max(trained_on, 1), "told_at": time.monotonic()}
    first = state["trained_on"]

    async def on_progress(report: SyncReport) -> None:
        hold = services.now() + int(services.settings.jobs.onboarding_hold_s)
        users.update_user(services.db, user_id, next_sync_at=hold)
        known = first + report.metadata_fetched
        if report.history_done and known >= state["trained_on"] * RETRAIN_GROWTH:
            if (newer := await train_now(services, user_id)) is not None:
                state["version"], state["trained_on"] = newer, known
        if time.monotonic() - state["told_at"] >= STATUS_EVERY_S:
            state["told_at"] = time.monotonic()
            await view.status("sync_status", **report_counts(report), version=state["version"])

    report = await sync_user(services, user_id, on_progress)
    _log("background", user_id, report)
    after_sync(services, user_id, report)
    if not report.ok:
        return  # the rows it stored stay; the scheduled sync goes on from the cursors
    if report.new_items and (newer := await train_now(services, user_id)) is not None:
        state["version"] = newer
    await _tell_done(services, user_id, view, report, state["version"])


async def _tell_done(services: Services, user_id: int, view: OnboardingView, report: SyncReport, version: int) -> None:
    tags, uploaders = _taste(services, user_id)
    await view.status("sync_done", **report_counts(report), version=version, tags=tags, uploaders=uploaders)


async def train_now(services: Services, user_id: int) -> int | None:
    """The user's model trained now; its version, or None (then the next training pass retries)."""
    try:
        trained = await train_users_now(services, [user_id])
    except Exception:  # noqa: BLE001 - the behaviour is stored: the tick's next training pass retries
        log.exception("onboarding training user=%d failed; left to the next training pass", user_id)
        users.mark_training_due(services.db, user_id, at=services.now())
        return None
    return (trained.versions or {}).get(user_id)


def _learnt_anything(report: SyncReport) -> bool:
    return any(report.counts.values())


def report_counts(report: SyncReport) -> dict[str, int]:
    return {k: report.counts.get(k, 0) for k in ("watch", "favorite", "coin", "like")}


def _taste(services: Services, user_id: int) -> tuple[str, str]:
    model = services.models.load(str(user_id))
    if model is None:
        return "—", "—"
    taste = rec.taste_profile(model)
    return ("、".join(n for n, _ in taste.tags[:5]) or "—", "、".join(n for n, _ in taste.uploaders[:3]) or "—")


def _log(part: str, user_id: int, report: SyncReport) -> None:
    log.info(
        "first sync (%s) user=%d new=%d meta=%d calls=%d seconds=%.2f error=%s",
        part,
        user_id,
        report.new_items,
        report.metadata_fetched,
        report.calls,
        report.seconds,
        report.error,
    )
