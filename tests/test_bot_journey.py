"""The whole chat journey: the real Application against the Telegram and bilibili doubles over HTTP."""

from __future__ import annotations

import asyncio
import io

import pytest
import zxingcpp
from PIL import Image
from sqlalchemy import text

from storage import picks, users
from tests.botenv import eventually, forget_in_chat, is_pick, last_message_id, pick_bvid, pick_rating, running_bot
from tests.doubles.bilibili import BilibiliDouble
from tests.doubles.telegram import TelegramDouble

MID = 31337


@pytest.fixture
async def world(tmp_path, tg, bilibili_double):
    bilibili_double.add_generated_user(MID, seed=21, n_history=120, uname="测试用户")
    async with running_bot(tmp_path, tg, bilibili_double, tick_seconds=3600) as (app, svc):
        yield tg, bilibili_double, svc


def qr_text(png: bytes) -> str:
    results = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
    assert results, "no QR code found in the photo"
    return results[0].text


def picks_in(messages) -> dict[str, object]:
    return {pick_bvid(m): m for m in messages if is_pick(m)}


async def wait_picks(tg: TelegramDouble, user: dict, after_id: int, n: int) -> dict[str, object]:
    """Pick messages sent after message `after_id` (edits of older messages don't count)."""

    def fresh():
        return picks_in(m for m in tg.sent_to(user) if m.message_id > after_id)

    await eventually(lambda: len(fresh()) >= n, what=f"{n} picks")
    return fresh()


async def login(tg: TelegramDouble, bili: BilibiliDouble, user: dict) -> None:
    mark = tg.mark()
    await tg.send_text(user, "/login")
    photo = await tg.wait_for(lambda m: m.is_photo, chat=user, since=mark, timeout=10)
    key = bili.pending_qr().key
    assert qr_text(photo.photo) == (
        f"https://passport.bilibili.com/h5-app/passport/login/scan?navhide=1&qrcode_key={key}&from="
    )
    bili.scan(key)
    await tg.wait_for(lambda m: "confirm" in m.content.lower(), chat=user, since=mark)
    bili.confirm(key, MID)
    await tg.wait_for(lambda m: "Linked as 测试用户" in m.content, chat=user, since=mark)
    await tg.wait_for(lambda m: "first personal picks are ready" in m.content, chat=user, since=mark, timeout=60)


