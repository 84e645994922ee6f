"""The real Application, built by bot.py, running against both doubles over HTTP."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from contextlib import asynccontextmanager
from pathlib import Path

from pydantic import SecretStr
from telegram.ext import Application

from bot import build_application
from services import Services
from tests.doubles.bilibili import BilibiliDouble
from tests.doubles.telegram import SentMessage, TelegramDouble
from tests.harness import make_services

TOKEN = "123456789:AAFakeTokenForTheDoubleOnly_abcdefghij"
# A pick as the user sees it: "NN/100" and the video's link (groups: rating, bvid).
PICK_CAPTION = re.compile(r"(\d{2,3})/100.*https://www\.bilibili\.com/video/(BV\w+)", re.S)


def is_pick(message: SentMessage) -> bool:
    return bool(message.callback_data) and PICK_CAPTION.search(message.content) is not None


def pick_bvid(message: SentMessage) -> str:
    return PICK_CAPTION.search(message.content).group(2)


def pick_rating(message: SentMessage) -> int:
    return int(PICK_CAPTION.search(message.content).group(1))


def pick_messages(tg: TelegramDouble, chat: dict | int | None = None) -> list[SentMessage]:
    """The picks sent to `chat` (to anyone when None), in order."""
    return [m for m in (tg.sent if chat is None else tg.sent_to(chat)) if is_pick(m)]


def last_message_id(tg: TelegramDouble, chat: dict | int) -> int:
    """The newest message id in the chat so far (0 if none): what came after it is new."""
    return max((m.message_id for m in tg.sent_to(chat)), default=0)


async def eventually(condition: Callable[[], bool], timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def forget_in_chat(tg: TelegramDouble, user: dict) -> None:
    """The user sends /forget, taps the confirm button and is told everything is deleted."""
    mark = tg.mark()
    await tg.send_text(user, "/forget")
    confirm = await tg.wait_for(lambda m: "cannot be undone" in m.content, chat=user, since=mark)
    await tg.wait_answer(await tg.tap(user, confirm, confirm.callback_data[0]))
    await tg.wait_for(lambda m: "is deleted" in m.content, chat=user, since=mark)


@asynccontextmanager
async def running_bot(data_dir: Path, tg: TelegramDouble, bili: BilibiliDouble, fernet_keys: str | None = None, **jobs):
    """Yields (application, services) with long polling running; stops everything afterwards.
    `fernet_keys`: a restart on a DATA_DIR an earlier run stored logins in."""
    services: Services = make_services(data_dir, bili, fernet_keys=fernet_keys, **jobs)
    services.settings.telegram.bot_token = SecretStr(tg.token)
    services.settings.telegram.base_url = tg.base_url
    app: Application = build_application(services.settings, services)
    await app.initialize()
    if app.post_init:
        await app.post_init(app)
    await app.start()
    await app.updater.start_polling(poll_interval=0.0, timeout=1)
    try:
        yield app, services
    finally:  # the order run_polling uses
        await app.updater.stop()
        await app.stop()
        await app.post_stop(app)
        await app.shutdown()
        await app.post_shutdown(app)


async def qr_key_after_login(tg: TelegramDouble, bili: BilibiliDouble, user: dict) -> str:
    """The user sends /login and gets the QR photo; the key of the code it shows (not yet scanned)."""
    mark = tg.mark()
    await tg.send_text(user, "/login")
    await tg.wait_for(lambda m: m.is_photo, chat=user, since=mark, timeout=30)
    return bili.pending_qr().key


async def first_picks_ready(tg: TelegramDouble, user: dict, since: int, timeout: float = 120) -> SentMessage:
    return await tg.wait_for(
        lambda m: "first personal picks are ready" in m.content, chat=user, since=since, timeout=timeout
    )


async def all_synced(tg: TelegramDouble, user: dict, since: int, timeout: float = 600) -> SentMessage:
    """The onboarding status message's last edit: the whole history is synced."""
    return await tg.wait_for(lambda m: "All synced" in m.content, chat=user, since=since, timeout=timeout)
