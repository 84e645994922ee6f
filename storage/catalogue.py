"""The shared video catalogue and bilibili's related-video graph."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from itertools import groupby
from typing import Any, Protocol

from sqlalchemy import delete, func, update
from sqlmodel import select

from storage.chunks import chunked
from storage.db import Database
from storage.models import Related, Video
from storage.upsert import upsert

MAX_RELATED = 40  # bilibili's related list holds at most 40 videos

_STAT_COLUMNS = (
    "aid",
    "title",
    "cover",
    "owner_mid",
    "owner_name",
    "duration",
    "tid",
    "tname",
    "pubdate",
    "view",
    "danmaku",
    "reply",
    "favorite",
    "coin",
    "share",
    "like",
)


# Columns only some answers carry (view, view/detail, some lists): a value of None (or no attribute)
# means "not said", and the stored value stays. Sequences are stored as JSON lists.
_OPTIONAL_COLUMNS = (
    "tid_v2",
    "tname_v2",
    "copyright",
    "vertical",
    "paid",
    "upower_exclusive",
    "honors",
    "top_rank",
    "staff",
    "participle",
    "rcmd_reason",
)


class VideoLike(Protocol):
    """Anything with the catalogue's fields (bilibili.VideoInfo fits); tags None = unknown."""

    bvid: str
    tags: Sequence[str] | None


def _stored(value: Any) -> Any:
    return json.dumps(list(value), ensure_ascii=False) if isinstance(value, tuple | list) else value


# How a title becomes words: recommender.text.title_tokens, handed over by the composition root
# (services.py), so storage segments each title once, as it is saved, without importing the
# recommender. None: titles are stored without their words (the recommender segments them itself).
_title_tokeniser: Callable[[str], Sequence[str]] | None = None


def use_title_tokeniser(tokenise: Callable[[str], Sequence[str]] | None) -> None:
    global _title_tokeniser
    _title_tokeniser = tokenise


def _row(video: VideoLike) -> dict[str, Any]:
    said = {c: _stored(v) for c in _OPTIONAL_COLUMNS if (v := getattr(video, c, None)) is not None}
    row = {c: getattr(video, c) for c in _STAT_COLUMNS} | said | {"bvid": video.bvid}
    if _title_tokeniser is not None:
        row["title_tokens"] = json.dumps(list(_title_tokeniser(row["title"] or "")), ensure_ascii=False)
    return row


def video_title_tokens(row: Video) -> tuple[str, ...]:
    try:
        tokens = json.loads(row.title_tokens or "[]")
    except ValueError:
        return ()
    return tuple(str(t) for t in tokens) if isinstance(tokens, list) else ()


def _upsert_saying(s, rows: list[dict[str, Any]]) -> None:
    """Upsert rows updating only the columns each row carries: one statement per run of rows of the
    same columns, the runs in key order, so two processes saving overlapping videos still lock them
    in the same order (storage/upsert.py)."""
    rows = sorted(rows, key=lambda r: r["bvid"])
    for columns, run in groupby(rows, key=lambda r: tuple(sorted(r))):
        upsert(s, Video, list(run), ["bvid"], update=[c for c in columns if c != "bvid"])


def save_videos(db: Database, videos: Iterable[VideoLike], now: int, *, candidate: bool = False) -> None:
    """Upsert list/metadata rows. Videos with known tags count as fetched; others keep their tags."""
    videos = list({v.bvid: v for v in videos}.values())
    if not videos:
        return
    extra = {"candidate_at": now} if candidate else {}

    def fetched(v: VideoLike) -> dict[str, Any]:
        return (
            {}
            if v.tags is None
            else {
                "tags": json.dumps(list(v.tags), ensure_ascii=False),
                "fetched_at": now,
                "unavailable": False,
                "recheck_at": None,
            }
        )

    with db.session() as s:
        _upsert_saying(s, [_row(v) | fetched(v) | extra for v in videos])


def add_partial_videos(db: Database, videos: Iterable[VideoLike]) -> None:
    """Rows from history/favourites lack stats: insert unknown videos, never overwrite known ones."""
    rows = [_row(v) for v in {v.bvid: v for v in videos}.values()]
    with db.session() as s:
        upsert(s, Video, rows, ["bvid"], update=None)


