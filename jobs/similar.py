"""/similar: five videos like one video, rated for the user when they have a model.

The video's metadata and related list come from one view/detail call (urgent, refusing a risk
pause), kept in the catalogue and the `related` table, so asking again (anyone, any process) costs
no call while they are fresh; the sync stores the related lists of every video it fetches the same
way. Neighbours come from the shared co-watch signal, the related list and content similarity over
the candidate pool (recommender/similar.py); they are cached per video for a few minutes, and each
asker's own filter (`for_user`) and ratings are applied on top.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import recommender as rec
from bilibili import ApiError, VideoUnavailable
from bilibili.links import VideoRef
from delivery.similar import SimilarLine
from jobs.convert import to_rec_video
from jobs.discover import once_per_key
from jobs.filters import allowed, rules_of
from jobs.picks import CANDIDATE_WINDOW_S, candidate_rec_videos, user_candidate_rec_videos
from jobs.sync import keep_related
from services import Services
from storage import behaviour, catalogue, picks
from storage.models import User, Video

log = logging.getLogger(__name__)

SHOWN = 5  # videos a /similar reply lists
NEIGHBOURS_KEPT = 30  # the most similar, cached per video: each asker's filter and ratings pick from them
NOT_FOUND_CODES = frozenset({-404, -100})  # never existed, or deleted (-100: a deleted video's state)
Failure = Literal["malformed", "not_found", "refused", "not_video"]


class SimilarRefused(Exception):
    """The video cannot be had: `kind` says why (bad id, gone, refused by bilibili, not a video)."""

    def __init__(self, kind: Failure, code: int | None = None) -> None:
        super().__init__(kind)
        self.kind, self.code = kind, code


@dataclass(frozen=True)
class SimilarPage:
    bvid: str
    title: str
    lines: list[SimilarLine]
    personal: bool  # rated and chosen with the user's model


async def video_of(svc: Services, ref: VideoRef) -> str:
    """The BV id `ref` names; a short link is resolved (one call, urgent, refusing a pause)."""
    if ref.kind == "video":
        return ref.value
    if ref.kind == "short":

        async def fetch() -> VideoRef:
            with svc.bili.urgent():
                return await svc.bili.resolve_short_link(ref.value, fail_fast=True)

        resolved = await once_per_key(svc.discover.short_links, ref.value, svc, fetch)
        if resolved.kind == "video":
            return resolved.value
        ref = resolved
    raise SimilarRefused("malformed" if ref.kind == "malformed" else "not_video")


def _fresh(svc: Services, bvid: str) -> Video | None:
    """The video's row when its metadata and related list are fresh enough to answer from."""
    row = catalogue.get_videos(svc.db, [bvid]).get(bvid)
    since = svc.now() - int(svc.settings.jobs.video_ttl_s)
    if row is None or row.unavailable or row.fetched_at < since or row.tid == 0:
        return None
    return row if catalogue.related_fetched(svc.db, [bvid], since) else None


async def _detail(svc: Services, bvid: str) -> Video:
    """The video's catalogue row, after one view/detail call unless it is fresh (shared by askers)."""
    if (row := _fresh(svc, bvid)) is not None:
        return row

    async def fetch() -> None:
        with svc.bili.urgent(), svc.bili.refusing_pauses():  # a user waits: first in line, no pause waited out
            try:
                detail = await svc.bili.view_detail(bvid)
            except VideoUnavailable as exc:
                raise SimilarRefused("not_found" if exc.code in NOT_FOUND_CODES else "refused", exc.code) from None
            except ApiError as exc:
                if exc.code in (-403, -400):  # member-only, region-locked, refused
                    raise SimilarRefused("refused", exc.code) from None
                raise
        catalogue.save_videos(svc.db, [detail.video], svc.now())
        keep_related(svc, {bvid: list(detail.related)})

    await once_per_key(svc.discover.details, bvid, svc, fetch)
    row = catalogue.get_videos(svc.db, [bvid]).get(bvid)
    if row is None:  # stored a moment ago: only a /forget-all wipe could have removed it
        raise SimilarRefused("not_found")
    return row


