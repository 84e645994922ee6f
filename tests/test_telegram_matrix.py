"""Issue 11 §2, the Telegram half: each fault × each method it can hit, in /recommend, taps and the
digest, against the real Application and the Telegram double. In every cell: no error reaches the
error handler or a background task, other users keep being served, no pick reaches a chat twice,
and the user hears one clear line when their picks could not be sent.

Faults come from the double: answers (429, 403, 400s, 502), and requests Telegram carried out but
never answered (a delayed answer past the bot's read timeout, a connection reset).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select

from jobs.sync import refresh_candidates
from storage import picks, users
from storage.models import Digest
from tests.botenv import eventually, pick_bvid, pick_messages, running_bot
from tests.doubles.telegram import TelegramDouble
from tests.harness import link_user

NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are "
    "exactly the same as a current content and reply markup of the message"
)
TOO_OLD = "Bad Request: query is too old and response timeout expired or query ID is invalid"
READ_TIMEOUT_S = 0.5  # the bot's; a delayed answer comes after it

Inject = Callable[[TelegramDouble, str, "int | None"], None]
FAULTS: dict[str, Inject] = {
    "429 retry_after": lambda tg, method, chat: tg.inject(method, 429, retry_after=1, chat_id=chat),
    "403 blocked": lambda tg, method, chat: tg.inject(method, 403, chat_id=chat, times=None),
    "400 chat not found": lambda tg, method, chat: tg.inject(
        method, 400, "Bad Request: chat not found", chat_id=chat, times=None
    ),
    "400 not modified": lambda tg, method, chat: tg.inject(method, 400, NOT_MODIFIED, chat_id=chat),
    "400 query too old": lambda tg, method, chat: tg.inject(method, 400, TOO_OLD, chat_id=chat),
    "502": lambda tg, method, chat: tg.inject(method, 502, chat_id=chat),
    "timeout": lambda tg, method, chat: tg.inject_delay(method, READ_TIMEOUT_S * 3, chat_id=chat),
    "reset after accepted": lambda tg, method, chat: tg.inject_reset(method, chat_id=chat),
}
CLEAR_LINES = ("Could not prepare picks", "went wrong")


@pytest.fixture
async def world(tmp_path, tg, bilibili_double, monkeypatch, caplog):
    monkeypatch.setenv("TELEGRAM_READ_TIMEOUT", str(READ_TIMEOUT_S))
    monkeypatch.setenv("RECOMMEND_COOLDOWN", "0")  # users here ask again and again
    caplog.set_level(logging.INFO)
    async with running_bot(tmp_path, tg, bilibili_double, tick_seconds=0.3) as (app, svc):
        await refresh_candidates(svc, force=True)
        yield tg, bilibili_double, svc


def unhandled(caplog) -> list[str]:
    """Failures that reached the error handler or killed a background task."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.ERROR and r.name in ("handlers.errors", "services", "telegram.ext.Application")
    ]


def duplicates(tg: TelegramDouble, chat: int) -> list[str]:
    return [b for b, n in Counter(pick_bvid(m) for m in pick_messages(tg, chat)).items() if n > 1]


async def quiet(tg: TelegramDouble, chat: int, for_s: float = 0.6) -> None:
    """Until the bot has made no call about `chat` for a while (its handlers for the chat are done)."""

    def last_call() -> float:
        return max((c.time for c in tg.calls if c.params.get("chat_id") == chat), default=0.0)

    while time.monotonic() - last_call() < for_s:
        await asyncio.sleep(0.1)


async def new_user(tg: TelegramDouble, telegram_id: int) -> dict:
    user = tg.user(telegram_id, first_name=f"U{telegram_id}", language_code="en")
    await tg.send_text(user, "/start")
    await tg.wait_for(lambda m: "BiliPick" in m.content, chat=user)
    return user


async def test_recommend_in_every_fault(world, caplog):
    tg, bili, svc = world
    problems: list[str] = []
    for n, (fault, method) in enumerate((f, m) for f in FAULTS for m in ("sendPhoto", "sendMessage")):
        cell = f"/recommend × {method} × {fault}"
        alice, bob = await new_user(tg, 20000 + 2 * n), await new_user(tg, 20001 + 2 * n)
        FAULTS[fault](tg, method, alice["id"])
        await tg.send_text(alice, "/recommend")
        await tg.send_text(bob, "/recommend")
        await eventually(lambda: len(pick_messages(tg, bob)) >= 5, 20, f"{cell}: the other user served")

        def outcome() -> bool:
            told = any(line in m.content for m in tg.sent_to(alice) for line in CLEAR_LINES)
            return len(pick_messages(tg, alice)) >= 5 or told or users.get_user(svc.db, alice["id"]).blocked

        await eventually(outcome, 20, f"{cell}: picks, a clear line, or the user marked blocked")
        await quiet(tg, alice["id"])
        tg.clear_faults()
        got = len(pick_messages(tg, alice))
        told = [m.content for m in tg.sent_to(alice) if any(line in m.content for line in CLEAR_LINES)]
        blocked = users.get_user(svc.db, alice["id"]).blocked
        if duplicates(tg, alice["id"]):
            problems.append(f"{cell}: a pick arrived twice")
        if got < 5 and not blocked and len(told) != 1:
            problems.append(f"{cell}: {got} picks and {len(told)} clear lines")
        if fault == "403 blocked" and method == "sendPhoto" and not blocked:
            problems.append(f"{cell}: the blocked user is not marked")
    assert not problems, "\n".join(problems)
    assert not unhandled(caplog)


