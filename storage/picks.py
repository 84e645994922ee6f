"""What was shown to whom, the 👍/👎 taps on it, digests claimed, and model versions."""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import bindparam, case, delete, func, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from storage.chunks import chunked
from storage.db import Database
from storage.models import Digest, DigestStatus, Feedback, ModelVersion, Shown, User, Video
from storage.upsert import upsert


@dataclass(frozen=True)
class ShownPick:
    bvid: str
    rating: int
    reason: str


def record_shown(
    db: Database, user_id: int, picks: Sequence[ShownPick], source: str, now: int, chat_id: int
) -> list[int]:
    """Rows for picks about to be sent (before sending, so a crash can't repeat them); their ids."""
    rows = [
        Shown(
            user_id=user_id, bvid=p.bvid, shown_at=now, rating=p.rating, reason=p.reason, source=source, chat_id=chat_id
        )
        for p in picks
    ]
    with db.session() as s:
        s.add_all(rows)
        s.flush()
        return [r.id for r in rows]


def set_shown_messages(db: Database, message_ids: Mapping[int, int]) -> None:
    """Shown row id -> the Telegram message that carried it, for a whole page in one transaction.
    Rows a /reset or /forget deleted while the page went out are skipped (a Core executemany: the
    ORM's bulk update by primary key raised StaleDataError on them and lost the whole page's ids)."""
    if message_ids:
        table = Shown.__table__
        stmt = update(table).where(table.c.id == bindparam("shown_id")).values(message_id=bindparam("message"))
        with db.session() as s:
            s.connection().execute(stmt, [{"shown_id": i, "message": m} for i, m in message_ids.items()])


def mark_send_started(db: Database, shown_id: int, now: int | None) -> bool:
    """`now` before a send: compare-and-set, True only for the one caller that set it (two processes
    resuming one digest never both send a pick). None clears it when Telegram refused the send (so a
    retry may send it)."""
    stmt = update(Shown).where(Shown.id == shown_id)
    if now is not None:
        stmt = stmt.where(Shown.send_started_at.is_(None)).where(Shown.message_id.is_(None))
    with db.session() as s:
        done = s.execute(stmt.values(send_started_at=now).execution_options(synchronize_session=False))
        return done.rowcount == 1


def record_digest_picks(
    db: Database, digest_id: int, user_id: int, picks: Sequence[ShownPick], now: int, chat_id: int
) -> list[int]:
    """Record a digest's picks and attach them to the digest in one transaction: a kill in between
    leaves neither (no orphan shown rows). Compare-and-set on the digest: when another process
    attached its picks first, nothing is recorded and theirs are returned."""
    with db.session() as s:
        rows = [
            Shown(
                user_id=user_id,
                bvid=p.bvid,
                shown_at=now,
                rating=p.rating,
                reason=p.reason,
                source="digest",
                chat_id=chat_id,
            )
            for p in picks
        ]
        s.add_all(rows)
        s.flush()
        ids = [r.id for r in rows]
        attach = (
            update(Digest)
            .where(Digest.id == digest_id)
            .where(Digest.picks == "[]")
            .values(picks=json.dumps(ids))
            .execution_options(synchronize_session=False)
        )
        if s.execute(attach).rowcount == 1:
            return ids
        s.rollback()
        digest = s.get(Digest, digest_id)
        return json.loads(digest.picks) if digest is not None else []


def get_shown(db: Database, shown_id: int) -> Shown | None:
    with db.session() as s:
        return s.get(Shown, shown_id)


def get_shown_many(db: Database, shown_ids: Sequence[int]) -> list[Shown]:
    """In the given order."""
    rows: dict[int, Shown] = {}
    with db.session() as s:
        for chunk in chunked(shown_ids):
            rows.update((r.id, r) for r in s.exec(select(Shown).where(Shown.id.in_(chunk))).all())
    return [rows[i] for i in shown_ids if i in rows]


def shown_since(db: Database, user_id: int, since: int) -> set[str]:
    with db.session() as s:
        stmt = select(Shown.bvid).where(Shown.user_id == user_id).where(Shown.shown_at >= since)
        return set(s.exec(stmt).all())


