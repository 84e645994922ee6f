"""Retrain the users that are due, in one batched pass, off the event loop."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

import recommender as rec
from jobs.convert import to_rec_videos, user_events
from services import Services
from storage import catalogue, contributions, picks, users

log = logging.getLogger(__name__)

NEGATIVE_POOL_WINDOW_S = 7 * 86400
# Users per training pass: a thousand users due at once train in passes of this many.
PASS_MAX_USERS = 64
# While the sample is not full, build again once this many times more users have models than it holds.
SHARED_GROWTH = 1.1


@dataclass
class TrainReport:
    users: int = 0
    samples: int = 0
    seconds: float = 0.0
    versions: dict[int, int] | None = None


def _gather(services: Services, user_ids: list[int]) -> tuple[dict, dict, rec.SharedSignals | None]:
    """Read what the pass needs: its own users' events, the videos they and the negatives pool
    name, and the saved collaborative signals (built on their own schedule, see `build_shared`)."""
    db, now = services.db, services.now()
    events = {uid: evs for uid in user_ids if (evs := user_events(db, uid))}
    pool = [bvid for (bvid,) in catalogue.candidate_rows(db, since=now - NEGATIVE_POOL_WINDOW_S, columns=("bvid",))]
    bvids = set(pool) | {e.bvid for evs in events.values() for e in evs}
    videos = to_rec_videos(catalogue.get_videos(db, bvids).values())
    data = {str(uid): rec.UserData(events=evs, negatives_pool=pool) for uid, evs in events.items()}
    return data, videos, services.models.load_shared()


def _train_and_save(services: Services, user_ids: list[int], now: int) -> dict[int, tuple[int, int]]:
    """The whole pass on the trainer thread (reads, training, files), so the bot keeps answering.
    Returns user id -> (saved model version, events it learnt from)."""
    data, videos, shared = _gather(services, user_ids)
    if not data:
        return {}
    models = rec.train_users(data, videos, shared, now)
    saved = {}
    for key, model in models.items():
        n_samples = len(data[key].events)
        save = lambda key=key, model=model: services.models.save(key, model)  # noqa: E731
        # Checked at save time, not after the pass: a /forget may have cancelled the task awaiting it.
        version = picks.save_model_version(services.db, int(key), save, n_samples, now)
        if version is not None:
            saved[int(key)] = (version, n_samples)
    return saved


async def train_users_now(services: Services, user_ids: list[int]) -> TrainReport:
    """Train, save (atomically, versioned) and record a model per user; the bot keeps answering.
    A user who left during the pass keeps no model (checked as each one is saved)."""
    if not user_ids:
        return TrainReport()
    started, now = time.monotonic(), services.now()
    loop = asyncio.get_running_loop()
    saved: dict[int, tuple[int, int]] = {}
    for start in range(0, len(user_ids), PASS_MAX_USERS):  # memory follows one pass, not all who are due
        batch = user_ids[start : start + PASS_MAX_USERS]
        services.busy_training.update(batch)
        try:
            saved |= await loop.run_in_executor(services.trainer, _train_and_save, services, batch, now)
        finally:
            services.busy_training.difference_update(batch)
        users.clear_training_due(services.db, batch, started_at=now)
    report = TrainReport(
        users=len(saved),
        samples=sum(n for _, n in saved.values()),
        seconds=time.monotonic() - started,
        versions={uid: version for uid, (version, _) in saved.items()},
    )
    log.info("train users=%d samples=%d seconds=%.2f", report.users, report.samples, report.seconds)
    return report


def build_shared(services: Services) -> rec.SharedSignals:
    """The collaborative signals from a bounded sample: at most SHARED_SAMPLE_USERS users drawn
    uniformly, each with their newest SHARED_ITEMS_PER_USER chosen videos, plus bilibili's related
    lists of the videos that enter. Cost and memory follow the sample, not the user count."""
    db, jobs = services.db, services.settings.jobs
    sample = contributions.sample_user_ids(db, jobs.shared_sample_users)
    # newest first from storage; oldest first for the signals (EASE validates on the newest)
    choices = {str(u): b[::-1] for u, b in contributions.recent_choices(db, sample, jobs.shared_items_per_user).items()}
    related = catalogue.related_graph(db, rec.linkable_items(choices))
    return rec.build_from_choices(choices, related, built_at=services.now())


def shared_due(services: Services) -> bool:
    """Build again when: there are none and someone has a model to rank with; they are older than
    SHARED_REBUILD_INTERVAL; or, while the sample is not full, more users have models than were in it."""
    shared, jobs = services.models.load_shared(), services.settings.jobs
    if shared is None:
        return picks.any_model_version(services.db)
    if services.now() - shared.built_at >= jobs.shared_rebuild_s:
        return True
    if len(shared.members) >= jobs.shared_sample_users:
        return False
    return picks.users_with_models(services.db) > len(shared.members) * SHARED_GROWTH


async def rebuild_shared(services: Services) -> bool:
    """The collaborative signals again, from the sample as it is now. False when a /forget voided
    them meanwhile: the next tick tries again."""
    generation = services.models.shared_generation
    started = time.monotonic()
    shared = await asyncio.get_running_loop().run_in_executor(services.trainer, build_shared, services)
    saved = services.models.save_shared(shared, generation)
    if saved and (gone := _members_gone(services, shared)):
        services.models.drop_shared()  # someone in the sample left while it was built
        log.info("job=shared dropped: %d of its users left during the build", gone)
        return False
    log.info("job=shared users=%d items=%d seconds=%.2f saved=%s", len(shared.members), len(shared.bvids),
             time.monotonic() - started, saved)  # fmt: skip
    return saved


def _members_gone(services: Services, shared: rec.SharedSignals) -> int:
    members = [int(key) for key in shared.members]
    return len(members) - len(users.existing_ids(services.db, members))


def forget_from_shared(services: Services, user_id: int) -> bool:
    """After a user's rows are deleted: drop the signals if their behaviour was in the build (a build
    still running checks its members once saved). True when dropped."""
    shared = services.models.load_shared()
    if shared is None or str(user_id) not in shared.members:
        return False
    services.models.drop_shared()
    return True
