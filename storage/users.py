"""Users: profile, settings, the encrypted bilibili link, and forgetting everything."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import NamedTuple

from sqlalchemy import delete
from sqlalchemy import update as sa_update
from sqlalchemy.exc import DBAPIError
from sqlmodel import select

from storage import behaviour
from storage.chunks import chunked
from storage.crypto import CredentialVault, KeysDoNotFit
from storage.db import Database
from storage.models import (
    Behaviour,
    BlockRule,
    Digest,
    Feedback,
    ModelVersion,
    Shown,
    SyncCursor,
    User,
    UserCandidate,
)

log = logging.getLogger(__name__)


def get_user(db: Database, telegram_id: int) -> User | None:
    with db.session() as s:
        return s.exec(select(User).where(User.telegram_id == telegram_id)).first()


def get_user_by_id(db: Database, user_id: int) -> User | None:
    with db.session() as s:
        return s.get(User, user_id)


def ensure_user(db: Database, telegram_id: int, chat_id: int, language: str, now: int, **defaults) -> User:
    """The user's row, created on first contact. Writing again clears a 'blocked' mark."""
    with db.session() as s:
        user = s.exec(select(User).where(User.telegram_id == telegram_id)).first()
        if user is None:
            user = User(telegram_id=telegram_id, chat_id=chat_id, language=language, created_at=now, **defaults)
            s.add(user)
        else:
            user.chat_id = chat_id
            user.blocked = False
        s.flush()
        s.refresh(user)
        return user


def update_user(db: Database, user_id: int, **fields) -> User | None:
    with db.session() as s:
        user = s.get(User, user_id)
        if user is None:
            return None
        for name, value in fields.items():
            setattr(user, name, value)
        s.add(user)
        s.flush()
        s.refresh(user)
        return user


def choose_language(db: Database, user_id: int, language: str) -> User | None:
    """/language: the choice is kept over Telegram's language_code (and through /logout)."""
    return update_user(db, user_id, language=language, language_chosen=language)


def link_bilibili(
    db: Database,
    vault: CredentialVault,
    user_id: int,
    secrets: dict[str, str],
    mid: int,
    uname: str,
    now: int,
    first_sync_at: int | None = None,
) -> bool:
    """Store the login (encrypted) and make the first sync due at `first_sync_at` (default: at once).

    Another bilibili account than the linked one (/login asked before replacing) takes the old
    account's synced behaviour and cursors with it, in this transaction: two histories never mix,
    and the new one is read from its start. The 👍/👎 taps and shown picks stay: the user gave
    those here, about videos, and expects the bot to remember them. True when the account changed.
    """
    with db.session() as s:
        user = s.get(User, user_id)
        if user is None:
            return False
        switched = user.bili_mid is not None and user.bili_mid != mid
        if switched:
            behaviour.forget_synced(s, user_id)
        user.credentials, user.bili_mid, user.bili_uname = vault.encrypt(secrets), mid, uname
        user.session_dead, user.linked_at = False, now
        user.next_sync_at = now if first_sync_at is None else first_sync_at
        s.add(user)
    return switched


def stored_credentials(db: Database, user_id: int) -> bytes | None:
    """The encrypted login as stored: what `replace_credentials` compares against."""
    user = get_user_by_id(db, user_id)
    return None if user is None else user.credentials


def replace_credentials(
    db: Database, vault: CredentialVault, user_id: int, expected: bytes, secrets: dict[str, str]
) -> bool:
    """Store refreshed cookies only over the login they refreshed (compare-and-set on the stored token).

    A /logout, /forget or a new /login that landed while the refresh ran wins: False, nothing written.
    """
    with db.session() as s:
        result = s.exec(
            sa_update(User)
            .where(User.id == user_id, User.credentials == expected)
            .values(credentials=vault.encrypt(secrets))
        )
        return result.rowcount == 1


def load_credentials(db: Database, vault: CredentialVault, user_id: int) -> dict[str, str] | None:
    user = get_user_by_id(db, user_id)
    if user is None or user.credentials is None:
        return None
    return vault.decrypt(user.credentials)