def shown_history(db: Database, user_id: int) -> list[Shown]:
    with db.session() as s:
        return list(s.exec(select(Shown).where(Shown.user_id == user_id)).all())


def set_feedback(db: Database, user_id: int, bvid: str, label: int, now: int) -> None:
    """Store +1/-1; 0 clears the label."""
    with db.session() as s:
        if label == 0:
            s.exec(delete(Feedback).where(Feedback.user_id == user_id).where(Feedback.bvid == bvid))
            return
        upsert(
            s,
            Feedback,
            [{"user_id": user_id, "bvid": bvid, "label": label, "at": now}],
            ["user_id", "bvid"],
            update=["label", "at"],
        )


def toggle_feedback(db: Database, user_id: int, bvid: str, tapped: int, now: int) -> int:
    """A 👍 (+1) or 👎 (-1) tap: sets that label, or clears it when it is already set. One statement
    decides, so two fast taps are two toggles, never two reads of the same old label. The new label."""
    with db.session() as s:
        dialect = s.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        table = Feedback.__table__
        stmt = insert(table).values(user_id=user_id, bvid=bvid, label=tapped, at=now)
        stmt = stmt.on_conflict_do_update(
            index_elements=["user_id", "bvid"],
            set_={
                "label": case((table.c.label == stmt.excluded.label, 0), else_=stmt.excluded.label),
                "at": stmt.excluded.at,
            },
        ).returning(table.c.label)
        label = s.execute(stmt).scalar_one()
        if label == 0:  # a cleared label is no row (same transaction)
            s.execute(delete(Feedback).where(Feedback.user_id == user_id, Feedback.bvid == bvid))
        return label


def feedback_label(db: Database, user_id: int, bvid: str) -> int:
    """The user's standing 👍 (+1) / 👎 (-1) on one video, 0 for none."""
    with db.session() as s:
        stmt = select(Feedback.label).where(Feedback.user_id == user_id, Feedback.bvid == bvid)
        return s.exec(stmt).first() or 0


def get_feedback(db: Database, user_id: int) -> dict[str, tuple[int, int]]:
    """bvid → (label, at)."""
    with db.session() as s:
        rows = s.exec(select(Feedback).where(Feedback.user_id == user_id)).all()
        return {r.bvid: (r.label, r.at) for r in rows}


def claim_digest(db: Database, user_id: int, local_date: str, now: int) -> bool:
    """Claim today's digest for the user; False when it was claimed before (exactly once)."""
    try:
        with db.session() as s:
            s.add(Digest(user_id=user_id, local_date=local_date, claimed_at=now))
        return True
    except IntegrityError:
        return False


def get_digest(db: Database, user_id: int, local_date: str) -> Digest | None:
    with db.session() as s:
        stmt = select(Digest).where(Digest.user_id == user_id).where(Digest.local_date == local_date)
        return s.exec(stmt).first()


def claimed_days(db: Database, local_dates: Collection[str]) -> set[tuple[int, str]]:
    """(user id, local date) of every digest claimed on these dates: one query for the whole claim.
    `local_dates` is bounded whatever the user count: a slot is today or yesterday in some time zone,
    so at most three dates."""
    if not local_dates:
        return set()
    with db.engine.connect() as conn:
        stmt = select(Digest.user_id, Digest.local_date).where(Digest.local_date.in_(sorted(local_dates)))
        return {(user_id, day) for user_id, day in conn.execute(stmt)}


def unfinished_digests(db: Database) -> list[Digest]:
    """Claimed and not finished: being sent now, or interrupted (by a crash or an error)."""
    with db.session() as s:
        return list(s.exec(select(Digest).where(Digest.status == DigestStatus.CLAIMED)).all())


def update_digest(db: Database, digest_id: int, **fields) -> None:
    with db.session() as s:
        row = s.get(Digest, digest_id)
        if row is None:
            return
        for name, value in fields.items():
            setattr(row, name, json.dumps(value) if name == "picks" else value)
        s.add(row)


def any_model_version(db: Database) -> bool:
    """Whether anyone has a trained model."""
    with db.session() as s:
        return s.exec(select(ModelVersion.id).limit(1)).first() is not None


