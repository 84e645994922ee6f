"""Telegram's flood limits: the bot's ~30 messages/s (strictly spaced, replies before digest sends) and
about one message per second in each chat. A 429 pauses the chat it answered; 429s in many chats at
once are the bot's own limit, and pause every chat."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from telegram.error import RetryAfter
from telegram.ext import BaseRateLimiter

# Aim a little under the limit: Telegram counts arrivals, and network jitter bunches strictly spaced
# sends (30/s spaced exactly 1/30 s leaves no margin: any jitter makes 31 in some second, a 429).
HEADROOM = 0.97
# Pass as `rate_limit_args=BULK` for sends nobody is waiting for right now (the daily digest).
BULK = "bulk"
# Telegram's documented per-chat limit (Bot FAQ; PTB's FloodLimit.MESSAGES_PER_SECOND_PER_CHAT).
PER_CHAT_PER_SECOND = 1.0
# A 429 answers one chat that went too fast, unless this many different chats get one within
# GLOBAL_429_WINDOW_S: then it is the bot's global limit, and every chat waits.
GLOBAL_429_CHATS = 3
GLOBAL_429_WINDOW_S = 5.0
# Past this many chats known, those with nothing pending are forgotten (memory stays bounded).
MAX_CHATS = 10_000


def opens_message(endpoint: str) -> bool:
    """A new message in the chat (what Telegram's per-chat limit counts): sendMessage, sendPhoto, ...;
    not a chat action, an edit or a delete."""
    return endpoint.startswith("send") and endpoint != "sendChatAction"


@dataclass
class _Chat:
    next_message: float = 0.0  # loop time: the chat's next new message may go
    paused_until: float = 0.0  # loop time: Telegram's 429 for this chat ends
    # New messages to one chat go one at a time, in arrival order (and keep their order in the chat).
    turn: asyncio.Lock = field(default_factory=asyncio.Lock)


class PacedRateLimiter(BaseRateLimiter[str]):
    """Requests to a chat get global slots one per 1/rate s: replies to users first, then bulk sends,
    each in arrival order. A new message to a chat also waits for that chat's own pace (one per
    1/per_chat s), before it queues for a global slot, so one chatty chat never holds the others back.
    Requests without a chat (getUpdates, answerCallbackQuery, setMyCommands) are not limited.

    Unlike PTB's AIORateLimiter, a request waits out a RetryAfter *before* taking a slot: there, requests
    take limiter slots during the pause and then wait on an event, so when the pause ends they all go at
    once; the burst gets 429s, which pause again — sustained, the cycle halves throughput
    (bench/digest.py: 18.5 msg/s instead of 28).
    """

    def __init__(
        self, max_per_second: float, max_retries: int = 3, per_chat_per_second: float = PER_CHAT_PER_SECOND
    ) -> None:
        self._interval = 1.0 / (max_per_second * HEADROOM)
        self._chat_interval = 1.0 / (per_chat_per_second * HEADROOM)
        self._max_retries = max_retries
        self._next_slot = 0.0
        self._waiting: tuple[deque[asyncio.Future], deque[asyncio.Future]] = (deque(), deque())
        self._dispatcher: asyncio.Task | None = None
        self._chats: dict[Any, _Chat] = {}
        self._recent_429: deque[tuple[float, Any]] = deque()  # (loop time, chat id)

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

    def _chat(self, chat_id: Any) -> _Chat:
        chat = self._chats.get(chat_id)
        if chat is None:
            if len(self._chats) >= MAX_CHATS:
                self._forget_idle_chats()
            chat = self._chats[chat_id] = _Chat()
        return chat

    def _forget_idle_chats(self) -> None:
        now = asyncio.get_running_loop().time()
        idle = [
            k for k, c in self._chats.items() if not c.turn.locked() and c.next_message <= now and c.paused_until <= now
        ]
        for chat_id in idle:
            del self._chats[chat_id]

    @staticmethod
    async def _chat_ready(chat: _Chat, new_message: bool) -> None:
        """Wait out the chat's 429 pause, and for a new message its pace; checked again after each
        sleep (a 429 meanwhile extends the pause)."""
        loop = asyncio.get_running_loop()
        # noqa below: a deadline that moves (a 429 extends it), not an event to wait on
        while (wait := max(chat.paused_until, chat.next_message if new_message else 0.0) - loop.time()) > 0:  # noqa: ASYNC110
            await asyncio.sleep(wait)

    def _bot_wide(self, chat_id: Any, now: float) -> bool:
        """Was this 429 the bot's global limit? Yes when several chats got one within a short window."""
        recent = self._recent_429
        recent.append((now, chat_id))
        while recent and recent[0][0] < now - GLOBAL_429_WINDOW_S:
            recent.popleft()
        return len({chat for _, chat in recent}) >= GLOBAL_429_CHATS

    async def process_request(
        self,
        callback: Any,
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: str | None,
    ) -> Any:
        chat_id = data.get("chat_id")
        if chat_id is None:
            return await callback(*args, **kwargs)
        loop = asyncio.get_running_loop()
        new_message = opens_message(endpoint)
        chat = self._chat(chat_id)
        async with chat.turn if new_message else contextlib.nullcontext():
            for attempt in range(self._max_retries + 1):
                await self._chat_ready(chat, new_message)
                await self._take_slot(bulk=rate_limit_args == BULK)
                await self._shared_slot()
                if new_message:
                    await self._shared_chat_slot(chat_id)
                try:
                    result = await callback(*args, **kwargs)
                except RetryAfter as exc:
                    await self._refused(exc)
                    if attempt == self._max_retries:
                        raise
                    # Always a timedelta here (the public `retry_after` is int or timedelta by a PTB
                    # flag); PTB's own AIORateLimiter reads it the same way.
                    pause = exc._retry_after.total_seconds()
                    now = loop.time()
                    if self._bot_wide(chat_id, now):
                        self._next_slot = max(self._next_slot, now + pause)
                        await self._pause_shared(pause)
                    else:  # this chat went too fast: only it waits
                        chat.paused_until = max(chat.paused_until, now + pause)
                        await self._pause_chat_shared(chat_id, pause)
                    continue
                finally:
                    # Counted from the answer, not the request: this message has surely arrived, so
                    # network jitter can never bring two of a chat's messages closer than the pace.
                    if new_message:
                        chat.next_message = loop.time() + self._chat_interval
                self._done(endpoint)
                return result
        raise AssertionError("unreachable")

    # Hooks for a subclass (delivery/pace.py): a pace shared with other processes, and counting.
    async def _shared_slot(self) -> None:
        """After this process's slot: wait for the slot shared with other processes, if any."""

    async def _shared_chat_slot(self, chat_id: Any) -> None:
        """A new message, after its global slot: wait for the chat's pace shared with other processes."""

    async def _pause_shared(self, pause_s: float) -> None:
        """A 429 that is the bot's global limit: pause the other processes too, if any."""

    async def _pause_chat_shared(self, chat_id: Any, pause_s: float) -> None:
        """A 429 for one chat: pause that chat in the other processes too, if any."""

    async def _refused(self, exc: RetryAfter) -> None:
        """Telegram answered 429."""

    def _done(self, endpoint: str) -> None:
        """Telegram accepted the request."""
