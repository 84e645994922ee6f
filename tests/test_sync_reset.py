"""/sync ("sync me now") and /reset ("forget my taste, keep the link"), issue 19 items 5 and 6, tried
as a user would: the real Application against the Telegram and bilibili doubles."""

from __future__ import annotations

import asyncio
import io
import threading
import time

import pytest
from sqlmodel import select

import jobs.training
from bilibili.client import P_HISTORY
from jobs.sync import sync_user
from jobs.training import train_users_now
from storage import behaviour, picks, users
from storage.models import ModelVersion, Shown
from tests.botenv import eventually, is_pick, running_bot
from tests.harness import link_user
from tests.test_bot_risk_pause import enter_risk_pause
from tests.test_controls import ask

P_COOKIE_INFO = "/x/passport-login/web/cookie/info"


@pytest.fixture
async def world(tmp_path, tg, bilibili_double):
    async with running_bot(tmp_path, tg, bilibili_double, tick_seconds=3600) as (app, svc):
        yield tg, bilibili_double, svc


def linked(svc, bili, telegram_id: int, mid: int, seed: int, n_history: int = 60) -> int:
    """A linked user whose scheduled sync is far off: only /sync syncs them in these tests."""
    bili.add_generated_user(mid, seed=seed, n_history=n_history)
    uid = link_user(svc, bili, telegram_id, mid)
    users.update_user(svc.db, uid, next_sync_at=svc.now() + 10**6)
    return uid


async def synced_with_taste(tg, bili, svc, telegram_id: int, mid: int, seed: int) -> tuple[int, dict, str]:
    """A linked, synced and trained user who asked for picks and tapped 👍 on one; (id, chat, bvid)."""
    uid = linked(svc, bili, telegram_id, mid, seed)
    assert (await sync_user(svc, uid)).ok
    await train_users_now(svc, [uid])
    users.update_user(svc.db, uid, next_sync_at=svc.now() + 10**6)
    chat = tg.user(telegram_id, language_code="en")
    mark = tg.mark()
    await tg.send_text(chat, "/recommend")
    await tg.wait_for(lambda m: is_pick(m), chat=chat, since=mark, timeout=30)
    # The whole page out (each shown row knows its message) before the taste is touched.
    await eventually(
        lambda: bool(rows := picks.shown_history(svc.db, uid)) and all(r.message_id for r in rows),
        30,
        "a page of picks",
    )
    pick = next(m for m in tg.sent_to(chat) if is_pick(m))
    await tg.wait_answer(await tg.tap(chat, pick, pick.callback_data[0]))  # 👍
    await eventually(lambda: picks.feedback_count(svc.db, uid) == 1, 10, "the 👍 stored")
    shown = picks.get_shown(svc.db, int(pick.callback_data[0].split(":")[1]))
    return uid, chat, shown.bvid


def shown_rows(svc, uid: int) -> int:
    with svc.db.session() as s:
        return len(s.exec(select(Shown.id).where(Shown.user_id == uid)).all())


def model_rows(svc, uid: int) -> list[ModelVersion]:
    with svc.db.session() as s:
        return list(s.exec(select(ModelVersion).where(ModelVersion.user_id == uid)).all())


def behaviour_rows(svc, uid: int) -> int:
    return sum(behaviour.behaviour_counts(svc.db, uid).values())


# /sync


async def test_sync_edits_one_status_message_in_place_then_waits_out_its_cooldown(world):
    tg, bili, svc = world
    uid = linked(svc, bili, 32001, 7401, seed=11)
    alice = tg.user(32001, language_code="en")

    mark = tg.mark()
    await tg.send_text(alice, "/sync")
    status = await tg.wait_for(lambda m: "Syncing" in m.content, chat=alice, since=mark, timeout=30)
    done = await tg.wait_for(
        lambda m: m.message_id == status.message_id and "Synced now" in m.content, chat=alice, since=mark, timeout=60
    )
    assert done.edits, "the status message was edited, not sent anew"
    assert [m.message_id for m in tg.sent_to(alice) if "Sync" in m.content] == [status.message_id]
    counts = behaviour.behaviour_counts(svc.db, uid)
    assert counts["watch"] > 0 and f"{counts['watch']} watched" in done.content
    model = picks.latest_model_version(svc.db, uid)
    assert model is not None and f"model v{model.version}" in done.content, "it retrained on what it brought"
    assert users.get_user_by_id(svc.db, uid).next_sync_at > svc.now(), "the next scheduled sync is planned"

    calls = bili.total_calls
    again = await ask(tg, alice, "/sync", "next /sync is possible")
    assert "in 10 min" in again.content
    assert bili.total_calls == calls, "a refused /sync asks bilibili nothing"

    # The cooldown is in the database: it holds over a restart, and ends when it says.
    svc.clock = lambda: time.time() + 601
    await ask(tg, alice, "/sync", "Syncing")