async def test_the_whole_journey(world, tmp_path):
    tg, bili, svc = world
    alice = tg.user(5001, first_name="Alice", language_code="en")
    group = tg.group(-100777, "Friends")

    await tg.send_text(alice, "/start")
    await tg.wait_for(lambda m: "BiliPick" in m.content and "/login" in m.content, chat=alice)

    mark = tg.mark()
    await tg.send_text(alice, "/login", chat=group)
    refusal = await tg.wait_for(lambda m: "private chat" in m.content, chat=group, since=mark)
    assert not refusal.is_photo
    assert not any(m.is_photo for m in tg.sent_to(group))

    await login(tg, bili, alice)
    user = users.get_user(svc.db, 5001)
    assert user.bili_mid == MID and user.credentials is not None
    watched = {b.bvid for w in [bili.users[MID].history] for b in w.values()}

    before = last_message_id(tg, alice)
    await tg.send_text(alice, "/recommend")
    first = await wait_picks(tg, alice, before, 5)
    assert len(first) == 5
    for bvid, message in first.items():
        assert message.is_photo, "covers are uploaded as photos"
        assert [b["text"][:1] for b in message.reply_markup["inline_keyboard"][0]] == ["👍", "👎"]
        assert all(len(d.encode()) <= 64 for d in message.callback_data)
        assert 0 <= pick_rating(message) <= 100
        assert "Similar to “BV" not in message.content, "a liked video is named by its title"
        assert bvid not in watched

    liked, disliked = list(first.values())[:2]
    q1 = await tg.tap(alice, liked, liked.callback_data[0])
    q2 = await tg.tap(alice, disliked, disliked.callback_data[1])
    for q in (q1, q2):
        answer = await tg.wait_answer(q)
        assert answer["latency"] < 1.0
    await tg.wait_for(lambda m: m.message_id == liked.message_id and "✓" in m.buttons[0]["text"], chat=alice)
    await tg.wait_for(lambda m: m.message_id == disliked.message_id and "✓" in m.buttons[1]["text"], chat=alice)
    labels = {bvid: label for bvid, (label, _) in picks.get_feedback(svc.db, user.id).items()}
    bvid_of = {m.message_id: b for b, m in first.items()}
    assert labels == {bvid_of[liked.message_id]: 1, bvid_of[disliked.message_id]: -1}

    # Tapping 👍 again clears the label; the keyboard shows it.
    q3 = await tg.tap(alice, liked, liked.callback_data[0])
    await tg.wait_answer(q3)
    await tg.wait_for(lambda m: m.message_id == liked.message_id and "✓" not in m.buttons[0]["text"], chat=alice)
    assert bvid_of[liked.message_id] not in picks.get_feedback(svc.db, user.id)

    before = last_message_id(tg, alice)
    await tg.send_text(alice, "/recommend")
    second = await wait_picks(tg, alice, before, 5)
    assert not set(second) & set(first), "a second /recommend repeats nothing"
    assert not set(second) & watched

    mark = tg.mark()
    await tg.send_text(alice, "/settings")
    menu = await tg.wait_for(lambda m: "Picks per page" in m.content, chat=alice, since=mark)
    more = next(d for b, d in zip(menu.buttons, menu.callback_data) if "more" in b["text"])
    await tg.wait_answer(await tg.tap(alice, menu, more))
    await tg.wait_for(lambda m: m.message_id == menu.message_id and "Picks per page: 6" in m.content, chat=alice)
    assert users.get_user(svc.db, 5001).picks_per_page == 6
    mark = tg.mark()
    await tg.send_text(alice, "/digest 07:45")
    await tg.wait_for(lambda m: "07:45" in m.content, chat=alice, since=mark)
    await tg.send_text(alice, "/timezone Europe/Berlin")
    await tg.wait_for(lambda m: "Europe/Berlin" in m.content, chat=alice, since=mark)
    await tg.send_text(alice, "/timezone Mars/Olympus")
    await tg.wait_for(lambda m: "Unknown time zone" in m.content, chat=alice, since=mark)
    stored = users.get_user(svc.db, 5001)
    assert (stored.digest_time, stored.timezone) == ("07:45", "Europe/Berlin")

    mark = tg.mark()
    await tg.send_text(alice, "/profile")
    chart = await tg.wait_for(lambda m: m.is_photo, chat=alice, since=mark, timeout=20)
    assert Image.open(io.BytesIO(chart.photo)).size[0] > 300
    assert "Top tags" in chart.content

    await forget_in_chat(tg, alice)
    with svc.db.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM users WHERE telegram_id = 5001")).scalar() == 0
        for table in ("behaviours", "feedback", "shown", "digests", "sync_cursors", "model_versions"):
            assert conn.execute(text(f"SELECT count(*) FROM {table} WHERE user_id = :u"), {"u": user.id}).scalar() == 0
    assert not any((tmp_path / "models").glob(f"{user.id}*")), "the model files are gone too"
    assert not (tmp_path / "models" / "shared.safetensors").exists(), "so are the signals their behaviour was in"

    # A tap on a pick from before /forget changes nothing.
    old = list(second.values())[0]
    answer = await tg.wait_answer(await tg.tap(alice, old, old.callback_data[0]))
    assert "no longer" in answer["text"]
    with svc.db.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM feedback")).scalar() == 0
        assert conn.execute(text("SELECT count(*) FROM users WHERE telegram_id = 5001")).scalar() == 0


