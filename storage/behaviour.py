"""What users did on bilibili (upserted per user × video × kind) and where each sync stopped."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass

from sqlalchemy import and_, delete, false, func, or_
from sqlmodel import Session, select

from storage.chunks import chunked
from storage.db import Database
from storage.models import Behaviour, BlockRule, SyncCursor, User, UserCandidate, Video
from storage.upsert import upsert

KINDS = ("watch", "favorite", "coin", "like")
# Saved to bilibili's watch later (稍后再看) from a pick's button: done on bilibili by the bot, for the
# user, so a behaviour like the synced ones (a strong positive label; deleted with the account's rows).
LATER = "later"


@dataclass(frozen=True)
class BehaviourRow:
    bvid: str
    kind: str
    at: int
    progress: int | None = None
    duration: int | None = None
    coins: int | None = None


def save_behaviours(db: Database, user_id: int, rows: Iterable[BehaviourRow]) -> int:
    """Upsert; returns how many rows were new or changed (what makes a retrain worthwhile)."""
    with db.session() as s:
        return _upsert_behaviours(s, user_id, rows)


def save_pull(
    db: Database,
    user_id: int,
    mid: int | None,
    rows: Iterable[BehaviourRow],
    cursors: Mapping[str, str | None],
    now: int,
    implied: Iterable[BehaviourRow] = (),
) -> int | None:
    """A sync's rows and the cursors that say they are stored, in one transaction (a None cursor is dropped).
    `implied` rows (a favourite a history row tells) are stored only where no row of their kind is
    stored or among `rows`: the source that says it first-hand keeps its time.

    A cursor committed without its rows would make the next sync skip them for good; rows
    without their cursor are only fetched again (the upsert makes that harmless).
    Returns how many rows were new or changed; None (nothing stored) when the user is gone or
    linked another bilibili account than `mid` while this pull ran.
    """
    with db.session() as s:
        linked = s.exec(select(User.id, User.bili_mid).where(User.id == user_id).with_for_update()).first()
        if linked is None or linked[1] != mid:
            return None
        rows = list(rows)
        changed = _upsert_behaviours(s, user_id, rows)
        given = {(r.bvid, r.kind) for r in rows}
        changed += _insert_missing(s, user_id, [r for r in implied if (r.bvid, r.kind) not in given])
        _upsert_cursors(s, user_id, {k: v for k, v in cursors.items() if v is not None}, now)
        if dropped := [k for k, v in cursors.items() if v is None]:
            s.exec(delete(SyncCursor).where(SyncCursor.user_id == user_id).where(SyncCursor.source.in_(dropped)))
    return changed


def forget_synced(s: Session, user_id: int) -> None:
    """Everything syncs brought (behaviour, cursors, the failure streak, the user's own candidates),
    in the caller's transaction.

    The user's 👍/👎 taps and the picks they were shown are not synced data and stay, and so do the
    block rules they made here; the old account's bilibili blacklist goes.
    """
    for model in (Behaviour, SyncCursor, UserCandidate):
        s.exec(delete(model).where(model.user_id == user_id))
    s.exec(delete(BlockRule).where(BlockRule.user_id == user_id, BlockRule.source == "bilibili"))


def _upsert_behaviours(s: Session, user_id: int, rows: Iterable[BehaviourRow]) -> int:
    rows = list({(r.bvid, r.kind): r for r in rows}.values())
    if not rows:
        return 0
    existing = {
        (b.bvid, b.kind): b
        for chunk in chunked(r.bvid for r in rows)
        for b in s.exec(select(Behaviour).where(Behaviour.user_id == user_id).where(Behaviour.bvid.in_(chunk))).all()
    }
    changed = [
        r
        for r in rows
        if (old := existing.get((r.bvid, r.kind))) is None
        or (old.at, old.progress, old.duration, old.coins) != (r.at, r.progress, r.duration, r.coins)
    ]
    upsert(
        s,
        Behaviour,
        [asdict(r) | {"user_id": user_id, "views": _views(existing.get((r.bvid, r.kind)), r)} for r in changed],
        ["user_id", "bvid", "kind"],
        update=["at", "progress", "duration", "coins", "views"],
    )
    return len(changed)


def _insert_missing(s: Session, user_id: int, rows: Iterable[BehaviourRow]) -> int:
    """Insert the rows whose (video, kind) the user has no row of yet; returns how many were new."""
    rows = list({(r.bvid, r.kind): r for r in rows}.values())
    if not rows:
        return 0
    existing = {
        (bvid, kind)
        for chunk in chunked(r.bvid for r in rows)
        for bvid, kind in s.exec(
            select(Behaviour.bvid, Behaviour.kind).where(Behaviour.user_id == user_id).where(Behaviour.bvid.in_(chunk))
        ).all()
    }
    new = [asdict(r) | {"user_id": user_id} for r in rows if (r.bvid, r.kind) not in existing]
    upsert(s, Behaviour, new, ["user_id", "bvid", "kind"], update=None)
    return len(new)


def _views(old: Behaviour | None, row: BehaviourRow) -> int | None:
    """A watch row counts its views: bilibili's history keeps one row per video, moved to the newest
    view, so a newer view time than the stored one is one more watch (a re-read page is not)."""
    if row.kind != "watch":
        return None
    if old is None:
        return 1
    return (old.views or 1) + (row.at > old.at)


def _upsert_cursors(s: Session, user_id: int, cursors: Mapping[str, str], now: int) -> None:
    upsert(
        s,
        SyncCursor,
        [{"user_id": user_id, "source": src, "cursor": cur, "updated_at": now} for src, cur in cursors.items()],
        ["user_id", "source"],
        update=["cursor", "updated_at"],
    )


def user_behaviours(db: Database, user_id: int) -> list[Behaviour]:
    with db.session() as s:
        return list(s.exec(select(Behaviour).where(Behaviour.user_id == user_id)).all())


def watched_tags(db: Database, user_id: int) -> list[tuple[int, tuple[str, ...]]]:
    """(when watched, the video's tags) of each watch whose video's tags are known: /profile's trend.
    Watches, not likes: a like row carries when it was first seen, not when it was given."""
    stmt = (
        select(Behaviour.at, Video.tags)
        .join(Video, Video.bvid == Behaviour.bvid)
        .where(Behaviour.user_id == user_id, Behaviour.kind == "watch")
    )
    with db.engine.connect() as conn:
        return [(at, tags) for at, raw in conn.execute(stmt) if (tags := _tags(raw))]


def _tags(raw: str | None) -> tuple[str, ...]:
    try:
        tags = json.loads(raw or "[]")
    except ValueError:
        return ()
    return tuple(t for t in tags if isinstance(t, str)) if isinstance(tags, list) else ()


def behaviour_counts(db: Database, user_id: int) -> dict[str, int]:
    with db.session() as s:
        stmt = select(Behaviour.kind, func.count()).where(Behaviour.user_id == user_id).group_by(Behaviour.kind)
        return {kind: n for kind, n in s.exec(stmt).all()}


# Which metadata matters most to a first model: the strong signals, then the newest watches.
_VALUE_ORDER = {"like": 0, "coin": 1, "favorite": 2, "watch": 3}


def bvids_missing_metadata(db: Database, user_id: int, now: int | None = None) -> list[str]:
    """The user's videos never fetched (no tags yet), most valuable first: what a crashed or
    progressive sync still owes, whichever sync pulled their rows. With `now`, also those bilibili
    refused (-403/-400) whose time to look again has come."""
    never_fetched = and_(func.coalesce(Video.fetched_at, 0) == 0, func.coalesce(Video.unavailable, False).is_(False))
    due_again = and_(Video.unavailable.is_(True), Video.recheck_at <= now) if now is not None else false()
    stmt = (
        select(Behaviour.bvid, Behaviour.kind, Behaviour.at)
        .join(Video, Video.bvid == Behaviour.bvid, isouter=True)
        .where(Behaviour.user_id == user_id)
        .where(or_(never_fetched, due_again))
    )
    with db.session() as s:
        rows = s.exec(stmt).all()
    ordered = sorted(rows, key=lambda r: (_VALUE_ORDER.get(r[1], 9), -r[2]))
    return list(dict.fromkeys(bvid for bvid, _, _ in ordered))


def save_later(db: Database, user_id: int, bvid: str, now: int) -> bool:
    """The user saved `bvid` to watch later; False when the user is gone (a /forget meanwhile)."""
    with db.session() as s:
        if s.get(User, user_id) is None:
            return False
        _upsert_behaviours(s, user_id, [BehaviourRow(bvid, LATER, now)])
        return True


def has_kind(db: Database, user_id: int, bvid: str, kind: str) -> bool:
    """Whether the user has a `kind` row for this video (e.g. already saved for later)."""
    with db.session() as s:
        stmt = select(Behaviour.id).where(Behaviour.user_id == user_id, Behaviour.bvid == bvid, Behaviour.kind == kind)
        return s.exec(stmt.limit(1)).first() is not None


def has_behaviour(db: Database, user_id: int) -> bool:
    """Whether any sync stored anything this user did."""
    with db.session() as s:
        return s.exec(select(Behaviour.id).where(Behaviour.user_id == user_id).limit(1)).first() is not None


def watched_bvids(db: Database, user_id: int) -> set[str]:
    with db.session() as s:
        stmt = select(Behaviour.bvid).where(Behaviour.user_id == user_id)
        return set(s.exec(stmt).all())


def get_cursor(db: Database, user_id: int, source: str) -> str | None:
    with db.session() as s:
        row = s.get(SyncCursor, (user_id, source))
        return row.cursor if row else None


def set_cursor(db: Database, user_id: int, source: str, cursor: str, now: int) -> None:
    with db.session() as s:
        _upsert_cursors(s, user_id, {source: cursor}, now)


# The failure streak lives beside the cursors: sync state, reset with them (a new account, /forget).
SYNC_FAILURES = "sync:failures"


def count_sync_failure(db: Database, user_id: int, now: int) -> int:
    """One more failed sync in a row; returns the streak (1 after the first, 0 for a user gone)."""
    with db.session() as s:
        if s.get(User, user_id) is None:
            return 0
        row = s.get(SyncCursor, (user_id, SYNC_FAILURES))
        streak = (int(row.cursor) if row and row.cursor.isdigit() else 0) + 1
        _upsert_cursors(s, user_id, {SYNC_FAILURES: str(streak)}, now)
        return streak


def clear_sync_failures(db: Database, user_id: int) -> None:
    with db.session() as s:
        s.exec(delete(SyncCursor).where(SyncCursor.user_id == user_id, SyncCursor.source == SYNC_FAILURES))


@dataclass(frozen=True)
class SyncState:
    """What the stored sync state says, for /status: when a sync last stored its progress, and how many
    syncs in a row failed since (with when the last of them failed)."""

    last_stored_at: int | None
    failures: int
    last_failed_at: int | None


def sync_state(db: Database, user_id: int) -> SyncState:
    with db.session() as s:
        rows = s.exec(select(SyncCursor).where(SyncCursor.user_id == user_id)).all()
    streak = next((r for r in rows if r.source == SYNC_FAILURES), None)
    stored = [r.updated_at for r in rows if r.source != SYNC_FAILURES]
    return SyncState(
        last_stored_at=max(stored, default=None),
        failures=int(streak.cursor) if streak and streak.cursor.isdigit() else 0,
        last_failed_at=streak.updated_at if streak else None,
    )
