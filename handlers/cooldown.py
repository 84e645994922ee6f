"""Per-user limits on expensive commands: a token bucket per Telegram user id and action, in this
process (keyed by the Telegram id, which /forget does not change, so forgetting resets no limit).

/login costs bilibili calls (a QR code, then a poll every 2 s) from the budget every user shares;
/recommend costs Telegram sends that digests wait for. A refused user is told once per wait, so
spamming the command does not turn into spamming replies.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from telegram.ext import Application

LIMITS_KEY = "cooldowns"  # where the Cooldowns live in application.bot_data


@dataclass
class _Bucket:
    tokens: float
    updated: float
    full_after_s: float  # idle this long, the bucket is full again: forgetting it changes nothing
    told: bool = False  # the user heard "wait" since the last token was taken


# Past this many buckets, those full again are dropped (memory stays bounded however many users).
MAX_BUCKETS = 10_000


class Cooldowns:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[tuple[int, str], _Bucket] = {}

    def take(self, user_id: int, action: str, every_s: float, burst: int = 1) -> float:
        """0 when the action may run now (a token is taken); else the seconds until it may."""
        if every_s <= 0:
            return 0.0
        now = self._clock()
        bucket = self._buckets.get((user_id, action))
        if bucket is None:
            if len(self._buckets) >= MAX_BUCKETS:
                self._drop_full(now)
            bucket = _Bucket(tokens=float(burst), updated=now, full_after_s=burst * every_s)
            self._buckets[(user_id, action)] = bucket
        bucket.tokens = min(float(burst), bucket.tokens + (now - bucket.updated) / every_s)
        bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            bucket.told = False
            return 0.0
        return (1.0 - bucket.tokens) * every_s

    def _drop_full(self, now: float) -> None:
        for key in [k for k, b in self._buckets.items() if now - b.updated >= b.full_after_s]:
            del self._buckets[key]

    def __len__(self) -> int:
        return len(self._buckets)

    def tell_once(self, user_id: int, action: str) -> bool:
        """True the first time it is asked after a refusal: tell the user then, stay quiet after."""
        bucket = self._buckets.get((user_id, action))
        if bucket is None or bucket.told:
            return False
        bucket.told = True
        return True

    def reset(self, user_id: int, action: str) -> None:
        """The action may run again at once (e.g. the QR code it guarded has expired)."""
        self._buckets.pop((user_id, action), None)


def cooldowns_of(app: Application) -> Cooldowns:
    return app.bot_data.setdefault(LIMITS_KEY, Cooldowns())


def seconds_text(wait_s: float) -> int:
    return max(1, math.ceil(wait_s))
