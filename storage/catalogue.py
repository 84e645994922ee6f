"""The shared video catalogue and bilibili's related-video graph."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any, Callable, Protocol

from sqlalchemy import func
from sqlmodel import select

from storage.chunks import chunked
from storage.db import Database
from storage.models import Related, Video
from storage.upsert import upsert

_STAT_COLUMNS = (
    "aid", "title", "cover", "owner_mid", "owner_name", "duration", "tid", "tname", "pubdate",
    "view", "danmaku", "reply", "favorite", "coin", "share", "like",
)  # fmt: skip


class VideoLike(Protocol):
    """Anything with the catalogue's fields (bilibili.VideoInfo fits); tags None = unknown."""

    bvid: str
    tags: Sequence[str] | None


# How a title becomes words: recommender.text.title_tokens, handed over by the composition root
# (services.py), so storage segments each title once, as it is saved, without importing the
# recommender. None: titles are stored without their words (the recommender segments them itself).
_title_tokeniser: Callable[[str], Sequence[str]] | None = None


def use_title_tokeniser(tokenise: Callable[[str], Sequence[str]] | None) -> None:
    global _title_tokeniser
    _title_tokeniser = tokenise


def _row(video: VideoLike) -> dict[str, Any]:
    row = {c: getattr(video, c) for c in _STAT_COLUMNS} | {"bvid": video.bvid}
    if _title_tokeniser is not None:
        row["title_tokens"] = json.dumps(list(_title_tokeniser(row["title"] or "")), ensure_ascii=False)
    return row


def video_title_tokens(row: Video) -> tuple[str, ...]:
    try:
        tokens = json.loads(row.title_tokens or "[]")
    except ValueError:
        return ()
    return tuple(str(t) for t in tokens) if isinstance(tokens, list) else ()


def save_videos(
    db: Database, videos: Iterable[VideoLike], now: int, *, candidate: bool = False
) -> None:
    """Upsert list/metadata rows. Videos with known tags count as fetched; others keep their tags."""
    videos = list({v.bvid: v for v in videos}.values())
    if not videos:
        return
    with_tags = [v for v in videos if v.tags is not None]
    without_tags = [v for v in videos if v.tags is None]
    extra = {"candidate_at": now} if candidate else {}
    with db.session() as s:
        rows = [_row(v) | {"tags": json.dumps(list(v.tags), ensure_ascii=False), "fetched_at": now,
                           "unavailable": False, "recheck_at": None} | extra for v in with_tags]  # fmt: skip
        upsert(s, Video, rows, ["bvid"], update=[k for k in rows[0] if k != "bvid"] if rows else None)
        rows = [_row(v) | extra for v in without_tags]
        upsert(s, Video, rows, ["bvid"], update=[k for k in rows[0] if k != "bvid"] if rows else None)


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


def unavailable_since(db: Database, bvids: Iterable[str], since: int) -> set[str]:
    """Those of these videos found gone or refused at `since` or later: not worth asking about yet."""
    found: set[str] = set()
    with db.session() as s:
        for chunk in chunked(bvids):
            stmt = select(Video.bvid).where(Video.bvid.in_(chunk), Video.unavailable.is_(True), Video.fetched_at >= since)
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


def _is_candidate(stmt, since: int):
    return stmt.where(Video.candidate_at >= since).where(Video.unavailable.is_(False))


def candidate_videos(db: Database, since: int) -> list[Video]:
    with db.session() as s:
        return list(s.exec(_is_candidate(select(Video), since)).all())


def candidate_rows(db: Database, since: int, columns: Sequence[str]) -> list[tuple]:
    """candidate_videos as plain tuples of `columns` (no ORM objects: this is on /recommend's hot path)."""
    stmt = _is_candidate(select(*(getattr(Video, name) for name in columns)), since)
    with db.engine.connect() as conn:
        return [tuple(row) for row in conn.execute(stmt).all()]


def candidates_never_fetched(db: Database, since: int) -> list[str]:
    """Candidates whose metadata and tags were never fetched (their list rows only)."""
    stmt = _is_candidate(select(Video.bvid), since).where(Video.fetched_at == 0)
    with db.session() as s:
        return list(s.exec(stmt).all())


def last_candidate_refresh(db: Database) -> int:
    """When any candidate list was last pulled (0 = never)."""
    with db.session() as s:
        return s.exec(select(func.max(Video.candidate_at))).one() or 0


def needs_view(db: Database, bvids: Iterable[str]) -> set[str]:
    """Videos whose stored row lacks the partition and stats that only `view` gives."""
    wanted = set(bvids)
    complete: set[str] = set()
    with db.session() as s:
        for chunk in chunked(wanted):
            complete.update(s.exec(select(Video.bvid).where(Video.bvid.in_(chunk)).where(Video.tid > 0)).all())
    return wanted - complete


def video_tags(video: Video) -> tuple[str, ...]:
    try:
        return tuple(json.loads(video.tags or "[]"))
    except ValueError:
        return ()


def save_related(db: Database, bvid: str, related: Sequence[str], now: int) -> None:
    with db.session() as s:
        rows = [{"bvid": bvid, "related_bvid": r, "fetched_at": now} for r in dict.fromkeys(related)]
        upsert(s, Related, rows, ["bvid", "related_bvid"], update=["fetched_at"])


def related_graph(db: Database, bvids: Iterable[str]) -> dict[str, list[str]]:
    """bilibili's related lists of these videos (the shared signals read those of their own items)."""
    graph: dict[str, list[str]] = {}
    with db.engine.connect() as conn:
        for chunk in chunked(bvids):
            stmt = select(Related.bvid, Related.related_bvid).where(Related.bvid.in_(chunk))
            for bvid, related in conn.execute(stmt).all():
                graph.setdefault(bvid, []).append(related)
    return graph


def related_fetched(db: Database, bvids: Iterable[str], since: int) -> set[str]:
    fetched: set[str] = set()
    with db.session() as s:
        for chunk in chunked(bvids):
            stmt = select(Related.bvid).where(Related.bvid.in_(chunk)).where(Related.fetched_at >= since)
            fetched.update(s.exec(stmt).all())
    return fetched