def reencrypt_credentials(db: Database, vault: CredentialVault) -> int:
    """At start: every stored login re-encrypted under the newest key (so an old key can be dropped
    later); how many changed. Raises KeysDoNotFit, and writes nothing, when some stored login opens
    under none of the keys: a dropped or mistyped key would otherwise mark those logins dead and
    message each user."""
    with db.session() as s:
        linked = s.exec(select(User).where(User.credentials.is_not(None))).all()
        rotated = {user.id: vault.rotate(user.credentials) for user in linked}
        unreadable = sum(1 for token in rotated.values() if token is None)
        if unreadable:
            raise KeysDoNotFit(
                f"{unreadable} of {len(linked)} stored bilibili logins open under none of the keys in "
                "FERNET_KEYS (or DATA_DIR/secret.key when FERNET_KEYS is unset). Put the key they were "
                "encrypted with back into FERNET_KEYS (newest first, comma-separated); refusing to start "
                "rather than tell these users their login is dead."
            )
        changed = [user for user in linked if rotated[user.id] != user.credentials]
        for user in changed:
            user.credentials = rotated[user.id]
            s.add(user)
        return len(changed)


def unlink_bilibili(db: Database, user_id: int) -> None:
    """/logout: forget the credentials, keep taps and history."""
    update_user(db, user_id, credentials=None, next_sync_at=None, session_dead=False)


def set_blocked(db: Database, telegram_id: int, blocked: bool) -> None:
    """The user blocked (or unblocked) the bot; unknown users are left alone."""
    with db.session() as s:
        user = s.exec(select(User).where(User.telegram_id == telegram_id)).first()
        if user is not None:
            user.blocked = blocked
            s.add(user)


def mark_rating_explained(db: Database, user_id: int) -> bool:
    """True for the one caller that marks the user as told what NN/100 means (then tell them)."""
    with db.session() as s:
        done = s.exec(
            sa_update(User).where(User.id == user_id, User.rating_explained.is_(False)).values(rating_explained=True)
        )
        return done.rowcount == 1


def mark_session_dead(db: Database, user_id: int) -> bool:
    """Mark the login dead; True only the first time (so the user is told once)."""
    with db.session() as s:
        user = s.get(User, user_id)
        if user is None or user.session_dead:
            return False
        user.session_dead = True
        user.next_sync_at = None
        s.add(user)
        return True


def forget_user(db: Database, user_id: int) -> None:
    """/forget: delete every row about the user (model files are the caller's); retried once should
    the database still refuse (a deadlock victim, a lock timeout)."""
    try:
        _delete_user_rows(db, user_id)
    except DBAPIError as exc:
        log.warning("forget user=%d failed (%s); retrying once", user_id, type(exc.orig).__name__)
        _delete_user_rows(db, user_id)
    if not db.scrub_deleted():
        log.warning("forget: a reader held the WAL; the leaver's old pages go with the next checkpoint")


def _delete_user_rows(db: Database, user_id: int) -> None:
    """The user's row is locked first. An insert for this user (a sync commit, a model save) locks it
    for its foreign key until it commits: one already running finishes before the deletes below, which
    then see its rows (on PostgreSQL each statement reads what is committed); one starting later waits
    for this transaction and finds the user gone. Without the lock the final DELETE of the user failed
    on such rows with a foreign-key error and kept everything."""
    with db.session() as s:
        s.exec(select(User.id).where(User.id == user_id).with_for_update())
        for model in (Behaviour, Feedback, Shown, Digest, SyncCursor, UserCandidate, BlockRule, ModelVersion):
            s.exec(delete(model).where(model.user_id == user_id))
        s.exec(delete(User).where(User.id == user_id))


def reset_taste(db: Database, user_id: int, now: int, drop_models: Callable[[], None]) -> bool:
    """/reset: the 👍/👎 taps, the picks shown and the model versions go (`drop_models` deletes the
    model files or blobs); the login, the synced behaviour, the settings and the digest claims stay
    (a day's digest is still sent once). The epoch bump makes a training pass that read the old taps
    save nothing (`picks.save_model_version`), and a retrain from the behaviour alone is asked for.
    All of it holding the user's row, which a model save holds too: a save in flight finishes first
    and goes with the rest; one after it sees the new epoch. False: no such user."""
    with db.session() as s:
        held = s.exec(select(User).where(User.id == user_id).with_for_update()).first()
        if held is None:
            return False
        for model in (Feedback, Shown, ModelVersion):
            s.exec(delete(model).where(model.user_id == user_id))
        drop_models()
        held.taste_epoch += 1
        held.train_due_at = now
        s.add(held)
    if not db.scrub_deleted():
        log.warning("reset: a reader held the WAL; the old taps' pages go with the next checkpoint")
    return True


def taste_epochs(db: Database, user_ids: list[int]) -> dict[int, int]:
    """user id -> its /reset epoch, read before a training pass reads the users' taps."""
    epochs: dict[int, int] = {}
    with db.session() as s:
        for chunk in chunked(user_ids):
            epochs.update(s.exec(select(User.id, User.taste_epoch).where(User.id.in_(chunk))).all())
    return epochs