def mark_unavailable(db: Database, bvid: str, now: int, recheck_at: int | None = None) -> None:
    """Out of the candidates from now on. `recheck_at`: refused rather than gone, so the syncs of the
    users who have it ask again from then (bvids_missing_metadata)."""
    with db.session() as s:
        video = s.get(Video, bvid)
        if video is None:
            video = Video(bvid=bvid)
        video.unavailable = True
        video.fetched_at = now
        video.recheck_at = recheck_at
        s.add(video)


def mark_candidates(db: Database, bvids: Iterable[str], now: int) -> None:
    """These known videos are candidates again (seen in a list now)."""
    with db.session() as s:
        for chunk in chunked(sorted(set(bvids))):
            s.execute(
                update(Video)
                .where(Video.bvid.in_(chunk))
                .values(candidate_at=now)
                .execution_options(synchronize_session=False)
            )


def unavailable_since(db: Database, bvids: Iterable[str], since: int) -> set[str]:
    """Those of these videos found gone or refused at `since` or later: not worth asking about yet."""
    found: set[str] = set()
    with db.session() as s:
        for chunk in chunked(bvids):
            stmt = select(Video.bvid).where(
                Video.bvid.in_(chunk), Video.unavailable.is_(True), Video.fetched_at >= since
            )
            found.update(s.exec(stmt).all())
    return found


def stale_bvids(db: Database, bvids: Iterable[str], now: int, ttl_s: float) -> list[str]:
    """Which of these videos need metadata + tags: unknown, never fetched, or older than the TTL."""
    wanted = set(bvids)
    if not wanted:
        return []
    fresh_after = now - ttl_s
    fresh: set[str] = set()
    with db.session() as s:
        for chunk in chunked(wanted):
            stmt = select(Video.bvid).where(Video.bvid.in_(chunk)).where(Video.fetched_at > fresh_after)
            fresh.update(s.exec(stmt).all())
    return sorted(wanted - fresh)


def get_videos(db: Database, bvids: Iterable[str]) -> dict[str, Video]:
    found: dict[str, Video] = {}
    with db.session() as s:
        for chunk in chunked(bvids):
            found.update((v.bvid, v) for v in s.exec(select(Video).where(Video.bvid.in_(chunk))).all())
    return found


def titles(db: Database, bvids: Iterable[str]) -> dict[str, str]:
    """bvid -> title for the known ones (plain rows: used on /recommend's hot path)."""
    found: dict[str, str] = {}
    with db.engine.connect() as conn:
        for chunk in chunked(bvids):
            found.update(conn.execute(select(Video.bvid, Video.title).where(Video.bvid.in_(chunk))).all())
    return found


def playable(stmt):
    """Videos anyone can play: not gone or refused, not paid, not for the uploader's paying supporters
    only. Picks come from these alone: nothing tells whether this user bought or supports one (a
    video they watched they could play, but a watched video is never picked again anyway)."""
    return (
        stmt.where(Video.unavailable.is_(False)).where(Video.paid.is_(False)).where(Video.upower_exclusive.is_(False))
    )


def paywalled(db: Database, bvids: Iterable[str]) -> set[str]:
    """Those of these videos known to be paid or members-only."""
    found: set[str] = set()
    with db.engine.connect() as conn:
        for chunk in chunked(bvids):
            stmt = (
                select(Video.bvid)
                .where(Video.bvid.in_(chunk))
                .where(Video.paid.is_(True) | Video.upower_exclusive.is_(True))
            )
            found.update(b for (b,) in conn.execute(stmt).all())
    return found


def _is_candidate(stmt, since: int):
    return playable(stmt.where(Video.candidate_at >= since))


def candidate_videos(db: Database, since: int) -> list[Video]:
    with db.session() as s:
        return list(s.exec(_is_candidate(select(Video), since)).all())


def candidate_rows(db: Database, since: int, columns: Sequence[str]) -> list[tuple]:
    """candidate_videos as plain tuples of `columns` (no ORM objects: this is on /recommend's hot path)."""
    stmt = _is_candidate(select(*(getattr(Video, name) for name in columns)), since)
    with db.engine.connect() as conn:
        return [tuple(row) for row in conn.execute(stmt).all()]


