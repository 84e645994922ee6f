"""While bilibili's risk control pauses all traffic, a user still gets an answer at once (issue 11 §1.3):
/login says when to come back, /recommend sends its picks as text. The real Application, both doubles."""

from __future__ import annotations

import pytest

from bilibili import RiskControl
from bilibili.client import P_VIEW
from tests.botenv import eventually, is_pick, last_message_id, running_bot
from tests.doubles.bilibili import BilibiliDouble

BV = "BV1FYjBzAE8h"
PAUSE_S = 120.0  # two minutes: a handler that waits it out does not answer within the wait below


@pytest.fixture
async def world(tmp_path, tg, bilibili_double):
    async with running_bot(tmp_path, tg, bilibili_double, tick_seconds=3600) as (app, svc):
        yield tg, bilibili_double, svc


async def enter_risk_pause(svc, bili: BilibiliDouble) -> None:
    """bilibili answers a request with its 412 page: the client pauses all traffic for PAUSE_S."""
    svc.bili.throttle.pause_base_s = svc.bili.throttle.pause_max_s = PAUSE_S
    bili.inject(P_VIEW, "412_html")
    with pytest.raises(RiskControl):
        await svc.bili.view(BV)
    assert svc.bili.throttle.paused


async def test_login_during_the_pause_says_when_to_come_back(world):
    tg, bili, svc = world
    alice = tg.user(5101, language_code="en")
    await enter_risk_pause(svc, bili)
    qr_requests = bili.calls["/x/passport-login/web/qrcode/generate"]

    mark = tg.mark()
    await tg.send_text(alice, "/login")
    reply = await tg.wait_for(lambda m: "bilibili is limiting us" in m.content, chat=alice, since=mark, timeout=15)
    assert "try again in 2 min" in reply.content and not reply.is_photo
    assert bili.calls["/x/passport-login/web/qrcode/generate"] == qr_requests  # nothing sent during the pause

    zh = tg.user(5102, language_code="zh-hans")
    mark = tg.mark()
    await tg.send_text(zh, "/login")
    await tg.wait_for(lambda m: "2 分钟后再试" in m.content, chat=zh, since=mark, timeout=15)


async def test_recommend_during_the_pause_sends_picks_as_text(world):
    tg, bili, svc = world
    bob = tg.user(5201, language_code="en")
    before = last_message_id(tg, bob)
    await tg.send_text(bob, "/recommend")  # no pause yet: candidates load, covers come as photos
    await eventually(lambda: len([m for m in tg.sent_to(bob) if is_pick(m)]) >= 5, what="the first picks")
    first = {m.message_id for m in tg.sent_to(bob) if is_pick(m)}
    assert all(m.is_photo for m in tg.sent_to(bob) if is_pick(m))

    await enter_risk_pause(svc, bili)
    covers = bili.calls["/bfs"]
    before = last_message_id(tg, bob)
    await tg.send_text(bob, "/recommend")

    def fresh():
        return [m for m in tg.sent_to(bob) if is_pick(m) and m.message_id > before and m.message_id not in first]

    await eventually(lambda: len(fresh()) >= 5, 15, "picks during the pause")
    picks = fresh()
    assert len(picks) == 5
    assert not any(m.is_photo for m in picks), "new covers cannot be had during the pause: text"
    assert all([b["text"][:1] for b in m.reply_markup["inline_keyboard"][0]] == ["👍", "👎"] for m in picks)
    assert bili.calls["/bfs"] == covers  # no cover request went out during the pause


async def test_recommend_on_a_new_bot_during_the_pause_answers_at_once(world):
    """No candidates yet, and bilibili paused: the reply says when to come back instead of waiting."""
    tg, bili, svc = world
    carol = tg.user(5301, language_code="en")
    await enter_risk_pause(svc, bili)
    popular = bili.calls["/x/web-interface/popular"]

    mark = tg.mark()
    await tg.send_text(carol, "/recommend")
    reply = await tg.wait_for(lambda m: "bilibili is limiting us" in m.content, chat=carol, since=mark, timeout=15)
    assert "try again in 2 min" in reply.content
    assert bili.calls["/x/web-interface/popular"] == popular, "nothing asked of bilibili during the pause"


async def test_a_digest_during_the_pause_goes_out_as_text(tmp_path, tg, bilibili_double):
    from tests.test_jobs import Clock, digest_in, linked_user

    async with running_bot(tmp_path, tg, bilibili_double, tick_seconds=0.2, retrain_debounce_s=30) as (app, svc):
        clock = Clock()
        svc.clock = clock
        uid = await linked_user(svc, bilibili_double, 5301, 4301, seed=5)
        await enter_risk_pause(svc, bilibili_double)
        covers = bilibili_double.calls["/bfs"]
        digest_in(svc, uid, minutes=1)
        clock.advance(61)
        await eventually(lambda: len([m for m in tg.sent_to(5301) if is_pick(m)]) >= 5, 15, "the digest")
        digest = [m for m in tg.sent_to(5301) if is_pick(m)]
        assert not any(m.is_photo for m in digest)
        assert bilibili_double.calls["/bfs"] == covers
