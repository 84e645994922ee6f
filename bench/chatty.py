"""One chatty user and everyone else: how long another user's reply takes while one user floods the bot.

    .venv/bin/python bench/chatty.py [--flood 40] [--retry-after 20] [--rounds 3]

The real Application (bot.py, through tests.botenv.running_bot) against the Telegram double, which
answers like Telegram: a chat sent more than one message in a second gets 429 retry_after=N (Telegram's
per-chat waits run long), the bot more than 30 in a second gets 429 retry_after=1. Each round, user A
sends `--flood` /help in a burst, then user B sends one /help; measured from B's update being queued to
B's reply arriving at the double (event-loop monotonic clock), and how many 429s Telegram answered.

Last line: b_reply_ms=<median over rounds> chat_429s=<total> a_replies=<A's messages per round>
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.botenv import TOKEN, running_bot  # noqa: E402
from tests.doubles.bilibili import BilibiliDouble  # noqa: E402
from tests.doubles.telegram import TelegramDouble  # noqa: E402

HELP = "/recommend —"


async def one_round(tg: TelegramDouble, a: dict, b: dict, flood: int) -> tuple[float, int]:
    mark = tg.mark()
    for _ in range(flood):
        await tg.send_text(a, "/help")
    asked = time.monotonic()
    await tg.send_text(b, "/help")
    reply = await tg.wait_for(lambda m: HELP in m.content, chat=b, since=mark, timeout=600)
    await asyncio.sleep(flood * 1.1 if len(tg.retry_afters) else 12.0)  # A's chat drains before the next round
    return reply.time - asked, len([m for m in tg.sent_to(a) if m.seq > mark])


async def run(flood: int, retry_after: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        async with (
            TelegramDouble(token=TOKEN, flood_limits=(30, 1), chat_retry_after=retry_after) as tg,
            BilibiliDouble() as bili,
        ):
            async with running_bot(Path(tmp), tg, bili, tick_seconds=3600):
                a, b = tg.user(91001, language_code="en"), tg.user(91002, language_code="en")
                for user in (a, b):
                    await tg.send_text(user, "/start")
                    await tg.wait_for(lambda m: "BiliPick" in m.content, chat=user)
                await asyncio.sleep(1.1)
                waits, a_replies = [], []
                for n in range(rounds):
                    wait_s, sent_to_a = await one_round(tg, a, b, flood)
                    waits.append(wait_s * 1000)
                    a_replies.append(sent_to_a)
                    print(
                        f"round {n + 1}: B's reply {wait_s * 1000:.0f} ms, A got {sent_to_a} messages, "
                        f"429s so far {len(tg.retry_afters)}"
                    )
                print(
                    f"b_reply_ms={statistics.median(waits):.0f} chat_429s={len(tg.retry_afters)} "
                    f"a_replies={statistics.median(a_replies):.0f}"
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flood", type=int, default=40)
    parser.add_argument("--retry-after", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(run(args.flood, args.retry_after, args.rounds))


if __name__ == "__main__":
    main()
