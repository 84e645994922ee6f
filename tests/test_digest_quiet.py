"""Snooze and a quiet digest (issue 19 item 7), as a user sees them: the real Application against
the Telegram and bilibili doubles. One header rings; the picks after it are silent; a compact digest
is one message of lines; a day with nothing new says so; /settings pauses for 1 or 7 days."""

from __future__ import annotations

import asyncio
import re
import time
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select

from jobs.sync import refresh_candidates
from storage import catalogue, picks, users
from storage.models import Digest
from tests.botenv import eventually, forget_in_chat, is_pick, pick_messages, running_bot
from tests.harness import link_user, make_services
from tests.test_controls import ask

TZ = "Asia/Shanghai"
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


async def prepared(tmp_path, bili, *chats: tuple[int, dict]) -> list[int]:
    """Candidates in the catalogue and users (telegram id, row fields) whose digest is due now."""
    svc = make_services(tmp_path, bili)
    await refresh_candidates(svc, force=True)
    local_now = datetime.fromtimestamp(svc.now(), ZoneInfo(TZ)).strftime("%H:%M")
    ids = [
        users.ensure_user(
            svc.db, chat, chat, "en", now=svc.now() - 2 * 86400, **({"timezone": TZ, "digest_time": local_now} | fields)
        ).id
        for chat, fields in chats
    ]
    await svc.close()
    return ids


def today_name() -> str:
    return WEEKDAYS[datetime.now(ZoneInfo(TZ)).weekday()]


async def test_the_header_rings_and_the_picks_after_it_are_silent(tmp_path, tg, bilibili_double):
    await prepared(tmp_path, bilibili_double, (9701, {}), (9702, {"picks_per_page": 3}))
    async with running_bot(tmp_path, tg, bilibili_double, tick_seconds=0.3):
        await eventually(
            lambda: len(pick_messages(tg, 9701)) >= 5 and len(pick_messages(tg, 9702)) >= 3, 90, "both digests"
        )
        await asyncio.sleep(1.0)  # more ticks: nothing more

    for chat, count in ((9701, 5), (9702, 3)):
        sent = tg.sent_to(chat)
        header, picks_sent = sent[0], sent[1:]
        assert header.content == f"☀️ Your {count} picks for {today_name()}"
        assert not header.silent, "the header makes the one sound"
        assert len(picks_sent) == count and all(is_pick(m) for m in picks_sent)
        assert all(m.silent for m in picks_sent), "the picks come in silence"
        assert header.message_id < min(m.message_id for m in picks_sent)


async def test_a_compact_digest_is_one_message_with_a_line_per_pick(tmp_path, tg, bilibili_double):
    [uid] = await prepared(tmp_path, bilibili_double, (9703, {"digest_compact": True}))
    async with running_bot(tmp_path, tg, bilibili_double, tick_seconds=0.3) as (app, svc):
        await eventually(lambda: bool(tg.sent_to(9703)), 90, "the compact digest")
        await asyncio.sleep(1.5)
        [message] = tg.sent_to(9703)
        lines = message.content.split("\n")
        assert lines[0] == f"☀️ Your 5 picks for {today_name()}" and len(lines) == 6
        assert all(re.match(r"^\d\. \d{2,3}/100 · .+ · 💡 .+", line) for line in lines[1:]), lines
        links = [e["url"] for e in message.entities if e.get("type") == "text_link"]
        assert len(links) == 5 and all(u.startswith("https://www.bilibili.com/video/BV") for u in links)
        assert not message.is_photo and not message.silent
        rows = picks.shown_history(svc.db, uid)
        assert len(rows) == 5 and {r.message_id for r in rows} == {message.message_id}, "each pick recorded as sent"


async def test_a_day_with_nothing_new_sends_one_short_line(tmp_path, tg, bilibili_double):
    svc = make_services(tmp_path, bilibili_double)
    await refresh_candidates(svc, force=True)
    local_now = datetime.fromtimestamp(svc.now(), ZoneInfo(TZ)).strftime("%H:%M")
    uid = users.ensure_user(svc.db, 9704, 9704, "zh", now=svc.now() - 86400, timezone=TZ, digest_time=local_now).id
    # Every candidate was shown to this user already: nothing left to pick.
    seen = [picks.ShownPick(v.bvid, 50, "") for v in catalogue.candidate_videos(svc.db, since=0)]
    picks.record_shown(svc.db, uid, seen, "recommend", svc.now(), 9704)
    await svc.close()

    async with running_bot(tmp_path, tg, bilibili_double, tick_seconds=0.3) as (app, svc):
        await eventually(lambda: bool(tg.sent_to(9704)), 60, "the nothing-new line")
        await asyncio.sleep(1.0)
        [line] = tg.sent_to(9704)
        assert line.content == "🌙 今天没有新推荐——发送 /recommend 查看更早的推荐。"
        today = datetime.now(ZoneInfo(TZ)).date().isoformat()
        assert picks.get_digest(svc.db, uid, today).status == "sent"


