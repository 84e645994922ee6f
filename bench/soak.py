"""Soak: simulated users doing /recommend and 👍/👎 taps while syncs, training and a digest run.

    .venv/bin/python bench/soak.py [--users 500] [--seconds 120] [--concurrency 40]

The bot runs as its own process (`python bot.py`, as in production) against both doubles over HTTP,
so its memory is measured apart from the doubles'. Setup links N users to generated bilibili
accounts, all due for a sync and with their daily digest due now; the bot's tick (every 2 s) then
syncs, trains and sends digests while `--concurrency` virtual users keep asking /recommend and tapping
👍/👎 on a pick they have not rated yet, for a bounded time.

Figures:
- errors: ERROR lines and tracebacks in the bot's log, plus requests the bot never answered
  (no picks within 30 s, a tap never answered within 10 s);
- lost: taps whose label is not what the database holds at the end;
- p50/p95 ms: /recommend latency, from the update being queued to the first pick of that /recommend
  (digest picks are told apart by their database source) arriving at the Telegram double;
- rss: the bot process's resident memory after warm-up and at the end, and its growth per 1,000
  requests (/recommend + taps);
- secrets: the bot token, SESSDATA, bili_jct and refresh_token values found in the log or in any
  file of the data directory (must be 0; the credentials are stored encrypted).

Last line: errors=<n> lost=<n> p95_ms=<ms> rss_growth_mb=<MB per 1,000 requests>
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import signal
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlmodel import select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from jobs.sync import refresh_candidates  # noqa: E402
from storage import users  # noqa: E402
from storage.db import Database  # noqa: E402
from storage.models import Feedback, Shown, User  # noqa: E402
from tests.botenv import TOKEN, is_pick, pick_bvid  # noqa: E402
from tests.doubles.bilibili import BilibiliDouble  # noqa: E402
from tests.doubles.telegram import SentMessage, TelegramDouble  # noqa: E402
from tests.harness import link_user, make_services  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TZ = "Asia/Shanghai"
TG_ID_BASE, MID_BASE = 700_000, 70_000
PICKS_WAIT_S, TAP_WAIT_S, WARMUP_S = 30.0, 10.0, 10.0
FEEDBACK_DATA = re.compile(r"^fb:(\d+):([+-]1)$")


@dataclass
class Asked:
    chat: int
    mark: int  # the newest message id in the chat before the /recommend
    at: float  # monotonic time the update was queued


@dataclass
class Tally:
    asked: list[Asked]
    taps: dict[tuple[int, str], int]  # (chat, bvid) -> label tapped
    unanswered: int = 0
    requests: int = 0


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def prepare(data_dir: Path, bili: BilibiliDouble, n_users: int) -> tuple[dict[str, str], list[str]]:
    """N linked users, sync due, digest due now; returns the bot's environment and the secrets to hunt."""
    svc = make_services(data_dir, bili)
    await refresh_candidates(svc, force=True)
    local_now = datetime.fromtimestamp(svc.now(), ZoneInfo(TZ)).strftime("%H:%M")
    secrets = [TOKEN]
    for i in range(n_users):
        mid = MID_BASE + i
        bili.add_generated_user(mid, seed=i, n_history=40)
        user_id = link_user(svc, bili, TG_ID_BASE + i, mid, linked_ago_s=3600, timezone=TZ, digest_time=local_now)
        stored = users.load_credentials(svc.db, svc.vault, user_id) or {}
        secrets += [stored[k] for k in ("SESSDATA", "bili_jct", "refresh_token") if stored.get(k)]
    keys = svc.settings.storage.fernet_keys.get_secret_value()
    await svc.close()
    env = {
        "BOT_TOKEN": TOKEN,
        "DATA_DIR": str(data_dir),
        "FERNET_KEYS": keys,
        "JOB_TICK_SECONDS": "2",
        "BILIBILI_API_URL": bili.url,
        "BILIBILI_PASSPORT_URL": bili.url,
        "BILIBILI_WWW_URL": bili.url,
        "BILIBILI_IMAGE_URL": bili.url,
        "BILIBILI_MAX_RPS": "50",
        "TELEGRAM_POLL_TIMEOUT": "1",
        "TELEGRAM_MAX_RPS": "100000",  # the load is on the bot, not on Telegram's cap
        # Virtual users pick people at random, some several times a minute: no per-user /recommend limit.
        "RECOMMEND_COOLDOWN": "0",
    }
    return env, secrets


def feedback_buttons(message: SentMessage) -> list[tuple[int, str]]:
    return [(int(m.group(1)), d) for d in message.callback_data if (m := FEEDBACK_DATA.match(d))]


async def virtual_user(tg: TelegramDouble, people: list[dict], tally: Tally, until: float, rng: random.Random) -> None:
    """Asks /recommend for a random person, waits for the picks, taps one it has not rated yet."""
    while time.monotonic() < until:
        person = rng.choice(people)
        chat = person["id"]
        mark = max((m.message_id for m in tg.sent_to(chat)), default=0)
        tally.asked.append(Asked(chat, mark, time.monotonic()))
        tally.requests += 1
        await tg.send_text(person, "/recommend")
        deadline = time.monotonic() + PICKS_WAIT_S
        fresh: list[SentMessage] = []
        while time.monotonic() < deadline:
            fresh = [m for m in tg.sent_to(chat) if m.message_id > mark and is_pick(m)]
            if len(fresh) >= 5:
                break
            await asyncio.sleep(0.05)
        if not fresh:
            tally.unanswered += 1
            continue
        unrated = [m for m in fresh if (chat, pick_bvid(m)) not in tally.taps]
        if not unrated:
            continue
        message = rng.choice(unrated)
        data = rng.choice([d for _, d in feedback_buttons(message)])
        tally.taps[(chat, pick_bvid(message))] = int(data.rsplit(":", 1)[1])
        tally.requests += 1
        query = await tg.tap(person, message, data, check_button=False)
        try:
            await tg.wait_answer(query, timeout=TAP_WAIT_S)
        except (AssertionError, TimeoutError):
            tally.unanswered += 1