def claim_sync_request(db: Database, user_id: int, now: int, cooldown_s: float) -> int | None:
    """/sync: take the user's one sync request per `cooldown_s` (compare-and-set, so two fronts or
    two fast taps take it once) and make the sync due now. None when taken; else when the last
    request was made (the caller says when the next one may come)."""
    with db.session() as s:
        taken = s.execute(
            sa_update(User)
            .where(User.id == user_id)
            .where((User.sync_requested_at.is_(None)) | (User.sync_requested_at <= now - int(cooldown_s)))
            .values(sync_requested_at=now, next_sync_at=now)
            .execution_options(synchronize_session=False)
        )
        if taken.rowcount == 1:
            return None
        last = s.exec(select(User.sync_requested_at).where(User.id == user_id)).first()
        return last if last is not None else now


def sync_due(db: Database, user_id: int, now: int) -> bool:
    """Whether the user's next sync is due now (read afresh: another sync may have just finished)."""
    user = get_user_by_id(db, user_id)
    return user is not None and user.next_sync_at is not None and user.next_sync_at <= now


def postpone_sync(db: Database, user_id: int, until: int) -> None:
    """Move a planned sync to `until` (bilibili's risk pause ends then); never earlier, and a user
    with no sync planned (unlinked, session dead) stays so."""
    with db.session() as s:
        s.exec(
            sa_update(User)
            .where(User.id == user_id, User.next_sync_at.is_not(None), User.next_sync_at < until)
            .values(next_sync_at=until)
        )


def users_due_sync(db: Database, now: int, limit: int = 50) -> list[User]:
    with db.session() as s:
        stmt = (
            select(User)
            .where(User.credentials.is_not(None))
            .where(User.session_dead.is_(False))
            .where(User.next_sync_at.is_not(None))
            .where(User.next_sync_at <= now)
            .order_by(User.next_sync_at)
            .limit(limit)
        )
        return list(s.exec(stmt).all())


def users_due_training(db: Database, now: int) -> list[User]:
    with db.session() as s:
        stmt = select(User).where(User.train_due_at.is_not(None)).where(User.train_due_at <= now)
        return list(s.exec(stmt).all())


def mark_training_due(db: Database, user_id: int, at: int) -> None:
    """Ask for a retrain at `at` unless one is already due earlier (debounce keeps the earliest)."""
    with db.session() as s:
        user = s.get(User, user_id)
        if user is None:
            return
        if user.train_due_at is None or user.train_due_at > at:
            user.train_due_at = at
            s.add(user)


def clear_training_due(db: Database, user_ids: list[int], started_at: int) -> None:
    """Clear the due mark, unless a new one arrived after the training pass started."""
    if not user_ids:
        return
    with db.session() as s:
        for chunk in chunked(user_ids):
            for user in s.exec(select(User).where(User.id.in_(chunk))).all():
                if user.train_due_at is not None and user.train_due_at <= started_at:
                    user.train_due_at = None
                    s.add(user)


class DigestSlot(NamedTuple):
    """What the digest claim reads of each user: every minute, for everyone, so only these columns."""

    id: int
    timezone: str
    digest_time: str
    created_at: int
    paused_until: int | None = None  # a slot before this time is not sent (snoozed)


def digest_candidates(db: Database, now: int | None = None) -> list[DigestSlot]:
    """Users who may get a digest (not paused, not blocked, not snoozed past `now`); the job checks
    each one's local time (and that the slot is not inside an ended snooze)."""
    stmt = (
        select(User.id, User.timezone, User.digest_time, User.created_at, User.digest_paused_until)
        .where(User.digest_paused.is_(False))
        .where(User.blocked.is_(False))
    )
    if now is not None:
        stmt = stmt.where(User.digest_paused_until.is_(None) | (User.digest_paused_until <= now))
    with db.engine.connect() as conn:
        return [DigestSlot(*row) for row in conn.execute(stmt)]


def all_user_ids(db: Database) -> list[int]:
    with db.session() as s:
        return list(s.exec(select(User.id)).all())


def existing_ids(db: Database, user_ids: list[int]) -> set[int]:
    """Those of user_ids still in storage (not gone with /forget)."""
    found: set[int] = set()
    with db.session() as s:
        for chunk in chunked(user_ids):
            found.update(s.exec(select(User.id).where(User.id.in_(chunk))).all())
    return found