async def test_a_waiting_login_does_not_hold_up_other_users(world):
    tg, bili, svc = world
    alice = tg.user(6001, first_name="Alice", language_code="en")
    bob = tg.user(6002, first_name="鲍勃", language_code="zh-hans")
    mark = tg.mark()
    await tg.send_text(alice, "/login")
    await tg.wait_for(lambda m: m.is_photo, chat=alice, since=mark)
    assert bili.pending_qr().state == "waiting"

    await tg.send_text(bob, "/recommend")
    bob_picks = await wait_picks(tg, bob, 0, 5)
    assert len(bob_picks) == 5
    note = await tg.wait_for(lambda m: "热门" in m.content, chat=bob, since=mark)
    assert "/login" in note.content  # cold start says so, in Chinese
    assert bili.pending_qr().state == "waiting"


async def test_expired_code_offers_a_new_one(world):
    tg, bili, svc = world
    alice = tg.user(7001, first_name="Alice", language_code="en")
    mark = tg.mark()
    await tg.send_text(alice, "/login")
    photo = await tg.wait_for(lambda m: m.is_photo, chat=alice, since=mark)
    first_key = bili.pending_qr().key
    bili.expire(first_key)
    expired = await tg.wait_for(lambda m: "expired" in m.content and m.callback_data, chat=alice, since=mark)
    assert expired.message_id == photo.message_id
    await tg.wait_answer(await tg.tap(alice, expired, expired.callback_data[0]))
    fresh = await tg.wait_for(lambda m: m.is_photo and m.message_id != photo.message_id, chat=alice, since=mark)
    assert qr_text(fresh.photo).endswith(f"qrcode_key={bili.pending_qr().key}&from=")
    assert bili.pending_qr().key != first_key


async def test_telegram_faults_are_survived(world):
    tg, bili, svc = world
    alice = tg.user(8001, first_name="Alice", language_code="en")
    await tg.send_text(alice, "/start")
    await tg.wait_for(lambda m: "BiliPick" in m.content, chat=alice)

    tg.inject("sendMessage", 429, retry_after=1, chat_id=alice["id"])
    mark = tg.mark()
    await tg.send_text(alice, "/help")
    await tg.wait_for(lambda m: "/recommend" in m.content, chat=alice, since=mark, timeout=15)

    tg.inject("sendMessage", 502, chat_id=alice["id"])
    mark = tg.mark()
    await tg.send_text(alice, "/privacy")  # its reply hits the 502; the error reply follows
    await tg.wait_for(lambda m: "went wrong" in m.content, chat=alice, since=mark)

    before = last_message_id(tg, alice)
    tg.inject("sendPhoto", 502, chat_id=alice["id"], times=5)
    await tg.send_text(alice, "/recommend")  # photos fail: picks arrive as text
    got = await wait_picks(tg, alice, before, 5)
    assert not any(m.is_photo for m in got.values())

    tg.inject("sendMessage", 403, "Forbidden: bot was blocked by the user", chat_id=alice["id"])
    mark = tg.mark()
    await tg.send_text(alice, "/help")  # the reply hits 403: the user is marked blocked, nothing more is sent
    await eventually(lambda: users.get_user(svc.db, 8001).blocked, 5, "the user marked blocked")
    assert not [m for m in tg.sent_to(alice) if m.seq > mark]
    await tg.send_text(alice, "/start")  # writing again lifts the mark
    await tg.wait_for(lambda m: "BiliPick" in m.content, chat=alice, since=mark)
    assert not users.get_user(svc.db, 8001).blocked

    tg.block(alice["id"])  # my_chat_member "kicked" marks the user blocked
    await eventually(lambda: users.get_user(svc.db, 8001).blocked, 5, "the user marked blocked")
    mark = tg.mark()
    await tg.send_text(alice, "/start")  # writing again lifts the mark
    await tg.wait_for(lambda m: "BiliPick" in m.content, chat=alice, since=mark)
    assert not users.get_user(svc.db, 8001).blocked


