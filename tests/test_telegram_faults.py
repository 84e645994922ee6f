"""Telegram failing in its own ways while the real Application serves users through the double."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select

from jobs.sync import refresh_candidates
from storage import users
from storage.models import Digest, Shown
from tests.botenv import eventually, last_message_id, pick_bvid, pick_messages, running_bot
from tests.harness import link_user

TZ = "Asia/Shanghai"


@pytest.fixture
async def world(tmp_path, tg, bilibili_double):
    async with running_bot(tmp_path, tg, bilibili_double, tick_seconds=3600) as (app, svc):
        await refresh_candidates(svc, force=True)
        yield tg, bilibili_double, svc


async def fresh_picks(tg, user: dict, after_id: int, n: int, timeout: float = 20.0) -> list:
    def fresh() -> list:
        return [m for m in pick_messages(tg, user) if m.message_id > after_id]

    await eventually(lambda: len(fresh()) >= n, timeout, f"{n} picks")
    return fresh()


def duplicates(messages) -> list[str]:
    return [bvid for bvid, n in Counter(pick_bvid(m) for m in messages).items() if n > 1]


async def test_recommend_survives_two_502s_on_its_first_calls(world):
    """§1.13: the "typing…" action and the next call answer 502: the picks still arrive."""
    tg, bili, svc = world
    alice = tg.user(11001, first_name="Alice", language_code="en")
    await tg.send_text(alice, "/start")
    await tg.wait_for(lambda m: "BiliPick" in m.content, chat=alice)
    before = last_message_id(tg, alice)
    tg.inject(None, 502, chat_id=alice["id"], times=2)
    await tg.send_text(alice, "/recommend")
    got = await fresh_picks(tg, alice, before, 5)
    assert len(got) == 5 and not duplicates(got)
    assert [e["method"] for e in tg.errors if e["error_code"] == 502][0] == "sendChatAction"
    assert not any("went wrong" in m.content for m in tg.sent_to(alice))


async def test_picks_that_telegram_keeps_refusing_end_in_one_clear_line(world):
    tg, bili, svc = world
    alice = tg.user(11002, first_name="Alice", language_code="en")
    await tg.send_text(alice, "/start")
    await tg.wait_for(lambda m: "BiliPick" in m.content, chat=alice)
    mark = tg.mark()
    tg.inject("sendPhoto", 502, chat_id=alice["id"])  # the cover is refused: text instead …
    tg.inject("sendMessage", 502, chat_id=alice["id"], times=4)  # … the cold note and 3 tries of text
    await tg.send_text(alice, "/recommend")
    await tg.wait_for(lambda m: "Could not prepare picks" in m.content, chat=alice, since=mark)
    after = [m for m in tg.sent_to(alice) if m.seq > mark]
    assert [m.content for m in after] == [after[-1].content], "one line, nothing else"
    assert not any("went wrong" in m.content for m in tg.sent_to(alice))


async def test_a_photo_accepted_before_the_connection_reset_is_not_sent_again(world):
    """§1.6: Telegram carried out the sendPhoto, then the connection dropped: exactly one message."""
    tg, bili, svc = world
    alice = tg.user(11003, first_name="Alice", language_code="en")
    await tg.send_text(alice, "/start")
    await tg.wait_for(lambda m: "BiliPick" in m.content, chat=alice)
    before = last_message_id(tg, alice)
    tg.inject_reset("sendPhoto", chat_id=alice["id"])
    await tg.send_text(alice, "/recommend")
    got = await fresh_picks(tg, alice, before, 5)
    await tg.send_text(alice, "/help")  # the handler has finished once its reply is in
    await tg.wait_for(lambda m: "/recommend —" in m.content, chat=alice)
    got = [m for m in pick_messages(tg, alice) if m.message_id > before]
    assert len(tg.lost_answers) == 1
    reset_bvid = next(m for m in got if m.is_photo and m.time == min(x.time for x in got))
    assert [pick_bvid(m) for m in got].count(pick_bvid(reset_bvid)) == 1, "the pick reached the chat once"
    assert len(got) == 5 and not duplicates(got)


@pytest.fixture
async def ticking(tmp_path, tg, bilibili_double):
    async with running_bot(tmp_path, tg, bilibili_double, tick_seconds=0.2) as (app, svc):
        await refresh_candidates(svc, force=True)
        yield tg, bilibili_double, svc


def digest_due_now(svc, bili, telegram_id: int, mid: int) -> int:
    local_now = datetime.fromtimestamp(svc.now(), ZoneInfo(TZ)).strftime("%H:%M")
    bili.add_generated_user(mid, seed=mid % 97, n_history=30, uname=f"u{mid}")
    uid = link_user(svc, bili, telegram_id, mid, linked_ago_s=3600, timezone=TZ, digest_time=local_now)
    users.update_user(svc.db, uid, next_sync_at=svc.now() + 3600)  # this test is about the digest
    return uid


def digest_status(svc, uid: int) -> str | None:
    with svc.db.session() as s:
        row = s.exec(select(Digest).where(Digest.user_id == uid)).first()
        return row.status if row else None


async def test_a_digest_pick_accepted_before_a_reset_is_never_resent(ticking):
    tg, bili, svc = ticking
    tg.inject_reset("sendPhoto", chat_id=11101)
    uid = digest_due_now(svc, bili, 11101, 6101)
    await eventually(lambda: digest_status(svc, uid) == "sent", 30, "the digest sent")
    await asyncio.sleep(1.0)  # five more ticks: none of them resends anything
    got = pick_messages(tg, 11101)
    assert len(tg.lost_answers) == 1
    assert len(got) == users.get_user(svc.db, 11101).picks_per_page and not duplicates(got)
    with svc.db.session() as s:
        rows = s.exec(select(Shown).where(Shown.user_id == uid)).all()
    assert sum(1 for r in rows if r.message_id is None and r.send_started_at is not None) == 1


async def test_a_connection_that_never_opened_is_safe_to_retry(tg):
    """The classification the send path rests on, on real PTB errors from the double and a closed port."""
    from telegram import Bot
    from telegram.error import NetworkError

    from delivery.outcome import maybe_delivered, worth_retrying

    async def error_of(bot: Bot) -> NetworkError:
        try:
            await bot.send_message(1, "x")
        except NetworkError as exc:
            return exc
        raise AssertionError("no error")

    closed = f"http://127.0.0.1:{await free_port()}/bot"
    with pytest.raises(NetworkError) as info:
        async with Bot(tg.token, base_url=closed):  # its first call (getMe) finds nobody listening
            pass
    refused = info.value
    assert not maybe_delivered(refused) and worth_retrying(refused), "connect failed: nothing left"
    async with Bot(tg.token, base_url=tg.base_url) as bot:
        tg.inject("sendMessage", 502)
        bad_gateway = await error_of(bot)
        tg.inject_reset("sendMessage")
        reset = await error_of(bot)
    assert not maybe_delivered(bad_gateway) and worth_retrying(bad_gateway), "Telegram answered: nothing done"
    assert maybe_delivered(reset) and not worth_retrying(reset), "carried out, unanswered: maybe delivered"


async def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_onboarding_goes_on_when_a_progress_note_is_refused(world):
    """A 502 on "syncing…" must not stop the first sync and training after a login."""
    tg, bili, svc = world
    bili.add_generated_user(6301, seed=9, n_history=60, uname="newcomer")
    alice = tg.user(11201, first_name="Alice", language_code="en")
    mark = tg.mark()
    await tg.send_text(alice, "/login")
    await tg.wait_for(lambda m: m.is_photo, chat=alice, since=mark)
    key = bili.pending_qr().key
    tg.inject("sendMessage", 502, chat_id=alice["id"])  # the first note after linking: "syncing…"
    bili.scan(key)
    bili.confirm(key, 6301)
    await tg.wait_for(lambda m: "first personal picks are ready" in m.content, chat=alice, since=mark, timeout=60)
    assert [e["method"] for e in tg.errors if e["error_code"] == 502] == ["sendMessage"]
    assert not any("Syncing your bilibili" in m.content for m in tg.sent_to(alice)), "that note was the one refused"