def recall_catalogue_rows(db: Database, columns: Sequence[str], limit: int) -> list[tuple]:
    """The videos recall may offer, as tuples of `columns`: every video any sync or list brought,
    except unavailable ones and ones without metadata (never fetched); the newest `limit` fetched."""
    stmt = (
        select(*(getattr(Video, name) for name in columns))
        .where(Video.unavailable.is_(False))
        .where(Video.fetched_at > 0)
        .order_by(Video.fetched_at.desc(), Video.bvid)
        .limit(limit)
    )
    with db.engine.connect() as conn:
        return [tuple(row) for row in conn.execute(stmt).all()]


def available_rows(
    db: Database, bvids: Iterable[str], columns: Sequence[str], *, playable_only: bool = False
) -> list[tuple]:
    """Tuples of `columns` of these videos, those unavailable left out (in no particular order);
    `playable_only`: paid and members-only ones too (what may be picked)."""
    found: list[tuple] = []
    with db.engine.connect() as conn:
        for chunk in chunked(bvids):
            stmt = (
                select(*(getattr(Video, name) for name in columns))
                .where(Video.bvid.in_(chunk))
                .where(Video.unavailable.is_(False))
            )
            if playable_only:
                stmt = playable(stmt)
            found.extend(tuple(row) for row in conn.execute(stmt).all())
    return found


def candidates_never_fetched(db: Database, since: int) -> list[str]:
    """Candidates whose metadata and tags were never fetched (their list rows only)."""
    stmt = _is_candidate(select(Video.bvid), since).where(Video.fetched_at == 0)
    with db.session() as s:
        return list(s.exec(stmt).all())


def last_candidate_refresh(db: Database) -> int:
    """When any candidate list was last pulled (0 = never)."""
    with db.session() as s:
        return s.exec(select(func.max(Video.candidate_at))).one() or 0


def video_tags(video: Video) -> tuple[str, ...]:
    try:
        return tuple(json.loads(video.tags or "[]"))
    except ValueError:
        return ()


def save_related(db: Database, bvid: str, related: Sequence[str], now: int) -> None:
    """The video's related list as bilibili gives it now (edges no longer in it are dropped)."""
    save_related_lists(db, {bvid: related}, now)


def save_related_lists(db: Database, lists: Mapping[str, Sequence[str]], now: int) -> None:
    """Several videos' related lists in one transaction, each replacing what was stored for it."""
    wanted = {b: list(dict.fromkeys(r for r in rel if r != b))[:MAX_RELATED] for b, rel in lists.items()}
    with db.session() as s:
        for chunk in chunked(sorted(wanted)):  # in key order, as upsert: two writers never deadlock
            s.execute(delete(Related).where(Related.bvid.in_(chunk)))
        rows = [{"bvid": b, "related_bvid": r, "fetched_at": now} for b, rel in wanted.items() for r in rel]
        upsert(s, Related, rows, ["bvid", "related_bvid"], update=["fetched_at"])


def related_graph(db: Database, bvids: Iterable[str], per_video: int | None = None) -> dict[str, list[str]]:
    """bilibili's related lists of these videos (the shared signals read those of their own items);
    `per_video`: at most this many of each list."""
    graph: dict[str, list[str]] = {}
    with db.engine.connect() as conn:
        for chunk in chunked(bvids):
            stmt = select(Related.bvid, Related.related_bvid).where(Related.bvid.in_(chunk))
            if per_video is not None:  # the same edges on every read (and on every database)
                stmt = stmt.order_by(Related.bvid, Related.related_bvid)
            for bvid, related in conn.execute(stmt).all():
                edges = graph.setdefault(bvid, [])
                if per_video is None or len(edges) < per_video:
                    edges.append(related)
    return graph


def related_fetched(db: Database, bvids: Iterable[str], since: int) -> set[str]:
    fetched: set[str] = set()
    with db.session() as s:
        for chunk in chunked(bvids):
            stmt = select(Related.bvid).where(Related.bvid.in_(chunk)).where(Related.fetched_at >= since)
            fetched.update(s.exec(stmt).all())
    return fetched
