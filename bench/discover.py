"""/similar, /search and /popular for N linked users at once (default 50), against both doubles at
bilibili's real pace (4 requests/s), first with cold caches, then warm.

    .venv/bin/python bench/discover.py [--users 50] [--rps 4] [--history 150]

Setup runs in a child process (as bench/recommend.py's): N users linked in storage with the bilibili
double's credentials, synced and trained. The measuring process then runs the real Application
(bot.py) against the doubles with the periodic tick removed (only the commands call bilibili) and
Telegram's send cap lifted, so the bot's own time shows.

What the users ask: user i asks /similar for one of ten videos no list shows (so nobody's sync fetched
them: the cold round needs ten view/detail calls), /search for one of five queries and /popular for one
of five partitions; people asking about the same things is what the caches are for.

Rounds, each command sent by every user at (nearly) the same instant:
- cold: the bot process just started, nothing cached in it: /similar, then /search, then /popular;
- warm: the same again, each user now asking about another of the same videos, queries and partitions.

Figures: handler time (bench/recommend.py's OwnTime: the handler's own steps on the event loop, not
its waits for bilibili or Telegram) and latency (the update queued -> the reply at the Telegram double).
Last line:
  similar_p95_ms= search_p95_ms= popular_p95_ms=  warm handler time, p95
  cold_similar_p95_ms=                            cold /similar latency, p95 (the bilibili calls at 4/s in it)
  calls_per_command=                              bilibili calls of both rounds / commands
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cryptography.fernet import Fernet

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.recommend import LIFTED_RPS, bot, pct, recorded, summary, timed_handler  # noqa: E402
from bilibili.models import av_to_bv  # noqa: E402
from jobs.schedule import after_sync  # noqa: E402
from jobs.sync import sync_user  # noqa: E402
from jobs.training import train_users_now  # noqa: E402
from tests.botenv import TOKEN, eventually, last_message_id  # noqa: E402
from tests.doubles.bilibili import BilibiliDouble  # noqa: E402
from tests.doubles.bilibili_catalogue import Video  # noqa: E402
from tests.doubles.telegram import TelegramDouble  # noqa: E402
from tests.harness import link_generated_users, make_services  # noqa: E402

TG_ID_BASE = 950_000
MID_BASE = 20_000
QUERIES = ("游戏", "音乐", "美食", "猫", "科技")
PARTITIONS = ("游戏", "音乐", "知识", "美食", "动画")
VIDEOS = 10
ROUND_TIMEOUT_S = 180.0
CHAT_PACE_S = 1.1


# --------------------------------------------------------------------------- setup (child process)
async def prepare(data_dir: Path, n_users: int, n_history: int) -> None:
    async with BilibiliDouble() as bili:
        svc = make_services(data_dir, bili, fernet_keys=os.environ["FERNET_KEYS"])
        try:
            ids = link_generated_users(
                svc, bili, n_users, first_mid=MID_BASE, first_telegram_id=TG_ID_BASE, n_history=n_history
            )
            started = time.perf_counter()
            for uid in ids:
                report = await sync_user(svc, uid)
                assert report.ok, report.error
                after_sync(svc, uid, report)
            train = await train_users_now(svc, ids)
            print(f"setup: users={n_users} sync_s={time.perf_counter() - started:.1f} train_s={train.seconds:.1f}")
        finally:
            await svc.close()


def prepare_in_child(data_dir: Path, n_users: int, n_history: int) -> None:
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--prepare",
        str(data_dir),
        "--users",
        str(n_users),
        "--history",
        str(n_history),
    ]
    subprocess.run(cmd, check=True)


# --------------------------------------------------------------------------- measuring
async def one_round(tg: TelegramDouble, people: list[dict], texts: list[str]) -> list[float]:
    """Every user sends their text at (nearly) the same moment; latency (ms) to each one's reply."""
    await asyncio.sleep(CHAT_PACE_S)  # each chat's last reply is a second old: Telegram's 1/s per chat adds nothing
    before = {p["id"]: last_message_id(tg, p) for p in people}
    sent_at: dict[int, float] = {}
    for p, text in zip(people, texts):
        sent_at[p["id"]] = time.monotonic()
        await tg.send_text(p, text)

    def reply(p: dict):
        return next((m for m in tg.sent_to(p) if m.message_id > before[p["id"]]), None)

    await eventually(lambda: all(reply(p) is not None for p in people), ROUND_TIMEOUT_S, "every reply")
    return [1000 * (reply(p).time - sent_at[p["id"]]) for p in people]


