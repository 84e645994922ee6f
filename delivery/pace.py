"""The bot's rate limiter as run in production: PacedRateLimiter's order (replies before bulk sends),
counted for /metrics, and in distributed mode one pace for every process (storage/pace.py).

Why a pace held in the database rather than one sender process: any worker (and every front) may
send, a killed sender does not stop all digests, and the 429 pause reaches every process. It costs one
single-row UPDATE per message — at Telegram's 30 msg/s, nothing for PostgreSQL.
"""

from __future__ import annotations

import asyncio
from typing import Any

from prometheus_client import Counter
from telegram.error import RetryAfter

from delivery.ratelimit import BULK, HEADROOM, PacedRateLimiter
from storage.pace import DatabasePace

# Counted where the sends happen; jobs/metrics.py serves them with everything else on /metrics.
TELEGRAM_SENT = Counter("bilipick_telegram_messages_sent", "Messages (and photos) sent to chats")
TELEGRAM_429 = Counter("bilipick_telegram_retry_after", "Telegram 429 RetryAfter answers")


class MeteredRateLimiter(PacedRateLimiter):
    def __init__(self, max_per_second: float, max_retries: int = 3, shared: DatabasePace | None = None) -> None:
        super().__init__(max_per_second, max_retries)
        self._shared = shared
        self._global_interval = 1.0 / (max_per_second * HEADROOM)

    async def process_request(
        self, callback: Any, args: Any, kwargs: dict[str, Any], endpoint: str, data: dict[str, Any],
        rate_limit_args: str | None,
    ) -> Any:  # fmt: skip
        if data.get("chat_id") is None:
            return await callback(*args, **kwargs)
        loop = asyncio.get_running_loop()
        for attempt in range(self._max_retries + 1):
            await self._take_slot(bulk=rate_limit_args == BULK)  # this process's order first
            if self._shared is not None:
                await asyncio.sleep(await loop.run_in_executor(None, self._shared.reserve, self._global_interval))
            try:
                result = await callback(*args, **kwargs)
            except RetryAfter as exc:
                TELEGRAM_429.inc()
                if attempt == self._max_retries:
                    raise
                pause = exc._retry_after.total_seconds()  # see PacedRateLimiter.process_request
                self._next_slot = max(self._next_slot, loop.time() + pause)
                if self._shared is not None:
                    await loop.run_in_executor(None, self._shared.pause_all, pause)
                continue
            if endpoint.startswith("send"):
                TELEGRAM_SENT.inc()
            return result
        raise AssertionError("unreachable")
