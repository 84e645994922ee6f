"""Telegram's flood limit for the whole bot: messages strictly spaced, and a 429 pauses them all."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from telegram.error import RetryAfter
from telegram.ext import BaseRateLimiter

# Aim a little under the limit: Telegram counts arrivals, and network jitter bunches strictly spaced
# sends (30/s spaced exactly 1/30 s leaves no margin: any jitter makes 31 in some second, a 429).
HEADROOM = 0.97


class PacedRateLimiter(BaseRateLimiter[int]):
    """Requests to a chat get slots one per 1/rate s, in arrival order; requests without a chat
    (getUpdates, answerCallbackQuery, setMyCommands) are not limited.

    Unlike PTB's AIORateLimiter, a request waits out a RetryAfter *before* taking a slot: there, requests
    take limiter slots during the pause and then wait on an event, so when the pause ends they all go at
    once; the burst gets 429s, which pause again — sustained, the cycle halves throughput.
    """

    def __init__(self, max_per_second: float, max_retries: int = 3) -> None:
        self._interval = 1.0 / (max_per_second * HEADROOM)
        self._max_retries = max_retries
        self._next_slot = 0.0
        self._lock = asyncio.Lock()  # one request waits for the next slot; the rest queue in order

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass

    async def _take_slot(self) -> None:
        loop = asyncio.get_running_loop()
        async with self._lock:
            while (wait := self._next_slot - loop.time()) > 0:
                await asyncio.sleep(wait)  # checked again: a 429 meanwhile moves the slot back
            self._next_slot = loop.time() + self._interval  # no credit for a late wake-up: no bursts

    async def process_request(
        self, callback: Any, args: Any, kwargs: dict[str, Any], endpoint: str, data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> Any:  # fmt: skip
        if data.get("chat_id") is None:
            return await callback(*args, **kwargs)
        retries = rate_limit_args or self._max_retries
        for attempt in range(retries + 1):
            await self._take_slot()
            try:
                return await callback(*args, **kwargs)
            except RetryAfter as exc:
                if attempt == retries:
                    raise
                pause = exc._retry_after  # a timedelta (`retry_after` is int or timedelta by PTB flag)
                seconds = pause.total_seconds() if isinstance(pause, timedelta) else float(pause)
                self._next_slot = max(self._next_slot, asyncio.get_running_loop().time() + seconds)
        raise AssertionError("unreachable")
