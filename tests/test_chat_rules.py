"""Per-user limits and the small chat rules (issue 11 §1.7 and the low items), tried as a user would:
the real Application against the Telegram and bilibili doubles."""

from __future__ import annotations

import asyncio
import time

import pytest

from jobs.sync import refresh_candidates, sync_user
from jobs.training import rebuild_shared
from storage import picks, users
from tests.botenv import eventually, last_message_id, pick_bvid, pick_messages, running_bot
from tests.doubles.bilibili import QR_GENERATE
from tests.harness import link_user


@pytest.fixture
async def world(tmp_path, tg, bilibili_double):
    async with running_bot(tmp_path, tg, bilibili_double, tick_seconds=3600) as (app, svc):
        await refresh_candidates(svc, force=True)
        yield tg, bilibili_double, svc


async def started(tg, telegram_id: int) -> dict:
    user = tg.user(telegram_id, first_name="U", language_code="en")
    await tg.send_text(user, "/start")
    await tg.wait_for(lambda m: "BiliPick" in m.content, chat=user)
    return user


async def settled(tg, user: dict) -> None:
    """Every update sent so far has been handled up to a reply: /help's reply comes after them."""
    mark = tg.mark()
    await tg.send_text(user, "/help")
    await tg.wait_for(lambda m: "/recommend —" in m.content, chat=user, since=mark)
    await eventually(lambda: not tg.pending_updates, what="the updates fetched")


async def test_recommend_spam_is_capped_with_one_clear_reply(world):
    tg, bili, svc = world
    # Two pages at once: each chat gets one message a second, so the default 5 pages take ~30 s.
    burst = svc.settings.telegram.recommend_burst = 2
    alice = await started(tg, 12001)
    before = last_message_id(tg, alice)
    for _ in range(burst + 4):
        await tg.send_text(alice, "/recommend")
    await tg.wait_for(lambda m: "try /recommend again in" in m.content, chat=alice)
    await eventually(
        lambda: len([m for m in pick_messages(tg, alice) if m.message_id > before]) >= 5 * burst,
        what="the pages within the limit",
    )
    await settled(tg, alice)
    got = [m for m in pick_messages(tg, alice) if m.message_id > before]
    assert len(got) == 5 * burst, "no page beyond the burst"
    assert len({pick_bvid(m) for m in got}) == len(got), "pages asked for at once never repeat a pick"
    assert len([m for m in tg.sent_to(alice) if "try /recommend again" in m.content]) == 1, "told once"


async def test_login_spam_issues_one_code_and_an_expired_code_frees_the_next(world):
    tg, bili, svc = world
    alice = await started(tg, 12002)
    mark = tg.mark()
    for _ in range(4):
        await tg.send_text(alice, "/login")
    await tg.wait_for(lambda m: "try /login again in" in m.content, chat=alice, since=mark)
    await settled(tg, alice)
    photos = [m for m in tg.sent_to(alice) if m.is_photo and m.seq > mark]
    assert len(photos) == 1 and bili.calls[QR_GENERATE] == 1, "one QR code, one bilibili call"
    assert len([m for m in tg.sent_to(alice) if "try /login again" in m.content]) == 1

    bili.expire(bili.pending_qr().key)
    expired = await tg.wait_for(lambda m: "expired" in m.content and m.callback_data, chat=alice, since=mark)
    await tg.wait_answer(await tg.tap(alice, expired, "login:new"))
    await tg.wait_for(lambda m: m.is_photo and m.message_id != photos[0].message_id, chat=alice, since=mark)
    assert bili.calls[QR_GENERATE] == 2


