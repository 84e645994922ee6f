"""Each user's own candidates (user_candidates) and the uploaders the user follows.

The shared lists (popular, weekly, ranking) live on the catalogue (videos.candidate_at); these rows
say which videos are candidates for one user only, and where they came from."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

from sqlalchemy import delete
from sqlmodel import select

from storage import behaviour, catalogue
from storage.chunks import chunked
from storage.db import Database
from storage.models import User, UserCandidate, Video
from storage.upsert import upsert

SOURCES = ("followed", "home", "related")
FOLLOWINGS = "followings"  # cursor: JSON list of the followed uploaders' mids
FOLLOWINGS_AT = "followings:at"  # cursor: when the followings were last read (unix s)


def save_user_candidates(
    db: Database, user_id: int, mid: int | None, source: str, bvids: Iterable[str], now: int
) -> bool:
    """Upsert (user, bvid, source) with seen_at = now. Nothing is stored (False) when the user is gone
    or linked another bilibili account than `mid` while the sync ran (as behaviour.save_pull)."""
    if source not in SOURCES:
        raise ValueError(f"unknown candidate source {source!r}")
    wanted = list(dict.fromkeys(bvids))
    with db.session() as s:
        linked = s.exec(select(User.id, User.bili_mid).where(User.id == user_id).with_for_update()).first()
        if linked is None or linked[1] != mid:
            return False
        for chunk in chunked(wanted):
            rows = [{"user_id": user_id, "bvid": b, "source": source, "seen_at": now} for b in chunk]
            upsert(s, UserCandidate, rows, ["user_id", "bvid", "source"], update=["seen_at"])
    return True


def prune_user_candidates(db: Database, user_id: int, before: int) -> None:
    """Drop the user's candidates last seen before `before` (out of every ranking window by then)."""
    with db.session() as s:
        s.exec(delete(UserCandidate).where(UserCandidate.user_id == user_id, UserCandidate.seen_at < before))


def user_candidate_rows(db: Database, user_id: int, since: int, columns: Sequence[str]) -> list[tuple]:
    """This user's own candidates seen at `since` or later, as catalogue tuples of `columns` (each
    video once, whatever its sources); videos gone, refused or paid left out."""
    stmt = catalogue.playable(
        select(*(getattr(Video, name) for name in columns)).where(
            Video.bvid.in_(
                select(UserCandidate.bvid).where(UserCandidate.user_id == user_id).where(UserCandidate.seen_at >= since)
            )
        )
    )
    with db.engine.connect() as conn:
        return [tuple(row) for row in conn.execute(stmt).all()]


def user_candidates(db: Database, user_id: int) -> set[tuple[str, str]]:
    """(bvid, source) of every candidate row of the user (tests, diagnostics)."""
    with db.session() as s:
        stmt = select(UserCandidate.bvid, UserCandidate.source).where(UserCandidate.user_id == user_id)
        return {(b, src) for b, src in s.exec(stmt).all()}


def followed_uploaders(db: Database, user_id: int) -> set[int]:
    """The mids of the uploaders the user followed at the last read of the followings."""
    raw = behaviour.get_cursor(db, user_id, FOLLOWINGS)
    try:
        mids = json.loads(raw) if raw else []
        return {int(m) for m in mids}
    except (ValueError, TypeError):
        return set()


def encode_followed(mids: Iterable[int]) -> str:
    return json.dumps(sorted(set(mids)))
