"""What a failed Telegram call says about delivery, and calls that must not abort the work around them.

Three outcomes matter when a send fails:
- Telegram answered with a refusal (400, 403, 429, or an error status such as 502): nothing was
  done; the same call (or a text instead of a photo) may be tried again.
- The connection never opened (connect error, connection-pool timeout): nothing left this machine.
- Anything else after the request left (a read timeout, a reset connection, a dropped keep-alive):
  Telegram may have carried it out. Such a send is "maybe delivered" and is never sent again,
  because a duplicate pick is worse than a missing one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import httpx
from telegram.error import BadRequest, Forbidden, NetworkError, TelegramError, TimedOut

log = logging.getLogger(__name__)

T = TypeVar("T")

# Transport failures raised before the request was written: it never reached Telegram.
_NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
# A call refused for a passing reason is tried this many times in all, with these pauses between.
ATTEMPTS = 3
RETRY_PAUSE_S = 0.5


def maybe_delivered(exc: BaseException) -> bool:
    """True when the request may have reached Telegram and been carried out, unanswered."""
    if not isinstance(exc, NetworkError) or isinstance(exc, BadRequest):
        return False  # Forbidden, RetryAfter, 400 …: Telegram answered, and did nothing
    cause = exc.__cause__
    if isinstance(cause, httpx.HTTPError):
        return not isinstance(cause, _NEVER_SENT)
    # A timeout from another transport: assume it left. An error status without a transport
    # cause (502 Bad Gateway, 500) is an answer: the call was not carried out.
    return isinstance(exc, TimedOut)


def chat_gone(exc: BaseException) -> bool:
    """The chat cannot get messages any more: the user blocked the bot (403), or the chat no longer
    exists (400 "chat not found": a deleted account). Retrying is pointless until they write again."""
    if isinstance(exc, Forbidden):
        return True
    return isinstance(exc, BadRequest) and "chat not found" in exc.message.lower()


def worth_retrying(exc: BaseException) -> bool:
    """Refused for a passing reason (a 5xx answer, a connection that never opened): try again."""
    return isinstance(exc, NetworkError) and not isinstance(exc, BadRequest) and not maybe_delivered(exc)


async def with_retries(call: Callable[[], Awaitable[T]], attempts: int = ATTEMPTS) -> T:
    """`call()`, again after a short pause while it fails for a passing reason (never when it may
    have been carried out). RetryAfter is waited out by the rate limiter, not here."""
    for attempt in range(1, attempts + 1):
        try:
            return await call()
        except TelegramError as exc:
            if attempt == attempts or not worth_retrying(exc):
                raise
            log.info("telegram call refused (%s); retry %d of %d", exc, attempt, attempts - 1)
            await asyncio.sleep(RETRY_PAUSE_S * attempt)
    raise AssertionError("unreachable")


async def best_effort(call: Awaitable[object], what: str) -> bool:
    """Auxiliary calls (chat actions, status edits, notes) never abort the work they decorate."""
    try:
        await call
        return True
    except TelegramError as exc:
        log.info("%s skipped: %s", what, exc)
        return False
