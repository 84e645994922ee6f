"""A bad time zone or digest time, in the environment or in one user's row, used to end the digest run
for everyone (issue 11, Low). Now the bot refuses to start naming the variable, and a bad row only
costs its own user the digest."""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from jobs.sync import refresh_candidates
from settings import JobSettings
from storage import users
from tests.botenv import TOKEN, eventually, pick_messages, running_bot
from tests.harness import make_services

ROOT = Path(__file__).resolve().parent.parent
TZ = "Asia/Shanghai"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DEFAULT_TIMEZONE", "Mars/Base"),
        ("DEFAULT_TIMEZONE", "../../etc/passwd"),
        ("DEFAULT_DIGEST_TIME", "25:99"),
        ("DEFAULT_DIGEST_TIME", "9am"),
    ],
)
async def test_the_bot_refuses_to_start_with_a_bad_default_naming_the_variable(tmp_path, variable, value):
    env = {
        **os.environ,
        "BOT_TOKEN": TOKEN,
        "DATA_DIR": str(tmp_path),
        variable: value,
        "TELEGRAM_BASE_URL": "http://127.0.0.1:9/bot",
        "TELEGRAM_POLL_TIMEOUT": "1",
    }
    bot = await asyncio.create_subprocess_exec(
        sys.executable,
        "bot.py",
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        _, stderr = await asyncio.wait_for(bot.communicate(), 60)
    except TimeoutError:
        bot.kill()
        await bot.wait()
        pytest.fail(f"the bot started with {variable}={value!r}")
    assert bot.returncode != 0
    assert variable in stderr.decode()


def test_good_defaults_are_accepted():
    assert JobSettings(DEFAULT_TIMEZONE="Europe/Berlin", DEFAULT_DIGEST_TIME="23:59").default_digest_time == "23:59"
    with pytest.raises(ValidationError, match="DEFAULT_DIGEST_TIME"):
        JobSettings(DEFAULT_DIGEST_TIME="24:00")


async def test_a_user_with_a_bad_timezone_or_time_does_not_stop_the_others_digest(
    tmp_path, tg, bilibili_double, caplog
):
    svc = make_services(tmp_path, bilibili_double)
    await refresh_candidates(svc, force=True)
    local_now = datetime.fromtimestamp(svc.now(), ZoneInfo(TZ)).strftime("%H:%M")
    earlier = svc.now() - 86400
    # Rows as an old version, a hand edit or a removed zone may leave them; first in line.
    for chat, fields in (
        (9601, {"timezone": "Mars/Base", "digest_time": local_now}),
        (9602, {"timezone": TZ, "digest_time": "25:99"}),
        (9603, {"timezone": TZ, "digest_time": local_now}),
    ):
        users.ensure_user(svc.db, chat, chat, "en", now=earlier, **fields)
    await svc.close()

    async with running_bot(tmp_path, tg, bilibili_double, tick_seconds=0.3):
        await eventually(lambda: len(pick_messages(tg, 9603)) >= 5, 60, "the healthy user's digest")
        await asyncio.sleep(1.0)  # more ticks: they stay as they are

    assert len(pick_messages(tg, 9603)) == 5
    assert pick_messages(tg, 9601) == pick_messages(tg, 9602) == []
    skipped = {r.getMessage() for r in caplog.records if "unusable" in r.getMessage()}
    assert any("Mars/Base" in m for m in skipped) and any("25:99" in m for m in skipped)