def commands(kind: str, n: int, shift: int, asked: list[str]) -> list[str]:
    if kind == "similar":
        return [f"/similar {asked[(i + shift) % len(asked)]}" for i in range(n)]
    if kind == "search":
        return [f"/search {QUERIES[(i + shift) % len(QUERIES)]}" for i in range(n)]
    return [f"/popular {PARTITIONS[(i + shift) % len(PARTITIONS)]}" for i in range(n)]


def unlisted_videos(bili: BilibiliDouble, n: int) -> list[str]:
    """n videos no list shows (so nobody's sync fetched them), each alike a popular video with tags."""
    models = [v for v in bili.videos.values() if v.in_popular and len(v.tags) >= 2]
    asked = []
    for i in range(n):
        m, aid = models[i * 7 % len(models)], 970_000_000 + i
        bili.add_video(
            Video(
                aid=aid,
                bvid=av_to_bv(aid),
                title=f"bench video {i}",
                pic=m.pic,
                tid=m.tid,
                tname=m.tname,
                pubdate=m.pubdate,
                duration=300,
                owner_mid=m.owner_mid,
                owner_name=m.owner_name,
                view=1000,
                tags=list(m.tags),
                in_popular=False,
            )
        )
        asked.append(av_to_bv(aid))
    return asked


async def measure(data_dir: Path, n_users: int, rps: float) -> dict[str, float]:
    figures: dict[str, float] = {}
    async with BilibiliDouble() as bili, TelegramDouble(token=TOKEN, keep_photo_bytes=False) as tg:
        asked = unlisted_videos(bili, VIDEOS)
        people = [tg.user(TG_ID_BASE + i, first_name=f"User{i}", language_code="en") for i in range(n_users)]
        async with bot(data_dir, tg, bili, LIFTED_RPS) as (app, svc):
            svc.bili.throttle.max_rps = rps  # bilibili's real pace
            bili.reset_calls()
            sent = 0
            for phase, shift in (("cold", 0), ("warm", 1)):
                for kind in ("similar", "search", "popular"):
                    handler: list[float] = []
                    calls = bili.total_calls
                    with timed_handler(app, kind, handler):
                        latency = await one_round(tg, people, commands(kind, n_users, shift, asked))
                        await recorded(handler, n_users)
                    sent += n_users
                    print(summary(f"{phase} /{kind}: handler time", handler))
                    print(
                        summary(f"{phase} /{kind}: latency", latency) + f"  bilibili calls={bili.total_calls - calls}"
                    )
                    figures[f"{phase}_{kind}_handler"] = pct(handler, 95)
                    figures[f"{phase}_{kind}_latency"] = pct(latency, 95)
            figures["calls_per_command"] = bili.total_calls / sent
            print(f"bilibili calls: {dict(bili.calls)} for {sent} commands")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--rps", type=float, default=4.0, help="bilibili requests per second (its real pace)")
    parser.add_argument("--history", type=int, default=150, help="watches per user (setup)")
    parser.add_argument("--prepare", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.prepare:
        asyncio.run(prepare(args.prepare, args.users, args.history))
        return
    os.environ["FERNET_KEYS"] = Fernet.generate_key().decode()
    with tempfile.TemporaryDirectory() as tmp:
        prepare_in_child(Path(tmp), args.users, args.history)
        f = asyncio.run(measure(Path(tmp), args.users, args.rps))
    print(
        f"similar_p95_ms={f['warm_similar_handler']:.1f} search_p95_ms={f['warm_search_handler']:.1f} "
        f"popular_p95_ms={f['warm_popular_handler']:.1f} cold_similar_p95_ms={f['cold_similar_latency']:.1f} "
        f"calls_per_command={f['calls_per_command']:.2f}"
    )


if __name__ == "__main__":
    main()