async def test_sync_says_why_not_when_unlinked_dead_or_bilibili_limits(world):
    tg, bili, svc = world
    await ask(tg, tg.user(32002, language_code="en"), "/sync", "No bilibili account is linked")
    await ask(tg, tg.user(32003, language_code="zh"), "/sync", "尚未绑定 B 站账号")

    uid = linked(svc, bili, 32004, 7402, seed=12)
    users.mark_session_dead(svc.db, uid)
    await ask(tg, tg.user(32004, language_code="en"), "/sync", "Send /login to link it again")

    uid = linked(svc, bili, 32005, 7403, seed=13)
    await enter_risk_pause(svc, bili)
    reply = await ask(tg, tg.user(32005, language_code="en"), "/sync", "bilibili is limiting the bot")
    assert "runs by itself in about" in reply.content
    assert users.get_user_by_id(svc.db, uid).sync_requested_at is None, "a refused /sync is not counted"


async def test_a_login_that_died_at_bilibili_ends_the_status_message_and_stops_syncs(world):
    tg, bili, svc = world
    uid = linked(svc, bili, 32006, 7404, seed=14)
    bili.inject(P_COOKIE_INFO, "-101", times=1000)  # the session died at bilibili
    bob = tg.user(32006, language_code="en")

    mark = tg.mark()
    await tg.send_text(bob, "/sync")
    status = await tg.wait_for(lambda m: "Syncing" in m.content, chat=bob, since=mark, timeout=30)
    await tg.wait_for(
        lambda m: m.message_id == status.message_id and "Send /login" in m.content, chat=bob, since=mark, timeout=30
    )
    row = users.get_user_by_id(svc.db, uid)
    assert row.session_dead and row.next_sync_at is None
    assert behaviour_rows(svc, uid) == 0
    await ask(tg, bob, "/sync", "Send /login")  # the next one answers at once, no cooldown text


# /reset


async def test_reset_asks_first_and_cancel_or_a_stale_confirmation_changes_nothing(world):
    tg, bili, svc = world
    uid, carol, _ = await synced_with_taste(tg, bili, svc, 32007, 7405, seed=15)
    before = (picks.feedback_count(svc.db, uid), shown_rows(svc, uid), len(model_rows(svc, uid)))
    assert all(before)

    confirm = await ask(tg, carol, "/reset", "Forget your taste")
    assert [b["text"] for b in confirm.buttons] == ["♻️ Reset my taste", "Cancel"]
    assert all(len(d.encode()) <= 64 for d in confirm.callback_data)
    mark = tg.mark()
    await tg.wait_answer(await tg.tap(carol, confirm, "reset:no"))
    await tg.wait_for(
        lambda m: m.message_id == confirm.message_id and "Nothing was reset" in m.content, chat=carol, since=mark
    )

    stale = await ask(tg, carol, "/reset", "Forget your taste")
    mark = tg.mark()
    await tg.wait_answer(await tg.tap(carol, stale, f"reset:yes:{svc.now() - 601}", check_button=False))
    await tg.wait_for(
        lambda m: m.message_id == stale.message_id and "expired — send /reset again" in m.content,
        chat=carol,
        since=mark,
    )
    for forged in ("reset:yes:", "reset:yes:99999999999999", "reset:yes:1:2", "reset:maybe"):
        await tg.wait_answer(await tg.tap(carol, stale, forged, check_button=False))
    assert (picks.feedback_count(svc.db, uid), shown_rows(svc, uid), len(model_rows(svc, uid))) == before
    assert svc.models.load(str(uid)) is not None


async def test_reset_forgets_the_taste_and_keeps_the_login_history_and_settings(world):
    tg, bili, svc = world
    uid, dora, liked = await synced_with_taste(tg, bili, svc, 32008, 7406, seed=16)
    users.update_user(svc.db, uid, digest_time="07:15", digest_compact=True)
    watched = behaviour_rows(svc, uid)
    old_pick = next(m for m in tg.sent_to(dora) if is_pick(m))

    confirm = await ask(tg, dora, "/reset", "Forget your taste")
    mark = tg.mark()
    await tg.wait_answer(await tg.tap(dora, confirm, confirm.callback_data[0]))
    await tg.wait_for(
        lambda m: m.message_id == confirm.message_id and "taste is reset" in m.content, chat=dora, since=mark
    )

    assert picks.feedback_count(svc.db, uid) == 0 and shown_rows(svc, uid) == 0 and model_rows(svc, uid) == []
    assert svc.models.load(str(uid)) is None, "the model files went with the rows"
    row = users.get_user_by_id(svc.db, uid)
    assert row.credentials is not None and not row.session_dead, "the login stays"
    assert behaviour_rows(svc, uid) == watched, "the synced history stays"
    assert (row.digest_time, row.digest_compact) == ("07:15", True), "the settings stay"
    assert row.train_due_at is not None, "a model from the history alone is asked for"

    answer = await tg.wait_answer(await tg.tap(dora, old_pick, old_pick.callback_data[0]))
    assert "no longer linked" in answer["text"], "a pick shown before the reset is stale"
    assert picks.feedback_count(svc.db, uid) == 0

    report = await train_users_now(svc, [uid])
    model = model_rows(svc, uid)
    assert report.versions and model and model[0].n_samples == watched, "learnt from the behaviour alone"
    assert liked not in picks.get_feedback(svc.db, uid)


