"""/search and /popular: bilibili's lists (cached, through the urgent lane, fail-fast) re-ranked by the
user's model when they have one. Data in, typed lines out; the handlers only speak Telegram."""

from __future__ import annotations

import asyncio
import math
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Literal, TypeVar

import recommender as rec
from bilibili.models import SearchHit, SearchPage, VideoInfo
from bilibili.partitions import BY_ID, OVERALL, PARTITIONS, Partition
from delivery.discover import PAGE_SIZE, Line, Page
from jobs.convert import to_rec_video
from jobs.filters import allowed, rules_of
from services import Services, TtlCache
from storage import catalogue
from storage.models import User

SEARCH_PAGE_SIZE = 20  # what bilibili answers per search page
SEARCH_MAX_PAGES = 50  # bilibili answers no search page past the 50th (1,000 results)
Kind = Literal["search", "popular"]
T = TypeVar("T")


@dataclass(frozen=True)
class Listing:
    """What a paged message lists, kept behind its buttons' token (callback data holds 64 bytes)."""

    owner: int  # the Telegram user it was made for: only they turn its pages
    kind: Kind
    query: str = ""  # /search words
    rid: int = OVERALL  # /popular partition


def open_listing(svc: Services, listing: Listing) -> str:
    """A fresh token for the message's buttons."""
    token = secrets.token_urlsafe(6)  # 8 characters
    svc.discover.listings.put(token, listing, svc.clock())
    return token


def find_listing(svc: Services, token: str) -> Listing | None:
    """None once expired or forgotten (a restart, or more recent lists pushed it out)."""
    return svc.discover.listings.get(token, svc.clock())


def find_partition(text: str) -> int | None:
    """A v2 partition id (0 = the whole site) from its Chinese or English name, or its id; None if unknown."""
    words = text.strip().casefold()
    if words in {"", "all", "overall", "全站", "全部", "0"}:
        return OVERALL
    if words.isascii() and words.isdigit():  # an id ("²" is a digit to isdigit, and int() refuses it)
        return int(words) if len(words) <= 6 and int(words) in BY_ID else None
    for p in PARTITIONS:
        if words in {p.zh.casefold(), p.en.casefold()}:
            return p.id
    return None


def partition_of(rid: int) -> Partition | None:
    return BY_ID.get(rid)


async def once_per_key(cache: TtlCache, key: object, svc: Services, fetch: Callable[[], Awaitable[T]]) -> T:
    """The cached answer, or one fetch shared by every caller asking meanwhile (a failure is not kept)."""
    task = cache.get(key, svc.clock())
    if task is None or (task.done() and (task.cancelled() or task.exception() is not None)):
        task = asyncio.ensure_future(fetch())
        cache.put(key, task, svc.clock())
    try:
        return await asyncio.shield(task)
    except BaseException:
        if task.done() and cache.get(key, svc.clock()) is task:
            cache.drop(key)  # the next asker tries again
        raise


async def ranking(svc: Services, rid: int) -> list[VideoInfo]:
    """bilibili's top 100 for a partition, at most one call per partition per 10 minutes; the rows
    go into the catalogue so ranking and later picks have their metadata."""

    async def fetch() -> list[VideoInfo]:
        with svc.bili.urgent(), svc.bili.refusing_pauses():  # a user waits: first in line, no pause waited out
            videos = await svc.bili.ranking(rid)
        catalogue.save_videos(svc.db, videos, svc.now())
        return videos

    return await once_per_key(svc.discover.rankings, rid, svc, fetch)


async def search(svc: Services, query: str, bili_page: int) -> SearchPage:
    """One page of bilibili's video search, cached a few minutes per (words, page)."""
    words = " ".join(query.split())

    async def fetch() -> SearchPage:
        with svc.bili.urgent():
            result = await svc.bili.search_videos(words, bili_page, fail_fast=True)
        catalogue.add_partial_videos(svc.db, [_as_video(h) for h in result.hits])
        return result

    return await once_per_key(svc.discover.searches, (words.casefold(), bili_page), svc, fetch)