@pytest.mark.parametrize("days", [1, 7])
async def test_a_snooze_skips_that_many_digests_then_they_resume(tmp_path, tg, bilibili_double, days):
    real_start = time.time()
    soon = datetime.fromtimestamp(real_start + 600, ZoneInfo(TZ)).strftime("%H:%M")  # today's slot, in 10 min
    [uid] = await prepared(tmp_path, bilibili_double, (9705, {"digest_time": soon}))
    async with running_bot(tmp_path, tg, bilibili_double, tick_seconds=0.3) as (app, svc):
        gina = tg.user(9705, language_code="en")
        menu = await ask(tg, gina, "/settings", "Settings")
        button = {"1": "set:snooze:1", "7": "set:snooze:7"}[str(days)]
        assert button in menu.callback_data and "set:compact:on" in menu.callback_data
        mark = tg.mark()
        await tg.wait_answer(await tg.tap(gina, menu, button))
        until = datetime.fromtimestamp(svc.now() + days * 86400, ZoneInfo(TZ)).strftime("%Y-%m-%d")
        await tg.wait_for(
            lambda m: m.message_id == menu.message_id and f"paused until {until}" in m.content, chat=gina, since=mark
        )
        assert "set:resume" in menu.callback_data and "set:pause" not in menu.callback_data, "resume ends it early"
        snoozed_at = svc.now()

        def move_clock(seconds: float) -> None:
            svc.clock = lambda: time.time() + seconds

        # The last slot inside the snooze passes: no digest (and none sent late afterwards).
        move_clock((days - 1) * 86400 + 900)
        await asyncio.sleep(2.0)
        assert [m for m in tg.sent_to(9705) if m.message_id > menu.message_id] == []
        with svc.db.session() as s:
            assert s.exec(select(Digest).where(Digest.user_id == uid)).all() == [], "not claimed either"

        # The first slot after it: the digest is back.
        move_clock(days * 86400 + 900)
        await eventually(
            lambda: any("picks for" in m.content or "Nothing new" in m.content for m in tg.sent_to(9705)),
            60,
            "the digest after the snooze",
        )
        row = users.get_user_by_id(svc.db, uid)
        assert row.digest_paused_until == snoozed_at + days * 86400 and not row.digest_paused


async def test_settings_switch_the_compact_form_and_logout_keeps_them_forget_deletes(tmp_path, tg, bilibili_double):
    async with running_bot(tmp_path, tg, bilibili_double, tick_seconds=3600) as (app, svc):
        hana = tg.user(9706, language_code="zh")
        menu = await ask(tg, hana, "/settings", "设置")
        assert "每条推荐一张封面" in menu.content
        mark = tg.mark()
        await tg.wait_answer(await tg.tap(hana, menu, "set:compact:on"))
        await tg.wait_for(
            lambda m: m.message_id == menu.message_id and "精简（一条消息" in m.content, chat=hana, since=mark
        )
        await tg.wait_answer(await tg.tap(hana, menu, "set:snooze:7"))
        await tg.wait_for(lambda m: m.message_id == menu.message_id and "暂停至" in m.content, chat=hana, since=mark)
        row = users.get_user(svc.db, 9706)
        assert row.digest_compact and row.digest_paused_until is not None
        await tg.wait_answer(await tg.tap(hana, menu, "set:resume"))
        await tg.wait_for(
            lambda m: m.message_id == menu.message_id and "暂停至" not in m.content, chat=hana, since=mark
        )
        assert users.get_user(svc.db, 9706).digest_paused_until is None

        # A snooze and the compact form outlive /logout; /forget deletes them with the rest.
        bilibili_double.add_generated_user(7501, seed=21, n_history=10)
        link_user(svc, bilibili_double, 9707, 7501)
        ivy = tg.user(9707, language_code="en")
        menu = await ask(tg, ivy, "/settings", "Settings")
        await tg.wait_answer(await tg.tap(ivy, menu, "set:compact:on"))
        await tg.wait_answer(await tg.tap(ivy, menu, "set:snooze:1"))
        await eventually(
            lambda: (r := users.get_user(svc.db, 9707)).digest_compact and r.digest_paused_until, 10, "both set"
        )
        status = await ask(tg, ivy, "/status", "Status")
        until = users.get_user(svc.db, 9707).digest_paused_until
        day_after = datetime.fromtimestamp(until, ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%d")
        assert "paused until" in status.content and day_after in status.content, status.content
        await ask(tg, ivy, "/logout", "login is forgotten")
        row = users.get_user(svc.db, 9707)
        assert row.credentials is None and row.digest_compact and row.digest_paused_until is not None
        await forget_in_chat(tg, ivy)
        assert users.get_user(svc.db, 9707) is None
        await ask(tg, ivy, "/settings", "a photo per pick")
        assert users.get_user(svc.db, 9707).digest_paused_until is None