async def test_a_burst_of_users_stays_within_telegrams_global_limit(world):
    tg, bili, svc = world
    tg.flood_limits = (30, 100)  # the double answers 429 beyond 30 sends in any second
    crowd = [tg.user(8100 + n, first_name=f"U{n}", language_code="en") for n in range(10)]
    marks = {u["id"]: last_message_id(tg, u) for u in crowd}
    await asyncio.gather(*(tg.send_text(u, "/recommend") for u in crowd))
    for u in crowd:
        assert len(await wait_picks(tg, u, marks[u["id"]], 5)) == 5
    # Sends are paced just under the limit; arrival jitter (uploads of different sizes) can still
    # bunch 31 into a second now and then: that 429 is waited out and retried, it never cascades.
    assert len([e for e in tg.errors if e["error_code"] == 429]) <= 1, "no 429 cycle"
    assert tg.max_rate_global() <= 30


async def test_login_again_asks_first_and_logout_keeps_taps_and_history(world):
    tg, bili, svc = world
    alice = tg.user(5101, first_name="Alice", language_code="en")
    await login(tg, bili, alice)
    user = users.get_user(svc.db, 5101)
    before = last_message_id(tg, alice)
    await tg.send_text(alice, "/recommend")
    page = await wait_picks(tg, alice, before, 5)
    pick = next(iter(page.values()))
    await tg.wait_answer(await tg.tap(alice, pick, pick.callback_data[0]))

    mark, newest = tg.mark(), last_message_id(tg, alice)
    await tg.send_text(alice, "/login")
    ask = await tg.wait_for(lambda m: "already linked" in m.content and m.callback_data, chat=alice, since=mark)
    keep = next(d for d in ask.callback_data if d == "login:keep")
    await tg.wait_answer(await tg.tap(alice, ask, keep))
    await tg.wait_for(lambda m: m.message_id == ask.message_id and "Kept" in m.content, chat=alice)
    assert not any(m.is_photo for m in tg.sent_to(alice) if m.message_id > newest), "no new QR code"

    with svc.db.engine.connect() as conn:
        watched = conn.execute(text("SELECT count(*) FROM behaviours WHERE user_id = :u"), {"u": user.id}).scalar()
    mark = tg.mark()
    await tg.send_text(alice, "/logout")
    await tg.wait_for(lambda m: "login is forgotten" in m.content, chat=alice, since=mark)
    after = users.get_user(svc.db, 5101)
    assert after.credentials is None, "the cookies are gone"
    assert user.id not in {u.id for u in users.users_due_sync(svc.db, now=svc.now() + 10**6)}, "no more syncs"
    assert len(picks.get_feedback(svc.db, user.id)) == 1, "taps stay"
    with svc.db.engine.connect() as conn:
        kept = conn.execute(text("SELECT count(*) FROM behaviours WHERE user_id = :u"), {"u": user.id}).scalar()
    assert kept == watched > 0, "history stays"


async def test_malformed_and_foreign_taps_change_nothing(world):
    tg, bili, svc = world
    alice = tg.user(5201, first_name="Alice", language_code="en")
    bob = tg.user(5202, first_name="Bob", language_code="en")
    for u in (alice, bob):
        await tg.send_text(u, "/recommend")
    alices = list((await wait_picks(tg, alice, 0, 5)).values())
    bobs = list((await wait_picks(tg, bob, 0, 5)).values())
    alices_shown_id = alices[0].callback_data[0].split(":")[1]

    for data in (f"fb:{alices_shown_id}:+1", "fb:not-a-number:+1", "fb:1:+7", "something-else"):
        answer = await tg.wait_answer(await tg.tap(bob, bobs[0], data, check_button=False))
        assert "no longer" in answer["text"]
    for uid in (users.get_user(svc.db, 5201).id, users.get_user(svc.db, 5202).id):
        assert picks.get_feedback(svc.db, uid) == {}
    assert "✓" not in "".join(b["text"] for b in alices[0].buttons)
