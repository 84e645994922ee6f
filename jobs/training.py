"""Retrain the users that are due, in one batched pass, off the event loop."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

import recommender as rec
from jobs.convert import to_rec_videos, user_events
from services import Services
from storage import catalogue, picks, users

log = logging.getLogger(__name__)

NEGATIVE_POOL_WINDOW_S = 7 * 86400


@dataclass
class TrainReport:
    users: int = 0
    samples: int = 0
    seconds: float = 0.0
    versions: dict[int, int] | None = None


def _everyone(services: Services) -> tuple[dict[int, list[rec.Event]], rec.SharedSignals]:
    """Every user's events and the collaborative signals built from them."""
    db = services.db
    events = {uid: user_events(db, uid) for uid in users.all_user_ids(db)}
    return events, rec.build_shared_signals({str(u): e for u, e in events.items()}, catalogue.related_graph(db))


def _gather(services: Services, user_ids: list[int]) -> tuple[dict, dict, rec.SharedSignals]:
    """Read everything the pass needs."""
    db, now = services.db, services.now()
    events, shared = _everyone(services)
    pool = [v.bvid for v in catalogue.candidate_videos(db, since=now - NEGATIVE_POOL_WINDOW_S)]
    bvids = set(pool) | {e.bvid for evs in events.values() for e in evs}
    videos = to_rec_videos(catalogue.get_videos(db, bvids).values())
    data = {
        str(uid): rec.UserData(events=events[uid], negatives_pool=pool)
        for uid in user_ids
        if events.get(uid)
    }
    return data, videos, shared


def _train_and_save(services: Services, user_ids: list[int], now: int, generation: int) -> dict[int, tuple[int, int]]:
    """The whole pass on the trainer thread (reads, training, files), so the bot keeps answering.
    Returns user id -> (saved model version, events it learnt from)."""
    data, videos, shared = _gather(services, user_ids)
    if not data:
        return {}
    models = rec.train_users(data, videos, shared, now)
    services.models.save_shared(shared, generation)  # ranking scores with the signals the models learnt with
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
    generation = services.models.shared_generation  # a /forget during the pass voids its signals
    loop = asyncio.get_running_loop()
    services.busy_training.update(user_ids)
    try:
        saved = await loop.run_in_executor(
            services.trainer, _train_and_save, services, user_ids, now, generation
        )
    finally:
        services.busy_training.difference_update(user_ids)
    users.clear_training_due(services.db, user_ids, started_at=now)
    report = TrainReport(
        users=len(saved),
        samples=sum(n for _, n in saved.values()),
        seconds=time.monotonic() - started,
        versions={uid: version for uid, (version, _) in saved.items()},
    )
    log.info("train users=%d samples=%d seconds=%.2f", report.users, report.samples, report.seconds)
    return report


async def rebuild_shared(services: Services) -> bool:
    """The collaborative signals again, from everyone's behaviour as it is now (a /forget dropped
    them). False when another /forget came in meanwhile: the next tick tries again."""
    generation = services.models.shared_generation
    events, shared = await asyncio.get_running_loop().run_in_executor(services.trainer, _everyone, services)
    saved = services.models.save_shared(shared, generation)
    log.info("job=shared users=%d items=%d saved=%s", len(events), len(shared.bvids), saved)
    return saved