def _neighbours(svc: Services, video: Video) -> list[rec.Neighbour]:
    """The videos most like `video` for anyone (cached a few minutes per video)."""
    cached = svc.discover.neighbours.get(video.bvid, svc.clock())
    if cached is not None:
        return cached
    db, now = svc.db, svc.now()
    shared = svc.models.load_shared()
    cowatch = shared.neighbours(video.bvid) if shared is not None else {}
    related = catalogue.related_graph(db, [video.bvid]).get(video.bvid, [])
    named = catalogue.get_videos(db, [*related, *cowatch])
    pool = [to_rec_video(row) for row in named.values() if not row.unavailable]
    pool += candidate_rec_videos(db, since=now - CANDIDATE_WINDOW_S)
    found = rec.similar_videos(to_rec_video(video), pool, cowatch=cowatch, related=related, k=NEIGHBOURS_KEPT)
    svc.discover.neighbours.put(video.bvid, found, svc.clock())
    return found


def for_user(
    svc: Services, user: User, neighbours: Sequence[rec.Neighbour], rows: dict[str, Video]
) -> list[rec.Neighbour]:
    """The one place a user's own rules filter /similar's candidates: what they watched or 👎'd goes,
    and what their block rules hide (jobs/filters.py); so does a video nobody can play (gone, paid,
    members-only) and one without a catalogue row (it could not be checked)."""
    seen = behaviour.watched_bvids(svc.db, user.id)
    disliked = {b for b, (label, _) in picks.get_feedback(svc.db, user.id).items() if label < 0}
    playable = [
        to_rec_video(rows[n.bvid])
        for n in neighbours
        if n.bvid in rows
        and n.bvid not in seen
        and n.bvid not in disliked
        and not (rows[n.bvid].unavailable or rows[n.bvid].paid or rows[n.bvid].upower_exclusive)
    ]
    keep = {v.bvid for v in allowed(rules_of(svc.db, user.id), playable)}
    return [n for n in neighbours if n.bvid in keep]


def _ratings(svc: Services, user: User, rows: dict[str, Video]) -> dict[str, int] | None:
    """NN/100 of each video for the user, or None without a model (never linked, or not trained yet)."""
    model = svc.models.load(str(user.id)) if user.credentials is not None else None
    if model is None or not rows:
        return None
    vids = [to_rec_video(row) for row in rows.values()]
    ranked = rec.rank(model, vids, k=len(vids), exclude=(), now=svc.now(), shared=svc.models.load_shared())
    return {p.bvid: p.rating for p in ranked}


async def similar_page(svc: Services, user: User, bvid: str) -> SimilarPage:
    """Five videos like `bvid` for this user. Raises SimilarRefused, or a BilibiliError (risk pause…)."""
    video = await _detail(svc, bvid)
    candidates = _neighbours(svc, video)
    rows = catalogue.get_videos(svc.db, [n.bvid for n in candidates])
    candidates = for_user(svc, user, candidates, rows)
    if not candidates:  # nothing in the pool: the user's own candidates may still hold some
        since = svc.now() - CANDIDATE_WINDOW_S
        own = rec.similar_videos(
            to_rec_video(video), user_candidate_rec_videos(svc.db, user.id, since), k=NEIGHBOURS_KEPT
        )
        rows = catalogue.get_videos(svc.db, [n.bvid for n in own])
        candidates = for_user(svc, user, own, rows)
    rows = {n.bvid: rows[n.bvid] for n in candidates}
    ratings = _ratings(svc, user, rows)
    chosen = rec.blend_personal(candidates, ratings or {}, SHOWN) if ratings else candidates[:SHOWN]
    lines = [
        SimilarLine(
            n.bvid,
            rows[n.bvid].title,
            rows[n.bvid].owner_name,
            rows[n.bvid].duration,
            ratings.get(n.bvid) if ratings else None,
            n.reason,
        )
        for n in chosen
    ]
    return SimilarPage(video.bvid, video.title, lines, ratings is not None)
