"""The bot's rate limiter against the Telegram double: spaced under the bot's limit and each chat's,
replies before bulk sends, a 429 pauses the chat it answered (every chat when many get one), and no
burst afterwards."""

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


async def test_sends_stay_under_the_limit_and_a_429_brings_no_burst_after_it(tg):
    tg.flood_limits = (10, 100)
    bot = await make_bot(tg, rps=8)  # margin for arrival jitter: only the injected 429 may occur
    chats = readers(tg, 7100, 25)
    tg.inject("sendMessage", 429, retry_after=1, chat_id=chats[5])
    await asyncio.gather(*(bot.send_message(c, "hello", rate_limit_args=BULK) for c in chats))
    assert len(tg.send_log) == 25, "every message arrived, the refused one after its retry"
    assert tg.max_rate_global() <= 10
    assert [e["error_code"] for e in tg.errors if e["method"] == "sendMessage"] == [429], "no 429 cycle"
    await bot.shutdown()


def send_times(tg, chat: int) -> list[float]:
    return [t for t, c in tg.send_log if c == chat]


async def test_one_chat_gets_at_most_one_message_a_second_and_other_chats_do_not_wait_for_it(tg):
    tg.flood_limits = (100, 1)  # Telegram: about one message per second in one chat
    bot = await make_bot(tg, rps=30)
    chatty, quiet = readers(tg, 7200, 2)
    flood = [asyncio.create_task(bot.send_message(chatty, f"help {i}")) for i in range(4)]
    await asyncio.sleep(0.05)  # the first has gone, the other three wait for the chat's pace
    await bot.send_message(quiet, "your answer")
    await asyncio.gather(*flood)
    assert tg.retry_afters == [], "no chat went faster than Telegram allows"
    assert tg.max_rate_per_chat() <= 1
    assert [m.text for m in tg.sent_to(chatty)] == [f"help {i}" for i in range(4)], "in order"
    assert send_times(tg, quiet)[0] < send_times(tg, chatty)[1], "the other chat did not queue behind it"
    await bot.shutdown()


async def test_a_429_for_one_chat_pauses_only_that_chat(tg):
    bot = await make_bot(tg, rps=30)
    flooded, other = readers(tg, 7300, 2)
    tg.inject("sendMessage", 429, retry_after=2, chat_id=flooded)
    refused = asyncio.create_task(bot.send_message(flooded, "held"))
    await eventually_refused(tg)
    await bot.send_message(other, "not held")
    await refused
    ((limited_at, chat, pause),) = tg.retry_afters
    assert chat == flooded
    assert send_times(tg, other)[0] < limited_at + pause, "the other chat was not paused"
    assert send_times(tg, flooded)[0] >= limited_at + pause, "the refused chat waited its retry_after"
    await bot.shutdown()


async def test_429s_in_many_chats_are_the_bots_limit_and_pause_every_chat(tg):
    bot = await make_bot(tg, rps=30)
    *refused_chats, later = readers(tg, 7400, 4)
    for chat in refused_chats:
        tg.inject("sendMessage", 429, retry_after=1, chat_id=chat, times=1)
    first = [asyncio.create_task(bot.send_message(c, "x")) for c in refused_chats]
    await eventually_refused(tg, len(refused_chats))
    await bot.send_message(later, "after the pause")
    await asyncio.gather(*first)
    last_429 = max(t + pause for t, _, pause in tg.retry_afters)
    assert send_times(tg, later)[0] >= last_429, "the bot-wide pause held every chat"
    await bot.shutdown()


async def eventually_refused(tg, n: int = 1) -> None:
    for _ in range(400):
        if len(tg.retry_afters) >= n:
            return
        await asyncio.sleep(0.005)
    raise AssertionError("no 429 answered")