def _as_video(hit: SearchHit) -> VideoInfo:
    """A search hit as a partial catalogue row (a search row carries no partition or engagement)."""
    return VideoInfo(
        bvid=hit.bvid,
        aid=hit.aid,
        title=hit.title,
        cover=hit.cover,
        owner_mid=hit.owner_mid,
        owner_name=hit.owner_name,
        duration=hit.duration,
        tid=0,
        tname="",
        pubdate=hit.pubdate,
        view=hit.view,
        danmaku=0,
        reply=0,
        favorite=0,
        coin=0,
        share=0,
        like=0,
        paid=hit.paid or None,
        upower_exclusive=hit.upower_exclusive or None,
    )


def unblocked(svc: Services, user: User, lines: Sequence[Line]) -> list[Line]:
    """The lines none of the user's block rules hides (read from the catalogue rows the lists stored;
    a line without one is left out, as it cannot be checked)."""
    rules = rules_of(svc.db, user.id)
    if not rules or not lines:
        return list(lines)
    rows = catalogue.get_videos(svc.db, [line.bvid for line in lines])
    keep = {v.bvid for v in allowed(rules, [to_rec_video(rows[ln.bvid]) for ln in lines if ln.bvid in rows])}
    return [ln for ln in lines if ln.bvid in keep]


def rated_order(svc: Services, user: User, lines: Sequence[Line]) -> tuple[list[Line], bool]:
    """The lines by the user's rating (highest first), or as given when they have no model."""
    model = svc.models.load(str(user.id)) if user.credentials is not None else None
    if model is None or not lines:
        return list(lines), False
    rows = catalogue.get_videos(svc.db, [line.bvid for line in lines])
    vids = [to_rec_video(rows[line.bvid]) for line in lines if line.bvid in rows]
    picks = rec.rank(model, vids, k=len(vids), exclude=(), now=svc.now(), shared=svc.models.load_shared())
    by_bvid = {p.bvid: p for p in picks}
    rated = [replace(ln, rating=by_bvid[ln.bvid].rating if ln.bvid in by_bvid else None) for ln in lines]
    score = {p.bvid: p.score for p in picks}
    rated.sort(key=lambda ln: -score.get(ln.bvid, -math.inf))  # stable: unrated keep bilibili's order, last
    return rated, True


async def search_page(svc: Services, user: User, query: str, page: int) -> Page:
    """Message page `page` (PAGE_SIZE lines) of the search: bilibili's page of 20 holding it, re-ranked."""
    per = SEARCH_PAGE_SIZE // PAGE_SIZE
    bili_page, half = (page - 1) // per + 1, (page - 1) % per
    if bili_page > SEARCH_MAX_PAGES:  # a forged or stale button: nothing there, and no call to find out
        return Page([], page, 0, False)
    result = await search(svc, query, bili_page)
    known = catalogue.paywalled(svc.db, [h.bvid for h in result.hits])
    lines = unblocked(
        svc,
        user,
        [
            Line(h.bvid, h.title, h.owner_name, h.duration, None, h.paid or h.upower_exclusive or h.bvid in known)
            for h in result.hits
        ],
    )
    ordered, personal = rated_order(svc, user, lines)
    num_pages = min(math.ceil(result.num_results / PAGE_SIZE), max(result.num_pages, 0) * per)
    return Page(
        ordered[half * PAGE_SIZE : (half + 1) * PAGE_SIZE],
        page,
        num_pages,
        personal,
        hidden=len(result.hits) - len(lines),
    )


async def popular_page(svc: Services, user: User, rid: int, page: int) -> Page:
    """Message page `page` of a partition's ranking, by the user's rating (bilibili's order without a model)."""
    videos = await ranking(svc, rid)
    known = catalogue.paywalled(svc.db, [v.bvid for v in videos])  # members-only: only a view said it
    lines = unblocked(
        svc,
        user,
        [Line(v.bvid, v.title, v.owner_name, v.duration, None, bool(v.paid) or v.bvid in known) for v in videos],
    )
    ordered, personal = rated_order(svc, user, lines)
    start = (page - 1) * PAGE_SIZE
    return Page(
        ordered[start : start + PAGE_SIZE],
        page,
        math.ceil(len(lines) / PAGE_SIZE),
        personal,
        hidden=len(videos) - len(lines),
    )


async def listing_page(svc: Services, user: User, listing: Listing, page: int) -> Page:
    if listing.kind == "search":
        return await search_page(svc, user, listing.query, page)
    return await popular_page(svc, user, listing.rid, page)
