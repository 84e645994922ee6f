"""Watch later (稍后再看) from a pick's button: saved on the user's bilibili account, then kept as a
strong positive label. A person waits for the answer: the urgent lane, no risk pause waited out."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Literal

from bilibili import (
    BilibiliError,
    Credentials,
    NotLoggedIn,
    RiskControl,
    SessionExpired,
    VideoUnavailable,
    WatchLaterFull,
)
from jobs.schedule import after_feedback
from jobs.sync import fresh_credentials
from services import Services
from storage import behaviour, users
from storage.models import User

log = logging.getLogger(__name__)

Outcome = Literal["saved", "already", "not_linked", "dead", "full", "gone", "paused", "failed"]


@dataclass(frozen=True)
class LaterResult:
    outcome: Outcome
    minutes: int = 0  # "paused": when to come back


async def save_for_later(svc: Services, user: User, bvid: str) -> LaterResult:
    """Add `bvid` to the user's bilibili watch later list and store the label; what happened."""
    if user.credentials is None:
        return LaterResult("not_linked")
    if user.session_dead:
        return LaterResult("dead")
    if behaviour.has_kind(svc.db, user.id, bvid, behaviour.LATER):
        return LaterResult("already")  # no second call: the list has it (or the user took it out there)
    secrets = svc.vault.decrypt(user.credentials)
    if secrets is None:
        return LaterResult("dead")
    try:
        with svc.bili.urgent(), svc.bili.refusing_pauses():
            await _add(svc, user.id, Credentials.from_dict(secrets), bvid)
    except (NotLoggedIn, SessionExpired):
        users.mark_session_dead(svc.db, user.id)  # no syncs until a new /login; the answer says so
        return LaterResult("dead")
    except WatchLaterFull:
        return LaterResult("full")
    except VideoUnavailable:
        return LaterResult("gone")
    except RiskControl as exc:
        wait_s = exc.retry_in_s or svc.bili.throttle.pause_left_s
        return LaterResult("paused", minutes=max(1, math.ceil(wait_s / 60)))
    except BilibiliError as exc:
        log.info("watch later for user %d failed: %s %s", user.id, type(exc).__name__, exc.code)
        return LaterResult("failed")
    if behaviour.save_later(svc.db, user.id, bvid, svc.now()):
        after_feedback(svc, user.id)  # a label: the debounced retrain picks it up
    return LaterResult("saved")


async def _add(svc: Services, user_id: int, creds: Credentials, bvid: str) -> None:
    """One call; on -101 the login is refreshed (as a sync would: SessionExpired when it cannot be)
    and the call made once more."""
    try:
        await svc.bili.add_to_watch_later(creds, bvid, fail_fast=True)
    except NotLoggedIn:
        fresh = await fresh_credentials(svc, user_id)
        if fresh is None:  # logged out meanwhile
            raise
        await svc.bili.add_to_watch_later(fresh, bvid, fail_fast=True)
