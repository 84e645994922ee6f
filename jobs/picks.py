"""The next picks for one user: candidates minus seen → the user's model (or popularity) → picks."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import recommender as rec
from jobs.convert import to_rec_video
from jobs.services import Services
from storage import behaviour, catalogue, picks
from storage.models import User, Video

log = logging.getLogger(__name__)

CANDIDATE_WINDOW_S = 7 * 86400
Mode = Literal["personal", "not_linked", "training"]


@dataclass(frozen=True)
class ChosenPick:
    pick: rec.Pick
    video: Video


@dataclass(frozen=True)
class PickBatch:
    mode: Mode
    items: list[ChosenPick]


def excluded_bvids(services: Services, user: User) -> set[str]:
    """Watched, tapped, or shown recently: never offered again."""
    recent = services.now() - int(services.settings.jobs.recent_shown_days * 86400)
    return (
        behaviour.watched_bvids(services.db, user.id)
        | picks.shown_since(services.db, user.id, recent)
        | set(picks.get_feedback(services.db, user.id))
    )


def choose_picks(services: Services, user: User, k: int) -> PickBatch:
    """Synchronous and fast: storage reads + a cached model's ranking (no network)."""
    now = services.now()
    rows = catalogue.candidate_videos(services.db, since=now - CANDIDATE_WINDOW_S)
    by_bvid = {row.bvid: row for row in rows}
    candidates = [to_rec_video(row) for row in rows]
    exclude = excluded_bvids(services, user)
    model = services.models.load(str(user.id))
    if model is not None:
        chosen = rec.rank(model, candidates, k=k, exclude=exclude, now=now)
        mode: Mode = "personal"
    else:
        chosen = rec.rank_popular(candidates, k=k, exclude=exclude, now=now)
        mode = "training" if user.credentials is not None else "not_linked"
    return PickBatch(mode, [ChosenPick(p, by_bvid[p.bvid]) for p in chosen if p.bvid in by_bvid])
