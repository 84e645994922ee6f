"""The next picks for one user: candidates minus seen → the user's model (or popularity) → picks."""

from __future__ import annotations

import logging
from collections import namedtuple
from dataclasses import dataclass, fields
from functools import lru_cache
from typing import Literal

import recommender as rec
from delivery.card import PickCard
from jobs.convert import to_rec_video
from jobs.filters import allowed, rules_of
from jobs.pull import NO_HISTORY
from services import Services
from storage import behaviour, candidates, catalogue, contributions, picks
from storage.db import Database
from storage.models import User

log = logging.getLogger(__name__)

CANDIDATE_WINDOW_S = 7 * 86400
# Videos the two-tower model recalls per ranking, from the whole catalogue (the W&D model ranks them
# with the rest: 300 more candidates cost well under a millisecond).
RECALL_CANDIDATES = 300
Mode = Literal["personal", "not_linked", "training", "no_history"]


@dataclass(frozen=True)
class PickBatch:
    mode: Mode
    items: list[PickCard]


def excluded_bvids(services: Services, user: User) -> set[str]:
    """Watched, tapped, or shown recently: never offered again."""
    recent = services.now() - int(services.settings.jobs.recent_shown_days * 86400)
    return (
        behaviour.watched_bvids(services.db, user.id)
        | picks.shown_since(services.db, user.id, recent)
        | set(picks.get_feedback(services.db, user.id))
    )


# The catalogue columns ranking reads: the recommender Video's fields and the 2025 partition (to_rec_video
# reads these).
CandidateRow = namedtuple("CandidateRow", [f.name for f in fields(rec.Video)] + ["tid_v2", "tname_v2"])


@lru_cache(maxsize=20_000)
def _rec_video(row: CandidateRow) -> rec.Video:
    """The whole row is the key: a changed row converts again."""
    return to_rec_video(row)  # same attributes


def rows_to_rec_videos(rows: list[tuple]) -> list[rec.Video]:
    """Catalogue tuples of CandidateRow's columns as recommender Videos (conversion cached)."""
    return [_rec_video(CandidateRow(*r)) for r in rows]


def candidate_rec_videos(db: Database, since: int) -> list[rec.Video]:
    """catalogue.candidate_videos(db, since) as recommender Videos: the same rows in the same order,
    read afresh on every call; only the row -> Video conversion is cached."""
    return [_rec_video(CandidateRow(*r)) for r in catalogue.candidate_rows(db, since, CandidateRow._fields)]


def user_candidate_rec_videos(db: Database, user_id: int, since: int) -> list[rec.Video]:
    """The user's own candidates (followed creators' uploads, home feed, related) as recommender Videos."""
    return [
        _rec_video(CandidateRow(*r)) for r in candidates.user_candidate_rows(db, user_id, since, CandidateRow._fields)
    ]


def recalled_rec_videos(
    services: Services, tower: rec.TwoTower | None, user: User, exclude: set[str]
) -> list[rec.Video]:
    """The two-tower model's recall for the user from the whole catalogue: the videos nearest the
    user's newest chosen videos, none excluded, none unavailable since the model was built."""
    if tower is None:
        return []
    history = contributions.recent_choices(services.db, [user.id], tower.cfg.history).get(user.id, [])
    recalled = tower.recall(history, RECALL_CANDIDATES, exclude)
    if not recalled:
        return []
    order = {b: i for i, b in enumerate(recalled)}
    rows = catalogue.available_rows(services.db, recalled, CandidateRow._fields, playable_only=True)
    return sorted(rows_to_rec_videos(rows), key=lambda v: order[v.bvid])


def _cold_mode(services: Services, user: User) -> Mode:
    """Why there is no personal model: not linked, a bilibili account with nothing to learn from
    (its sync stored nothing), or the model is still being trained."""
    if user.credentials is None:
        return "not_linked"
    db = services.db
    if behaviour.get_cursor(db, user.id, NO_HISTORY) is not None and not behaviour.has_behaviour(db, user.id):
        return "no_history"
    return "training"


def choose_picks(services: Services, user: User, k: int) -> PickBatch:
    """Synchronous and fast: storage reads + a cached model's ranking (no network)."""
    now = services.now()
    since = now - CANDIDATE_WINDOW_S
    # The shared lists plus this user's own candidates (never another user's); rank drops repeats.
    pool = candidate_rec_videos(services.db, since=since) + user_candidate_rec_videos(services.db, user.id, since)
    rules = rules_of(services.db, user.id)
    followed = candidates.followed_uploaders(services.db, user.id)
    exclude = excluded_bvids(services, user)
    model = services.models.load(str(user.id))
    tower = services.models.load_twotower() if model is not None else None
    if model is not None:
        pool += recalled_rec_videos(services, tower, user, exclude)
    # The user's block rules before ranking, over every source (the recalled videos included): a
    # blocked video never takes a slot, nor the explore one.
    pool = allowed(rules, pool)
    if model is not None:
        shared = services.models.load_shared()
        # "Similar to <title>" reasons: rank names the liked video that drove a pick by its title.
        liked_titles = catalogue.titles(services.db, model.history) if shared is not None else None
        chosen = rec.rank(
            model,
            pool,
            k=k,
            exclude=exclude,
            now=now,
            shared=shared,
            liked_titles=liked_titles,
            followed=followed,
            tower=tower,
        )
        mode: Mode = "personal"
    else:
        chosen = rec.rank_popular(pool, k=k, exclude=exclude, now=now, followed=followed)
        mode = _cold_mode(services, user)
    by_bvid = catalogue.get_videos(services.db, [p.bvid for p in chosen]) if chosen else {}
    return PickBatch(mode, [PickCard.ranked(p, by_bvid[p.bvid]) for p in chosen if p.bvid in by_bvid])