async def test_reset_during_a_sync_resurrects_nothing(world):
    tg, bili, svc = world
    uid, erin, _ = await synced_with_taste(tg, bili, svc, 32009, 7407, seed=17)
    fresh = next(b for b in bili.popular_order if b not in behaviour.watched_bvids(svc.db, uid))
    bili.add_watch(7407, fresh)  # the /sync brings something new, so it retrains afterwards

    held = bili.calls[P_HISTORY]
    bili.hold(P_HISTORY, after=0)
    mark = tg.mark()
    await tg.send_text(erin, "/sync")
    status = await tg.wait_for(lambda m: "Syncing" in m.content, chat=erin, since=mark, timeout=30)
    await eventually(lambda: bili.calls[P_HISTORY] > held, 30, "the sync waiting on bilibili's history")

    confirm = await ask(tg, erin, "/reset", "Forget your taste")
    await tg.wait_answer(await tg.tap(erin, confirm, confirm.callback_data[0]))
    await tg.wait_for(lambda m: "taste is reset" in m.content, chat=erin, since=mark)
    bili.release(P_HISTORY)
    await tg.wait_for(
        lambda m: m.message_id == status.message_id and "Synced now" in m.content, chat=erin, since=mark, timeout=60
    )

    assert picks.feedback_count(svc.db, uid) == 0 and shown_rows(svc, uid) == 0
    models = model_rows(svc, uid)
    assert len(models) == 1 and models[0].version == 1, "one new model, numbered afresh"
    assert models[0].n_samples == behaviour_rows(svc, uid), "trained on the history alone, no taps"
    assert fresh in behaviour.watched_bvids(svc.db, uid), "the sync itself stored what it read"


async def test_a_training_pass_that_read_the_taps_before_a_reset_saves_no_model(world, monkeypatch):
    tg, bili, svc = world
    uid, frank, _ = await synced_with_taste(tg, bili, svc, 32010, 7408, seed=18)
    entered, go_on = threading.Event(), threading.Event()
    real_train = jobs.training.rec.train_users

    def held_training(*args, **kwargs):  # on the trainer thread, after the pass read the taps
        entered.set()
        go_on.wait(30)
        return real_train(*args, **kwargs)

    monkeypatch.setattr(jobs.training.rec, "train_users", held_training)
    training = asyncio.create_task(train_users_now(svc, [uid]))
    await asyncio.to_thread(entered.wait, 30)

    confirm = await ask(tg, frank, "/reset", "Forget your taste")
    mark = tg.mark()
    await tg.wait_answer(await tg.tap(frank, confirm, confirm.callback_data[0]))
    await tg.wait_for(lambda m: "taste is reset" in m.content, chat=frank, since=mark)
    go_on.set()
    report = await training

    assert not report.versions, "the model of the deleted taps was not saved"
    assert model_rows(svc, uid) == [] and svc.models.load(str(uid)) is None
    assert users.get_user_by_id(svc.db, uid).train_due_at is not None, "still due: the next pass learns afresh"
    monkeypatch.setattr(jobs.training.rec, "train_users", real_train)
    assert (await train_users_now(svc, [uid])).versions == {uid: 1}
    assert model_rows(svc, uid)[0].n_samples == behaviour_rows(svc, uid)


# /profile's trend (issue 17 item 8)


async def test_profile_draws_the_taste_and_below_it_the_tags_share_of_watches_by_month(world):
    tg, bili, svc = world
    uid = linked(svc, bili, 32011, 7409, seed=19, n_history=40)
    month = 31 * 86400
    older = [b for b in bili.popular_order if bili.videos[b].tags][:12]
    for n, bvid in enumerate(older):  # watches two and three months back: the trend spans months
        bili.add_watch(7409, bvid, view_at=time.time() - (2 + n % 2) * month)
    assert (await sync_user(svc, uid)).ok
    await train_users_now(svc, [uid])
    months = {time.strftime("%Y-%m", time.gmtime(at)) for at, _ in behaviour.watched_tags(svc.db, uid)}
    assert len(months) >= 3

    jack = tg.user(32011, language_code="en")
    mark = tg.mark()
    await tg.send_text(jack, "/profile")
    chart = await tg.wait_for(lambda m: m.is_photo, chat=jack, since=mark, timeout=60)
    from PIL import Image

    image = Image.open(io.BytesIO(chart.photo)).convert("RGB")
    assert image.size == (1200, 900), "two panels: the taste bars over the monthly trend"
    lower = image.crop((0, 470, 1200, 900))
    line_blue = (0x1F, 0x77, 0xB4)  # the first trend line (matplotlib's first colour)
    assert line_blue in {color for _, color in lower.getcolors(maxcolors=1 << 20)}, "the trend panel has its lines"
