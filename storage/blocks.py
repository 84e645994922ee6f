"""Each user's block rules ("never show me this"): added from a pick or a command, listed by /blocked,
removed one by one, and the user's own bilibili blacklist kept beside them."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from sqlalchemy import delete, func
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from storage.db import Database
from storage.models import BlockRule, User

KINDS = ("uploader", "tag", "keyword", "regex", "partition", "duration")
USER, BILIBILI = "user", "bilibili"  # where a rule came from
MAX_RULES = 100  # per user, the user's own rules (the bilibili blacklist is capped apart)
MAX_BILIBILI_BLACKLIST = 2000  # bilibili's own cap on a blacklist is lower still

Added = Literal["added", "exists", "full", "gone"]


def rules(db: Database, user_id: int) -> list[BlockRule]:
    """Every rule of the user, oldest first (the user's own before bilibili's)."""
    with db.session() as s:
        stmt = select(BlockRule).where(BlockRule.user_id == user_id)
        return sorted(s.exec(stmt).all(), key=lambda r: (r.source != USER, r.id))


def user_rule_count(db: Database, user_id: int) -> int:
    with db.session() as s:
        stmt = select(func.count()).select_from(BlockRule).where(BlockRule.user_id == user_id, BlockRule.source == USER)
        return s.exec(stmt).one()


def add_rule(db: Database, user_id: int, kind: str, value: str, label: str, now: int) -> Added:
    """One rule of the user's own; "full" past MAX_RULES, "exists" when the same rule is there,
    "gone" when the user is (a /forget meanwhile)."""
    if kind not in KINDS:
        raise ValueError(f"unknown block kind {kind!r}")
    try:
        with db.session() as s:
            # The user's row locked first: two taps at once cannot both pass the count.
            if s.exec(select(User.id).where(User.id == user_id).with_for_update()).first() is None:
                return "gone"
            same = select(BlockRule.id).where(
                BlockRule.user_id == user_id, BlockRule.kind == kind, BlockRule.value == value
            )
            if s.exec(same).first() is not None:
                return "exists"
            count = (
                select(func.count())
                .select_from(BlockRule)
                .where(BlockRule.user_id == user_id, BlockRule.source == USER)
            )
            if s.exec(count).one() >= MAX_RULES:
                return "full"
            s.add(BlockRule(user_id=user_id, kind=kind, value=value, label=label, source=USER, created_at=now))
        return "added"
    except IntegrityError:  # the same rule from a bilibili blacklist read, committed meanwhile
        return "exists"


def set_duration(db: Database, user_id: int, min_s: int, max_s: int, now: int) -> Added:
    """The one duration rule of the user (a new one replaces the old)."""
    with db.session() as s:
        if s.exec(select(User.id).where(User.id == user_id).with_for_update()).first() is None:
            return "gone"
        old = s.exec(select(BlockRule).where(BlockRule.user_id == user_id, BlockRule.kind == "duration")).first()
        if old is None:
            count = (
                select(func.count())
                .select_from(BlockRule)
                .where(BlockRule.user_id == user_id, BlockRule.source == USER)
            )
            if s.exec(count).one() >= MAX_RULES:
                return "full"
            old = BlockRule(user_id=user_id, kind="duration", value="", source=USER, created_at=now)
        old.value, old.created_at = f"{min_s}-{max_s}", now
        s.add(old)
    return "added"


def remove_rule(db: Database, user_id: int, rule_id: int) -> BlockRule | None:
    """Delete one rule of this user (another user's id deletes nothing); the rule removed, or None."""
    with db.session() as s:
        rule = s.get(BlockRule, rule_id)
        if rule is None or rule.user_id != user_id:
            return None
        s.delete(rule)
        return rule


def replace_bilibili_blacklist(
    db: Database, user_id: int, mid: int | None, entries: Iterable[tuple[int, str]], now: int
) -> bool:
    """The user's bilibili blacklist as read at sync: uploader rules of source "bilibili", replaced
    whole (an uploader taken off the blacklist on bilibili comes back). An uploader the user also
    blocked here stays the user's own rule. Nothing is stored (False) when the user is gone or linked
    another account than `mid` meanwhile."""
    wanted = dict(list(dict.fromkeys(entries))[:MAX_BILIBILI_BLACKLIST])
    with db.session() as s:
        linked = s.exec(select(User.id, User.bili_mid).where(User.id == user_id).with_for_update()).first()
        if linked is None or linked[1] != mid:
            return False
        s.exec(delete(BlockRule).where(BlockRule.user_id == user_id, BlockRule.source == BILIBILI))
        own = set(
            s.exec(select(BlockRule.value).where(BlockRule.user_id == user_id, BlockRule.kind == "uploader")).all()
        )
        s.add_all(
            BlockRule(user_id=user_id, kind="uploader", value=str(m), label=name[:64], source=BILIBILI, created_at=now)
            for m, name in wanted.items()
            if str(m) not in own
        )
    return True