def latencies_ms(tg: TelegramDouble, tally: Tally, sources: dict[int, str]) -> list[float]:
    """Per /recommend: first pick of source 'recommend' after it, before the same chat's next ask."""
    by_chat: dict[int, list[Asked]] = {}
    for a in tally.asked:
        by_chat.setdefault(a.chat, []).append(a)
    out = []
    for chat, asks in by_chat.items():
        picks = [(m, ids[0][0]) for m in tg.sent_to(chat) if is_pick(m) and (ids := feedback_buttons(m))]
        for a, nxt in zip(asks, asks[1:] + [None]):
            arrived = [
                m.time
                for m, sid in picks
                if m.message_id > a.mark
                and sources.get(sid) == "recommend"
                and (nxt is None or m.message_id <= nxt.mark)
            ]
            if arrived:
                out.append(1000 * (min(arrived) - a.at))
    return out


def lost_taps(db: Database, tally: Tally) -> int:
    with db.session() as s:
        chat_of = {u.id: u.chat_id for u in s.exec(select(User)).all()}
        stored = {(chat_of[f.user_id], f.bvid): f.label for f in s.exec(select(Feedback)).all()}
    return sum(1 for key, label in tally.taps.items() if stored.get(key) != label)


def secrets_found(secrets: list[str], log_text: str, data_dir: Path) -> int:
    blobs = [log_text.encode()] + [p.read_bytes() for p in data_dir.rglob("*") if p.is_file()]
    return sum(1 for s in set(secrets) if any(s.encode() in b for b in blobs))


async def run(n_users: int, seconds: float, concurrency: int) -> None:
    rng = random.Random(7)
    async with BilibiliDouble() as bili, TelegramDouble(token=TOKEN) as tg:
        with tempfile.TemporaryDirectory() as tmp:
            data_dir = Path(tmp)
            started = time.perf_counter()
            env, secrets = await prepare(data_dir, bili, n_users)
            env["TELEGRAM_BASE_URL"] = tg.base_url
            people = [tg.user(TG_ID_BASE + i, f"soak{i}") for i in range(n_users)]
            for person in people:
                tg.known_chat(person["id"])  # each has talked to the bot before: digests can reach them
            print(f"setup: users={n_users} seconds={time.perf_counter() - started:.1f}")
            log_path = Path(tempfile.gettempdir()) / f"soak-{os.getpid()}-bot.log"
            with log_path.open("w") as log_file:
                bot = await asyncio.create_subprocess_exec(
                    sys.executable,
                    "bot.py",
                    cwd=ROOT,
                    env={**os.environ, **env},
                    stdout=log_file,
                    stderr=log_file,
                )
                tally = Tally(asked=[], taps={})
                try:
                    until = time.monotonic() + seconds
                    load = [
                        asyncio.create_task(virtual_user(tg, people, tally, until, random.Random(rng.random())))
                        for _ in range(concurrency)
                    ]
                    await asyncio.sleep(WARMUP_S)
                    rss_start, requests_start = rss_mb(bot.pid), tally.requests
                    await asyncio.gather(*load)
                    rss_end = rss_mb(bot.pid)
                finally:
                    bot.send_signal(signal.SIGTERM)
                    await asyncio.wait_for(bot.wait(), 60)
            log_text = log_path.read_text(errors="replace")
            print(f"bot log: {log_path}")
            db = Database(f"sqlite:///{data_dir / 'bilipick.db'}")
            with db.session() as s:
                sources = {r.id: r.source for r in s.exec(select(Shown)).all()}
                digests_sent = sum(1 for r in sources.values() if r == "digest")
            lost = lost_taps(db, tally)
            db.dispose()
            errors = len(re.findall(r" ERROR |Traceback", log_text)) + tally.unanswered
            found = secrets_found(secrets, log_text, data_dir)
    lat = sorted(latencies_ms(tg, tally, sources))
    p50 = statistics.median(lat) if lat else float("nan")
    p95 = lat[int(0.95 * (len(lat) - 1))] if lat else float("nan")
    measured = max(tally.requests - requests_start, 1)
    growth = (rss_end - rss_start) / measured * 1000
    syncs, trainings = log_text.count("job=sync"), log_text.count("train users=")
    print(
        f"load: seconds={seconds:.0f} concurrency={concurrency} recommends={len(tally.asked)} "
        f"taps={len(tally.taps)} digest_picks={digests_sent} sync_runs={syncs} train_runs={trainings}"
    )
    print(f"recommend latency: n={len(lat)} p50_ms={p50:.0f} p95_ms={p95:.0f}")
    print(f"rss: start_mb={rss_start:.1f} end_mb={rss_end:.1f} over {measured} requests")
    print(f"errors: log={errors - tally.unanswered} unanswered={tally.unanswered}; secrets_found={found}")
    print(f"errors={errors} lost={lost} p95_ms={p95:.0f} rss_growth_mb={growth:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--concurrency", type=int, default=40)
    args = parser.parse_args()
    asyncio.run(run(args.users, args.seconds, args.concurrency))


if __name__ == "__main__":
    main()
