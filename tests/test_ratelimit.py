"""The bot's rate limiter against the Telegram double: spaced under the limit, replies before bulk
sends, and a 429 pauses everything without a burst afterwards."""

from __future__ import annotations

import asyncio

from telegram.ext import ExtBot

from delivery.ratelimit import BULK, PacedRateLimiter


def readers(tg, first_id: int, n: int) -> list[int]:
    """Chats that have talked to the bot (so it may write to them)."""
    for chat_id in range(first_id, first_id + n):
        tg.known_chat(chat_id)
    return list(range(first_id, first_id + n))


async def make_bot(tg, rps: float) -> ExtBot:
    bot = ExtBot(tg.token, base_url=tg.base_url, rate_limiter=PacedRateLimiter(rps))
    await bot.initialize()
    return bot


async def test_a_reply_goes_before_queued_digest_sends(tg):
    bot = await make_bot(tg, rps=20)
    *subscribers, asker = readers(tg, 7000, 13)
    digest = [asyncio.create_task(bot.send_message(c, "digest", rate_limit_args=BULK)) for c in subscribers]
    await asyncio.sleep(0.12)  # a few digest sends have gone, the rest wait in line
    await bot.send_message(asker, "your picks")
    await asyncio.gather(*digest)
    order = [chat for _, chat in tg.send_log]
    assert order.index(asker) <= 4, "the reply overtook the waiting digest sends"
    await bot.shutdown()


async def test_sends_stay_under_the_limit_and_a_429_pauses_all_without_a_burst(tg):
    tg.flood_limits = (10, 100)
    bot = await make_bot(tg, rps=8)  # margin for arrival jitter: only the injected 429 may occur
    chats = readers(tg, 7100, 25)
    tg.inject("sendMessage", 429, retry_after=1, chat_id=chats[5])
    await asyncio.gather(*(bot.send_message(c, "hello", rate_limit_args=BULK) for c in chats))
    assert len(tg.send_log) == 25, "every message arrived, the refused one after its retry"
    assert tg.max_rate_global() <= 10
    assert [e["error_code"] for e in tg.errors if e["method"] == "sendMessage"] == [429], "no 429 cycle"
    await bot.shutdown()
