"""`python bot.py` killed with SIGKILL in the middle of a digest run, then restarted: the rest goes out,
nothing is sent twice. The bot runs as a real process against both doubles over HTTP."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections import Counter
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlmodel import select

from jobs.sync import refresh_candidates
from storage import users
from storage.db import Database
from storage.models import Digest, Shown
from tests.botenv import TOKEN, eventually, pick_bvid, pick_messages
from tests.doubles.bilibili import BilibiliDouble
from tests.doubles.telegram import TelegramDouble
from tests.harness import link_user, make_services

ROOT = Path(__file__).resolve().parent.parent
CHATS = (9501, 9502, 9503, 9504)
TZ = "Asia/Shanghai"


async def prepare(data_dir: Path, tg: TelegramDouble, bili: BilibiliDouble) -> dict[str, str]:
    """Four linked users whose digest time is now; returns the bot's environment."""
    svc = make_services(data_dir, bili)
    await refresh_candidates(svc, force=True)
    local_now = datetime.fromtimestamp(svc.now(), ZoneInfo(TZ)).strftime("%H:%M")
    for n, chat in enumerate(CHATS):
        mid = 4500 + n
        bili.add_generated_user(mid, seed=n, n_history=40, uname=f"u{mid}")
        uid = link_user(svc, bili, chat, mid, linked_ago_s=3600, timezone=TZ, digest_time=local_now)
        users.update_user(svc.db, uid, next_sync_at=svc.now() + 3600)  # keep this test about digests
    keys = svc.settings.storage.fernet_keys.get_secret_value()
    await svc.close()
    return {
        "BOT_TOKEN": TOKEN,
        "TELEGRAM_BASE_URL": tg.base_url,
        "DATA_DIR": str(data_dir),
        "FERNET_KEYS": keys,
        "JOB_TICK_SECONDS": "0.5",
        "BILIBILI_API_URL": bili.url,
        "BILIBILI_PASSPORT_URL": bili.url,
        "BILIBILI_WWW_URL": bili.url,
        "BILIBILI_IMAGE_URL": bili.url,
        "TELEGRAM_POLL_TIMEOUT": "1",
    }


def pick_bvids(tg: TelegramDouble) -> list[tuple[int, str]]:
    return [(chat, pick_bvid(m)) for chat in CHATS for m in pick_messages(tg, chat)]


async def start_bot(env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "bot.py",
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )


async def test_a_killed_digest_run_resumes_without_duplicates(tmp_path, tg, bilibili_double):
    env = await prepare(tmp_path, tg, bilibili_double)

    first = await start_bot(env)
    try:
        await eventually(lambda: len(pick_bvids(tg)) >= 3, 60, "the digest run to start")
    finally:
        first.send_signal(signal.SIGKILL)
        await first.wait()
    before_restart = len(pick_bvids(tg))
    assert before_restart < 5 * len(CHATS), "killed in the middle, not after the end"

    db = Database(f"sqlite:///{tmp_path / 'bilipick.db'}")

    def finished() -> bool:
        with db.session() as s:
            statuses = [d.status for d in s.exec(select(Digest)).all()]
        return len(statuses) == len(CHATS) and all(status == "sent" for status in statuses)

    second = await start_bot(env)
    try:
        await eventually(finished, 60, "every digest to be finished after the restart")
    finally:
        second.send_signal(signal.SIGTERM)
        await asyncio.wait_for(second.wait(), 30)

    delivered = pick_bvids(tg)
    assert not [pair for pair, n in Counter(delivered).items() if n > 1], "nothing is sent twice"
    assert len(delivered) > before_restart, "the restarted bot sent the rest"
    with db.session() as s:
        rows = s.exec(select(Shown)).all()
    in_flight_at_kill = [r for r in rows if r.message_id is None]
    # Only a send in flight at the kill may be missing (delivered or not, it is never repeated).
    assert len(in_flight_at_kill) <= len(CHATS)
    assert all(r.send_started_at is not None for r in in_flight_at_kill)
    assert len(delivered) >= len(rows) - len(in_flight_at_kill)
    db.dispose()


async def test_two_bots_on_one_database_send_each_digest_once(tmp_path, tg, bilibili_double):
    """A rolling deploy: two `python bot.py` processes start together on one database (both migrate,
    both tick, both see the claimed digests). Every pick reaches its chat exactly once."""
    env = await prepare(tmp_path, tg, bilibili_double)
    bots = [await start_bot(env), await start_bot(env)]
    db = Database(f"sqlite:///{tmp_path / 'bilipick.db'}")

    def finished() -> bool:
        with db.session() as s:
            statuses = [d.status for d in s.exec(select(Digest)).all()]
        return len(statuses) == len(CHATS) and all(status == "sent" for status in statuses)

    try:
        await eventually(finished, 90, "every digest to be sent")
        await asyncio.sleep(2.0)  # a second sender, if any, would still be sending its copies now
    finally:
        for bot in bots:
            bot.send_signal(signal.SIGTERM)
        for bot in bots:
            await asyncio.wait_for(bot.wait(), 30)
    delivered = pick_bvids(tg)
    assert not [pair for pair, n in Counter(delivered).items() if n > 1], "nothing is sent twice"
    with db.session() as s:
        rows = s.exec(select(Shown)).all()
    assert sorted((r.chat_id, r.bvid) for r in rows) == sorted(delivered), "one set of picks per digest, all sent"
    db.dispose()
