"""/login with a different bilibili account (issue 11 §1.14), in the running bot against both doubles.

The old account's history, favourites, coins, likes and sync cursors used to stay: the two histories
mixed, and the new account's history older than the old one's newest view was never imported.
"""

from __future__ import annotations

import asyncio

import pytest

from jobs.schedule import after_sync
from jobs.sync import sync_user
from storage import behaviour, picks, users
from tests.botenv import eventually, running_bot
from tests.doubles.bilibili import LIKE
from tests.harness import make_services
from tests.test_bot_journey import qr_text

OLD, NEW = 3401, 3402
CHAT = 5401


def synced(svc, user_id: int) -> set[tuple[str, str]]:
    return {(b.bvid, b.kind) for b in behaviour.user_behaviours(svc.db, user_id)}


def account_rows(double, mid: int) -> set[tuple[str, str]]:
    user = double.users[mid]
    rows = {(b, "watch") for b in user.history}
    rows |= {(e.bvid, "favorite") for f in user.folders for e in f.items if e.attr == 0}
    rows |= {(b, "coin") for b, _, _ in user.coins} | {(b, "like") for b in user.likes[:20]}
    return rows


async def relogin_in_chat(tg, double, alice: dict, mid: int) -> None:
    """/login, "replace", scan the QR code with the account `mid`: as the user does it."""
    mark = tg.mark()
    await tg.send_text(alice, "/login")
    ask = await tg.wait_for(lambda m: "already linked" in m.content and m.callback_data, chat=alice, since=mark)
    await tg.wait_answer(await tg.tap(alice, ask, "login:replace"))
    photo = await tg.wait_for(lambda m: m.is_photo, chat=alice, since=mark, timeout=10)
    key = double.pending_qr().key
    assert key in qr_text(photo.photo)
    double.scan(key)
    double.confirm(key, mid)
    await tg.wait_for(lambda m: "first personal picks are ready" in m.content, chat=alice, since=mark, timeout=90)


@pytest.fixture
async def bot(tmp_path, tg, bilibili_double):
    async with running_bot(tmp_path, tg, bilibili_double, tick_seconds=3600) as (app, svc):
        yield tg, bilibili_double, svc


async def test_a_different_account_replaces_the_old_ones_history_and_keeps_the_taps(bot):
    tg, double, svc = bot
    videos = double.popular_order[200:320]
    # The new account's history is older than everything the old account watched.
    double.add_user(
        OLD,
        "old",
        history=[(b, 1_700_000_000 - i) for i, b in enumerate(videos[:50])],
        favs=videos[:10],
        coins=[(b, 1) for b in videos[10:13]],
        likes=videos[13:16],
    )
    double.add_user(
        NEW,
        "new",
        history=[(b, 1_600_000_000 - i) for i, b in enumerate(videos[50:110])],
        favs=videos[50:55],
        likes=videos[110:112],
    )
    alice = tg.user(CHAT, first_name="Alice", language_code="en")
    user = users.ensure_user(svc.db, CHAT, CHAT, "en", now=svc.now())
    users.link_bilibili(svc.db, svc.vault, user.id, double.login(OLD), OLD, "old", svc.now())
    assert (await sync_user(svc, user.id)).ok
    assert synced(svc, user.id) == account_rows(double, OLD)
    tapped = videos[5]
    picks.set_feedback(svc.db, user.id, tapped, 1, svc.now())

    await relogin_in_chat(tg, double, alice, NEW)

    assert synced(svc, user.id) == account_rows(double, NEW), "only the new account's behaviour, all of it"
    assert picks.get_feedback(svc.db, user.id).keys() == {tapped}, "👍/👎 taps are the user's own: kept"
    assert users.get_user_by_id(svc.db, user.id).bili_mid == NEW


async def test_logging_in_again_with_the_same_account_keeps_everything(bot):
    tg, double, svc = bot
    double.add_generated_user(OLD, seed=31, n_history=60, uname="old")
    alice = tg.user(CHAT, first_name="Alice", language_code="en")
    user = users.ensure_user(svc.db, CHAT, CHAT, "en", now=svc.now())
    users.link_bilibili(svc.db, svc.vault, user.id, double.login(OLD), OLD, "old", svc.now())
    assert (await sync_user(svc, user.id)).ok
    before = synced(svc, user.id)
    cursor = behaviour.get_cursor(svc.db, user.id, "history")
    double.reset_calls()

    await relogin_in_chat(tg, double, alice, OLD)

    assert synced(svc, user.id) == before
    assert behaviour.get_cursor(svc.db, user.id, "history") == cursor
    assert double.calls["/x/web-interface/history/cursor"] == 1, "nothing is read again"


async def test_a_sync_of_the_old_account_in_flight_during_the_switch_stores_nothing(tmp_path, bilibili_double):
    """The tick's sync of the old account may still be reading bilibili when the new login lands."""
    double = bilibili_double
    svc = make_services(tmp_path, double)
    try:
        double.add_generated_user(OLD, seed=32, n_history=40, uname="old")
        double.add_generated_user(NEW, seed=33, n_history=40, uname="new")
        user = users.ensure_user(svc.db, CHAT, CHAT, "en", now=svc.now())
        users.link_bilibili(svc.db, svc.vault, user.id, double.login(OLD), OLD, "old", svc.now())
        double.inject(LIKE, "slow")  # the last list of the pull answers late (then again, on the retry)
        in_flight = asyncio.create_task(sync_user(svc, user.id))
        await eventually(lambda: double.calls[LIKE] >= 1, what="the old account's sync to reach the likes")

        users.link_bilibili(svc.db, svc.vault, user.id, double.login(NEW), NEW, "new", svc.now())
        report = await in_flight
        after_sync(svc, user.id, report)

        assert synced(svc, user.id) == set(), "nothing of the old account is stored under the new one"
        assert user.id in {u.id for u in users.users_due_sync(svc.db, svc.now())}, "the new one syncs next"
        assert (await sync_user(svc, user.id)).ok
        assert synced(svc, user.id) == account_rows(double, NEW)
    finally:
        await svc.close()
