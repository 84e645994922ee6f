"""Telegram's flood limit for the whole bot: messages strictly spaced, replies before digest sends,
and a 429 pauses them all."""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

from telegram.error import RetryAfter
from telegram.ext import BaseRateLimiter

# Aim a little under the limit: Telegram counts arrivals, and network jitter bunches strictly spaced
# sends (30/s spaced exactly 1/30 s leaves no margin: any jitter makes 31 in some second, a 429).
HEADROOM = 0.97
# Pass as `rate_limit_args=BULK` for sends nobody is waiting for right now (the daily digest).
BULK = "bulk"


class PacedRateLimiter(BaseRateLimiter[str]):
    """Requests to a chat get slots one per 1/rate s: replies to users first, then bulk sends, each in
    arrival order. Requests without a chat (getUpdates, answerCallbackQuery, setMyCommands) are not
    limited.

    Unlike PTB's AIORateLimiter, a request waits out a RetryAfter *before* taking a slot: there, requests
    take limiter slots during the pause and then wait on an event, so when the pause ends they all go at
    once; the burst gets 429s, which pause again — sustained, the cycle halves throughput
    (bench/digest.py: 18.5 msg/s instead of 28).
    """

    def __init__(self, max_per_second: float, max_retries: int = 3) -> None:
        self._interval = 1.0 / (max_per_second * HEADROOM)
        self._max_retries = max_retries
        self._next_slot = 0.0
        self._waiting: tuple[deque[asyncio.Future], deque[asyncio.Future]] = (deque(), deque())
        self._dispatcher: asyncio.Task | None = None

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        if self._dispatcher is not None:
            self._dispatcher.cancel()

    async def _take_slot(self, bulk: bool) -> None:
        slot = asyncio.get_running_loop().create_future()
        self._waiting[bulk].append(slot)
        if self._dispatcher is None or self._dispatcher.done():
            self._dispatcher = asyncio.create_task(self._dispatch(), name="telegram-rate-limiter")
        await slot

    async def _dispatch(self) -> None:
        """Hands out slots while anyone waits: the oldest reply first, else the oldest bulk send."""
        loop = asyncio.get_running_loop()
        replies, bulk = self._waiting
        while replies or bulk:
            if (wait := self._next_slot - loop.time()) > 0:
                await asyncio.sleep(wait)  # checked again: a 429 meanwhile moves the slot back
                continue
            slot = (replies or bulk).popleft()
            if slot.done():  # its sender was cancelled
                continue
            slot.set_result(None)
            self._next_slot = loop.time() + self._interval  # no credit for a late wake-up: no bursts

    async def process_request(
        self, callback: Any, args: Any, kwargs: dict[str, Any], endpoint: str, data: dict[str, Any],
        rate_limit_args: str | None,
    ) -> Any:  # fmt: skip
        if data.get("chat_id") is None:
            return await callback(*args, **kwargs)
        for attempt in range(self._max_retries + 1):
            await self._take_slot(bulk=rate_limit_args == BULK)
            await self._shared_slot()
            try:
                result = await callback(*args, **kwargs)
            except RetryAfter as exc:
                await self._refused(exc)
                if attempt == self._max_retries:
                    raise
                # Always a timedelta here (the public `retry_after` is int or timedelta by a PTB flag);
                # PTB's own AIORateLimiter reads it the same way.
                pause = exc._retry_after.total_seconds()
                self._next_slot = max(self._next_slot, asyncio.get_running_loop().time() + pause)
                await self._pause_shared(pause)
                continue
            self._done(endpoint)
            return result
        raise AssertionError("unreachable")

    # Hooks for a subclass (delivery/pace.py): a pace shared with other processes, and counting.
    async def _shared_slot(self) -> None:
        """After this process's slot: wait for the slot shared with other processes, if any."""

    async def _pause_shared(self, pause_s: float) -> None:
        """A 429: pause the other processes too, if any."""

    async def _refused(self, exc: RetryAfter) -> None:
        """Telegram answered 429."""

    def _done(self, endpoint: str) -> None:
        """Telegram accepted the request."""
