"""Retrain the users that are due, in one batched pass, off the event loop."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

import recommender as rec
from jobs.convert import to_rec_videos, user_events
from jobs.picks import CandidateRow, rows_to_rec_videos
from services import Services
from storage import candidates, catalogue, contributions, picks, users

log = logging.getLogger(__name__)

NEGATIVE_POOL_WINDOW_S = 7 * 86400
# Users per training pass: a thousand users due at once train in passes of this many.
PASS_MAX_USERS = 64
# While the sample is not full, build again once this many times more users have models than it holds.
SHARED_GROWTH = 1.1
SHARED_RELATED_PER_VIDEO = 10  # related edges per video the shared signals read (bilibili lists up to 40)


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
    data = {
        str(uid): rec.UserData(
            events=evs, negatives_pool=pool, followed=frozenset(candidates.followed_uploaders(db, uid))
        )
        for uid, evs in events.items()
    }
    return data, videos, services.models.load_shared()


def _train_and_save(
    services: Services, user_ids: list[int], now: int, unsaved: set[int] | None = None
) -> dict[int, tuple[int, int]]:
    """The whole pass on the trainer thread (reads, training, files), so the bot keeps answering.
    Returns user id -> (saved model version, events it learnt from); `unsaved` collects the users
    trained but not saved (gone, or /reset since their taps were read: they stay due)."""
    epochs = users.taste_epochs(services.db, user_ids)  # before the taps are read: a /reset after voids them
    data, videos, shared = _gather(services, user_ids)
    if not data:
        return {}
    models = rec.train_users(data, videos, shared, now)
    saved = {}
    for key, model in models.items():
        n_samples = len(data[key].events)
        save = lambda key=key, model=model: services.models.save(key, model)  # noqa: E731
        # Checked at save time, not after the pass: a /forget may have cancelled the task awaiting it.
        version = picks.save_model_version(services.db, int(key), save, n_samples, now, epochs.get(int(key)))
        if version is not None:
            saved[int(key)] = (version, n_samples)
        elif unsaved is not None:
            unsaved.add(int(key))
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
        unsaved: set[int] = set()
        try:
            saved |= await loop.run_in_executor(services.trainer, _train_and_save, services, batch, now, unsaved)
        finally:
            services.busy_training.difference_update(batch)
        # A user whose model was voided by a /reset stays due: the next pass learns without the taps.
        users.clear_training_due(services.db, [u for u in batch if u not in unsaved], started_at=now)
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
    # Every video whose metadata came from view/detail brings its related list (jobs/sync.keep_related):
    # a few edges of each keep the build's vocabulary near the co-watched videos it samples.
    related = catalogue.related_graph(db, rec.linkable_items(choices), per_video=SHARED_RELATED_PER_VIDEO)
    return rec.build_from_choices(choices, related, built_at=services.now())


def shared_due(services: Services) -> bool:
    """Build again when: there are none and someone has a model to rank with; they are older than
    SHARED_REBUILD_INTERVAL; or, while the sample is not full, more users have models than were in it."""
    return _rebuild_due(services, services.models.load_shared())


def _rebuild_due(services: Services, built: rec.SharedSignals | rec.TwoTower | None) -> bool:
    """The schedule the shared signals and the two-tower model share (both read the same sample)."""
    jobs = services.settings.jobs
    if built is None:
        return picks.any_model_version(services.db)
    if services.now() - built.built_at >= jobs.shared_rebuild_s:
        return True
    if len(built.members) >= jobs.shared_sample_users:
        return False
    return picks.users_with_models(services.db) > len(built.members) * SHARED_GROWTH


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
    log.info(
        "job=shared users=%d items=%d seconds=%.2f saved=%s",
        len(shared.members),
        len(shared.bvids),
        time.monotonic() - started,
        saved,
    )
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


# -- the shared two-tower recall model: its own task, on the shared signals' schedule and sample ----
# The catalogue it may recall from: the newest this many videos with metadata (its item vectors are
# held by every ranking process: 100,000 x 32 floats = 12.8 MB).
RECALL_CATALOGUE_MAX = 100_000


def build_twotower(services: Services) -> rec.TwoTower:
    """The two-tower model from a bounded sample (SHARED_SAMPLE_USERS users drawn uniformly, each
    with their newest SHARED_ITEMS_PER_USER chosen videos) and at most RECALL_CATALOGUE_MAX catalogue
    videos; its training steps are bounded too (TowerConfig.max_steps)."""
    db, jobs = services.db, services.settings.jobs
    sample = contributions.sample_user_ids(db, jobs.shared_sample_users)
    choices = {str(u): b for u, b in contributions.recent_choices(db, sample, jobs.shared_items_per_user).items()}
    rows = catalogue.recall_catalogue_rows(db, CandidateRow._fields, RECALL_CATALOGUE_MAX)
    videos = {v.bvid: v for v in rows_to_rec_videos(rows)}
    recallable = list(videos)
    chosen = {b for items in choices.values() for b in items} - videos.keys()
    videos |= {v.bvid: v for v in rows_to_rec_videos(catalogue.available_rows(db, chosen, CandidateRow._fields))}
    return rec.train_two_tower(choices, videos, recallable, built_at=services.now())


def twotower_due(services: Services) -> bool:
    """As shared_due, for the two-tower model."""
    return _rebuild_due(services, services.models.load_twotower())


async def rebuild_twotower(services: Services) -> bool:
    """Train the two-tower model again off the event loop. False when a /forget voided it meanwhile."""
    generation = services.models.twotower_generation
    started = time.monotonic()
    tower = await asyncio.get_running_loop().run_in_executor(services.trainer, build_twotower, services)
    saved = services.models.save_twotower(tower, generation)
    members = [int(key) for key in tower.members]
    if saved and (gone := len(members) - len(users.existing_ids(services.db, members))):
        services.models.drop_twotower()  # someone in the sample left while it was trained
        log.info("job=twotower dropped: %d of its users left during the build", gone)
        return False
    log.info(
        "job=twotower users=%d items=%d recallable=%d train_seconds=%.2f seconds=%.2f saved=%s",
        len(tower.members),
        len(tower.bvids),
        int(tower.recallable.sum()),
        tower.seconds,
        time.monotonic() - started,
        saved,
    )
    return saved


def forget_from_twotower(services: Services, user_id: int) -> bool:
    """As forget_from_shared: drop the two-tower model if the user's behaviour trained it."""
    tower = services.models.load_twotower()
    if tower is None or str(user_id) not in tower.members:
        return False
    services.models.drop_twotower()
    return True