def users_with_models(db: Database) -> int:
    with db.session() as s:
        return s.exec(select(func.count(func.distinct(ModelVersion.user_id)))).one()


def record_model_versions(db: Database, versions: Mapping[int, tuple[int, int]], now: int) -> None:
    """user id -> (model version, samples it learnt from) for a training pass, in one transaction."""
    with db.session() as s:
        s.add_all(ModelVersion(user_id=u, version=v, n_samples=n, created_at=now) for u, (v, n) in versions.items())


def save_model_version(
    db: Database, user_id: int, save: Callable[[], int], n_samples: int, now: int, epoch: int | None = None
) -> int | None:
    """Run `save` (writes the model files, returns their version) and record that version, in one
    transaction holding the user's row: a /forget either came first (nothing is saved: None) or waits
    for this commit and then deletes the files. The trainer thread outlives a cancelled onboarding.
    `epoch`: the user's taste epoch when the pass read their taps; a /reset since then bumped it, and
    a model of the taps it deleted is not saved (None)."""
    with db.session() as s:
        # A no-op update: the existence check and the row lock (SQLite: the write lock) in one statement.
        stmt = update(User).where(User.id == user_id)
        if epoch is not None:
            stmt = stmt.where(User.taste_epoch == epoch)
        held = s.execute(stmt.values(id=User.id).execution_options(synchronize_session=False))
        if held.rowcount == 0:
            return None
        version = save()
        s.add(ModelVersion(user_id=user_id, version=version, n_samples=n_samples, created_at=now))
        return version


def latest_model_version(db: Database, user_id: int) -> ModelVersion | None:
    """The user's newest trained model (version, when, on how many samples), for /status."""
    with db.session() as s:
        stmt = select(ModelVersion).where(ModelVersion.user_id == user_id).order_by(ModelVersion.version.desc())
        return s.exec(stmt.limit(1)).first()


def feedback_count(db: Database, user_id: int) -> int:
    """How many 👍/👎 labels the user has standing."""
    with db.session() as s:
        return s.exec(select(func.count()).select_from(Feedback).where(Feedback.user_id == user_id)).one()


def shown_by_message(db: Database, chat_id: int, message_id: int) -> Shown | None:
    """The pick a Telegram message carried (ix_shown_chat_message): what a reply to it is about."""
    with db.session() as s:
        stmt = select(Shown).where(Shown.chat_id == chat_id, Shown.message_id == message_id)
        return s.exec(stmt.order_by(Shown.id.desc()).limit(1)).first()


@dataclass(frozen=True)
class HistoryRow:
    """One pick the user was shown (sent), its video's title and their tap on it (+1, -1, 0 = none)."""

    shown_id: int
    bvid: str
    title: str
    rating: int
    shown_at: int
    label: int


def _sent(user_id: int):
    return select(Shown).where(Shown.user_id == user_id, Shown.message_id.is_not(None))


def count_sent(db: Database, user_id: int) -> int:
    """How many picks reached the user (a row whose send failed or never happened is not one)."""
    with db.session() as s:
        stmt = select(func.count()).select_from(Shown).where(Shown.user_id == user_id, Shown.message_id.is_not(None))
        return s.exec(stmt).one()


def sent_page(db: Database, user_id: int, offset: int, limit: int) -> list[HistoryRow]:
    """The picks that reached the user, newest first, `limit` of them from `offset`, with their tap."""
    with db.session() as s:
        stmt = _sent(user_id).order_by(Shown.shown_at.desc(), Shown.id.desc()).offset(offset).limit(limit)
        rows = list(s.exec(stmt).all())
        bvids = list({r.bvid for r in rows})  # one page: `limit` ids at most, far under a chunk
        titles = dict(s.exec(select(Video.bvid, Video.title).where(Video.bvid.in_(bvids))).all()) if bvids else {}
        labels = (
            dict(
                s.exec(
                    select(Feedback.bvid, Feedback.label).where(Feedback.user_id == user_id, Feedback.bvid.in_(bvids))
                ).all()
            )
            if bvids
            else {}
        )
    return [HistoryRow(r.id, r.bvid, titles.get(r.bvid, ""), r.rating, r.shown_at, labels.get(r.bvid, 0)) for r in rows]