async def test_taps_in_every_fault(world, caplog):
    tg, bili, svc = world
    alice, bob = await new_user(tg, 21001), await new_user(tg, 21002)
    for user in (alice, bob):
        await tg.send_text(user, "/recommend")
        await eventually(lambda: len(pick_messages(tg, user)) >= 5, 20, "picks to tap")
    problems: list[str] = []
    cells = [(f, m) for f in FAULTS for m in ("answerCallbackQuery", "editMessageReplyMarkup")]
    for n, (fault, method) in enumerate(cells):
        cell = f"tap × {method} × {fault}"
        pick = pick_messages(tg, alice)[n % 5]  # the cells share one page: each tap toggles the label
        uid = users.get_user(svc.db, alice["id"]).id
        before = picks.get_feedback(svc.db, uid).get(pick_bvid(pick), (0,))[0]
        FAULTS[fault](tg, method, alice["id"] if method != "answerCallbackQuery" else None)
        await tg.tap(alice, pick, pick.callback_data[0])
        expected = 0 if before == 1 else 1
        await eventually(
            lambda: picks.get_feedback(svc.db, uid).get(pick_bvid(pick), (0,))[0] == expected,
            10,
            f"{cell}: the label stored",
        )
        await quiet(tg, alice["id"])
        tg.clear_faults()
        theirs = pick_messages(tg, bob)[n % 5]
        answer = await tg.wait_answer(await tg.tap(bob, theirs, theirs.callback_data[1]))
        if not answer["text"]:
            problems.append(f"{cell}: the other user's tap was not answered")
    assert not problems, "\n".join(problems)
    assert not unhandled(caplog)


async def test_the_digest_in_every_fault(world, caplog):
    tg, bili, svc = world
    tz = "Asia/Shanghai"
    local_now = datetime.fromtimestamp(svc.now(), ZoneInfo(tz)).strftime("%H:%M")
    chats: dict[int, str] = {}
    for n, (fault, method) in enumerate((f, m) for f in FAULTS for m in ("sendPhoto", "sendMessage")):
        chat = 22000 + n
        chats[chat] = f"digest × {method} × {fault}"
        if method == "sendMessage":  # the text path: the cover is refused first
            tg.inject("sendPhoto", 400, "Bad Request: wrong file identifier/HTTP URL specified", chat_id=chat)
        FAULTS[fault](tg, method, chat)
    bystander = 22999
    for n, chat in enumerate([*chats, bystander]):
        bili.add_generated_user(7000 + n, seed=n, n_history=20, uname=f"u{n}")
        uid = link_user(svc, bili, chat, 7000 + n, linked_ago_s=3600, timezone=tz, digest_time=local_now)
        users.update_user(svc.db, uid, next_sync_at=svc.now() + 3600)  # this test is about the digest

    def status(chat: int) -> str | None:
        uid = users.get_user(svc.db, chat).id
        with svc.db.session() as s:
            row = s.exec(select(Digest).where(Digest.user_id == uid)).first()
        return row.status if row else None

    await eventually(lambda: status(bystander) == "sent", 60, "the bystander's digest")
    await eventually(lambda: all(status(c) != "claimed" for c in chats), 60, "every digest finished")
    problems: list[str] = []
    for chat, cell in chats.items():
        got, st = len(pick_messages(tg, chat)), status(chat)
        if duplicates(tg, chat):
            problems.append(f"{cell}: a pick arrived twice")
        if ("403" in cell or "chat not found" in cell) and (
            st != "blocked" or not users.get_user(svc.db, chat).blocked
        ):
            problems.append(f"{cell}: status {st}, the gone chat not marked (digests would retry it for hours)")
        elif "chat not found" not in cell and "403" not in cell and (st != "sent" or got != 5):
            problems.append(f"{cell}: status {st} with {got} picks")
    assert len(pick_messages(tg, bystander)) == 5 and not duplicates(tg, bystander)
    assert not problems, "\n".join(problems)
    assert not unhandled(caplog)