async def test_a_leaver_who_never_contributed_keeps_everyones_shared_signals(world):
    tg, bili, svc = world
    bili.add_generated_user(6201, seed=5, n_history=40, uname="stays")
    stays = link_user(svc, bili, 12003, 6201)
    assert (await sync_user(svc, stays)).ok
    assert await rebuild_shared(svc)
    generation = svc.models.shared_generation

    drifter = await started(tg, 12004)  # /start then /forget: no behaviour, no taps
    mark = tg.mark()
    await tg.send_text(drifter, "/forget")
    confirm = await tg.wait_for(lambda m: "cannot be undone" in m.content, chat=drifter, since=mark)
    await tg.wait_answer(await tg.tap(drifter, confirm, confirm.callback_data[0]))
    await tg.wait_for(lambda m: "is deleted" in m.content, chat=drifter, since=mark)
    assert users.get_user(svc.db, 12004) is None
    assert svc.models.shared_generation == generation and svc.models.load_shared() is not None


async def test_an_old_forget_confirmation_expires(world):
    tg, bili, svc = world
    alice = await started(tg, 12005)

    async def confirmation():
        mark = tg.mark()
        await tg.send_text(alice, "/forget")
        return await tg.wait_for(lambda m: "cannot be undone" in m.content, chat=alice, since=mark)

    async def tap_expects_expired(message, data: str) -> None:
        await tg.wait_answer(await tg.tap(alice, message, data, check_button=False))
        await tg.wait_for(lambda m: m.message_id == message.message_id and "expired" in m.content, chat=alice)
        assert users.get_user(svc.db, 12005) is not None, "nothing deleted"

    confirm = await confirmation()
    await tap_expects_expired(confirm, f"forget:yes:{int(time.time()) + 3600}")  # future-dated: not ours

    confirm = await confirmation()
    later = time.time() + svc.settings.telegram.forget_confirm_ttl_s + 60
    svc.clock = lambda: later  # found in the chat eleven minutes later
    await tap_expects_expired(confirm, confirm.callback_data[0])

    confirm = await confirmation()  # a fresh confirmation still works
    mark = tg.mark()
    await tg.wait_answer(await tg.tap(alice, confirm, confirm.callback_data[0]))
    await tg.wait_for(lambda m: "is deleted" in m.content, chat=alice, since=mark)
    assert users.get_user(svc.db, 12005) is None


async def test_a_tap_is_stored_before_its_toast_and_a_double_tap_toggles_twice(world):
    tg, bili, svc = world
    alice = await started(tg, 12006)
    await tg.send_text(alice, "/recommend")
    await eventually(lambda: len(pick_messages(tg, alice)) >= 5, what="picks")
    first, second = pick_messages(tg, alice)[:2]
    uid = users.get_user(svc.db, 12006).id

    answer = await tg.wait_answer(await tg.tap(alice, first, first.callback_data[0]))
    assert "Noted 👍" in answer["text"]
    assert picks.get_feedback(svc.db, uid).get(pick_bvid(first), (0,))[0] == 1, "stored when the toast said so"

    q1 = await tg.tap(alice, second, second.callback_data[0])
    q2 = await tg.tap(alice, second, second.callback_data[0])  # before the first is handled
    toasts = sorted([(await tg.wait_answer(q1))["text"], (await tg.wait_answer(q2))["text"]])
    assert toasts == sorted(["Noted 👍 — more like this.", "Feedback removed."]), "two taps, two toggles"
    assert pick_bvid(second) not in picks.get_feedback(svc.db, uid)
    await settled(tg, alice)
    assert "✓" not in second.buttons[0]["text"], "the keyboard agrees (the record shows its current state)"


async def test_editing_an_old_recommend_does_not_run_it_again(world):
    tg, bili, svc = world
    alice = await started(tg, 12007)
    command = await tg.send_text(alice, "/recommend")
    await eventually(lambda: len(pick_messages(tg, alice)) >= 5, what="picks")
    await settled(tg, alice)
    mark = tg.mark()
    await tg.edit_text(alice, command, "/recommend")
    await tg.edit_text(alice, command, "hello")  # an edited text is not a new message either
    await eventually(lambda: not tg.pending_updates, what="the edits fetched")
    await asyncio.sleep(1.5)  # a re-run would have sent its picks by now
    assert [m for m in tg.sent_to(alice) if m.seq > mark] == []
