"""The bot's rate limiter as run in production: PacedRateLimiter's order (replies before bulk sends) and
per-chat pace, counted for /metrics, and in distributed mode one pace for every process: the bot's
30/s and each chat's 1/s (storage/pace.py).

Why a pace held in the database rather than one sender process: any worker (and every front) may
send, a killed sender does not stop all digests, and a 429 pause (the chat's, or the bot's) reaches every
process. It costs two single-row statements per message — at Telegram's 30 msg/s, nothing for PostgreSQL.
"""

from __future__ import annotations

import asyncio

from prometheus_client import Counter
from telegram.error import RetryAfter

from delivery.ratelimit import HEADROOM, PER_CHAT_PER_SECOND, PacedRateLimiter
from storage.pace import DatabasePace

# Counted where the sends happen; jobs/metrics.py serves them with everything else on /metrics.
TELEGRAM_SENT = Counter("bilipick_telegram_messages_sent", "Messages (and photos) sent to chats")
TELEGRAM_429 = Counter("bilipick_telegram_retry_after", "Telegram 429 RetryAfter answers")


class MeteredRateLimiter(PacedRateLimiter):
    """PacedRateLimiter, counted, and paced with the other processes when `shared` is given."""

    def __init__(
        self,
        max_per_second: float,
        max_retries: int = 3,
        shared: DatabasePace | None = None,
        per_chat_per_second: float = PER_CHAT_PER_SECOND,
    ) -> None:
        super().__init__(max_per_second, max_retries, per_chat_per_second)
        self._shared = shared
        self._global_interval = 1.0 / (max_per_second * HEADROOM)
        self._per_chat_interval = 1.0 / (per_chat_per_second * HEADROOM)

    async def _shared_slot(self) -> None:
        if self._shared is not None:
            loop = asyncio.get_running_loop()
            await asyncio.sleep(await loop.run_in_executor(None, self._shared.reserve, self._global_interval))

    async def _shared_chat_slot(self, chat_id: object) -> None:
        if self._shared is not None and isinstance(chat_id, int):
            loop = asyncio.get_running_loop()
            wait = await loop.run_in_executor(None, self._shared.reserve_chat, chat_id, self._per_chat_interval)
            await asyncio.sleep(wait)

    async def _pause_shared(self, pause_s: float) -> None:
        if self._shared is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._shared.pause_all, pause_s)

    async def _pause_chat_shared(self, chat_id: object, pause_s: float) -> None:
        if self._shared is not None and isinstance(chat_id, int):
            await asyncio.get_running_loop().run_in_executor(None, self._shared.pause_chat, chat_id, pause_s)

    async def _refused(self, exc: RetryAfter) -> None:
        TELEGRAM_429.inc()

    def _done(self, endpoint: str) -> None:
        if endpoint.startswith("send"):
            TELEGRAM_SENT.inc()
