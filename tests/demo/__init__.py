"""`make demo`: the real bot (bot.build_application, the same code paths as `python bot.py`) against the
bundled doubles of bilibili and Telegram, with a chat page on http://127.0.0.1:8080 that looks and
behaves like a Telegram private chat. Nothing leaves the machine.

The page is served by the Telegram double (its routes come before the Bot API's catch-all). It polls
the chat's messages as Telegram Message JSON and renders them as a client does: text with entities,
photos, inline keyboards. "Scan with the bilibili app" confirms the double's newest QR code for the
demo account; "Advance to tomorrow" moves the bot's clock to the user's next digest time and runs a tick.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

from aiohttp import web
from telegram.ext import Application

from services import Services
from storage import users
from tests.botenv import TOKEN, running_bot
from tests.doubles.bilibili import BilibiliDouble
from tests.doubles.telegram import TelegramDouble

log = logging.getLogger("bilipick.demo")

PAGE = Path(__file__).with_name("chat.html")
DEMO_MID = 20260001  # the simulated bilibili account the QR scan links
DEMO_TELEGRAM_ID = 424242
DEMO_HISTORY = 240  # watched videos: enough for a taste, quick to sync


@dataclass
class DemoClock:
    """The bot's clock: real time plus what "advance" added."""

    offset_s: float = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset_s


@dataclass
class ChatPage:
    """The chat page and its small JSON API, for one person chatting with the bot."""

    tg: TelegramDouble
    bili: BilibiliDouble
    clock: DemoClock
    user: dict
    services: Services | None = None
    app: Application | None = None
    scanned: set[str] = field(default_factory=set)

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/", self.page),
            web.get("/demo/state", self.state),
            web.get("/demo/file/{file_id}", self.file),
            web.post("/demo/send", self.send),
            web.post("/demo/tap", self.tap),
            web.post("/demo/scan", self.scan),
            web.post("/demo/advance", self.advance),
        ]

    async def page(self, request: web.Request) -> web.Response:
        return web.FileResponse(PAGE)

    async def state(self, request: web.Request) -> web.Response:
        """The chat as the person sees it, plus what the two demo buttons may do now."""
        return web.json_response(
            {
                "messages": self.tg.messages(self.user),
                "bot": self.tg.bot_user["first_name"],
                "commands": self.tg.my_commands({"type": "all_private_chats"}) or self.tg.my_commands(),
                "can_scan": self._pending_qr() is not None,
                "clock": dt.datetime.fromtimestamp(self.clock(), ZoneInfo(self._timezone())).strftime("%a %d %b %H:%M"),
            }
        )

    async def file(self, request: web.Request) -> web.StreamResponse:
        data, url = self.tg.photo_source(request.match_info["file_id"])
        if data is not None:
            return web.Response(body=data, content_type="image/png" if data[:4] == b"\x89PNG" else "image/jpeg")
        if url and url.startswith("http://127.0.0.1"):  # a cover the bot passed by URL: the double serves it
            raise web.HTTPFound(url)
        raise web.HTTPNotFound()

    async def send(self, request: web.Request) -> web.Response:
        text = str((await request.json()).get("text", "")).strip()[:4096]
        if text:
            await self.tg.send_text(self.user, text)
        return web.json_response({"ok": True})

    async def tap(self, request: web.Request) -> web.Response:
        body = await request.json()
        try:
            qid = await self.tg.tap(self.user, int(body["message_id"]), str(body["data"]))
        except (AssertionError, KeyError, ValueError):
            return web.json_response({"text": "This button is gone."})
        try:
            answer = await self.tg.wait_answer(qid, timeout=15)
        except AssertionError:
            return web.json_response({"text": ""})
        return web.json_response({"text": answer.get("text") or "", "alert": bool(answer.get("show_alert"))})

    async def scan(self, request: web.Request) -> web.Response:
        """The bilibili app scanned the newest QR code and the person confirmed the login."""
        key = self._pending_qr()
        if key is None:
            return web.json_response({"ok": False, "text": "No QR code is waiting: send /login first."})
        self.bili.scan(key)
        self.bili.confirm(key, DEMO_MID)
        self.scanned.add(key)
        return web.json_response({"ok": True})

    async def advance(self, request: web.Request) -> web.Response:
        """Move the bot's clock to the person's next digest time (tomorrow's if today's passed), tick."""
        now = self.clock()
        target = self._next_digest(now)
        self.clock.offset_s += max(0.0, target - now) + 1
        await self.tick()
        return web.json_response({"ok": True})

    async def tick(self) -> None:
        """What the JobQueue's tick does every JOB_TICK_SECONDS, now."""
        assert self.app is not None
        for job in self.app.job_queue.jobs():
            if job.name == "tick":
                await job.callback.tick(self.app)

    def _pending_qr(self) -> str | None:
        for key in reversed(self.bili.qrs):
            qr = self.bili.qrs[key]
            if qr.state == "waiting" and key not in self.scanned:
                return key
            break
        return None

    def _user_row(self):
        return users.get_user(self.services.db, self.user["id"]) if self.services else None

    def _timezone(self) -> str:
        row = self._user_row()
        return row.timezone if row else "Asia/Shanghai"

    def _next_digest(self, now: float) -> float:
        row = self._user_row()
        zone = ZoneInfo(row.timezone if row else "Asia/Shanghai")
        hour, minute = (int(x) for x in (row.digest_time if row else "09:00").split(":"))
        local = dt.datetime.fromtimestamp(now, zone)
        target = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
        if target <= local:
            target += dt.timedelta(days=1)
        return target.timestamp()


@asynccontextmanager
async def running_demo(
    port: int = 8080,
    data_dir: Path | None = None,
    tick_seconds: float = 5.0,
) -> AsyncIterator[ChatPage]:
    """Both doubles, the chat page on `port` and the real bot, until the context ends."""
    with tempfile.TemporaryDirectory(prefix="bilipick-demo-") as scratch:
        data = data_dir or Path(scratch)
        async with BilibiliDouble() as bili:
            bili.add_generated_user(DEMO_MID, seed=2026, n_history=DEMO_HISTORY, uname="演示用户")
            tg = TelegramDouble(token=TOKEN, port=port, bot_first_name="BiliPick (demo)")
            person = tg.user(DEMO_TELEGRAM_ID, "You", language_code="en")
            page = ChatPage(tg, bili, DemoClock(), person)
            tg.extra_routes = page.routes()
            async with tg:
                async with running_bot(data, tg, bili, tick_seconds=tick_seconds) as (app, services):
                    services.clock = page.clock
                    page.services, page.app = services, app
                    yield page


async def main(port: int = 8080) -> None:
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.WARNING)
    started = time.monotonic()
    async with running_demo(port):
        print(
            f"BiliPick demo: open http://127.0.0.1:{port} (ready in {time.monotonic() - started:.1f} s; "
            "Ctrl-C stops it, nothing is kept)",
            flush=True,
        )
        await asyncio.Event().wait()
