"""The scheduled jobs in the running bot: sync → train → daily digest, exactly once, within Telegram's limits.

The real Application ticks against both doubles; the services' clock is moved by hand so that "a
minute later" and "the next day" take no real time.
"""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from sqlalchemy import text
from sqlmodel import select

import recommender
from jobs.convert import to_rec_video, user_events
from jobs.training import SHARED_RELATED_PER_VIDEO, train_users_now
from recommender.features import encode_videos
from storage import catalogue, picks, users
from storage.models import Video
from tests.botenv import eventually, forget_in_chat, is_pick, pick_bvid, pick_messages, running_bot
from tests.doubles.bilibili import BilibiliDouble
from tests.harness import link_user

TZ = "Asia/Shanghai"


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
async def bot(tmp_path, tg, bilibili_double):
    async with running_bot(tmp_path, tg, bilibili_double, tick_seconds=0.2, retrain_debounce_s=30) as (app, svc):
        clock = Clock()
        svc.clock = clock
        yield tg, bilibili_double, svc, clock


async def linked_user(svc, bili: BilibiliDouble, telegram_id: int, mid: int, seed: int) -> int:
    """A user linked an hour ago; the ticks sync and train them, as after a real /login."""
    bili.add_generated_user(mid, seed=seed, n_history=100, uname=f"u{mid}")
    uid = link_user(svc, bili, telegram_id, mid, linked_ago_s=3600, timezone=TZ)
    await eventually(lambda: svc.models.latest_version(str(uid)) is not None, 60, "the first model")
    return uid


def digest_in(svc, user_id: int, minutes: int) -> None:
    local = datetime.fromtimestamp(svc.now(), ZoneInfo(TZ)) + timedelta(minutes=minutes)
    users.update_user(svc.db, user_id, digest_time=local.strftime("%H:%M"))


async def test_a_digest_arrives_exactly_once_a_day(bot):
    tg, bili, svc, clock = bot
    uid = await linked_user(svc, bili, 9101, 4101, seed=3)
    digest_in(svc, uid, minutes=1)
    await asyncio.sleep(1.0)  # several ticks: not yet due
    assert pick_messages(tg, 9101) == []

    clock.advance(61)
    await eventually(lambda: len(pick_messages(tg, 9101)) >= 5, what="the digest")
    await asyncio.sleep(1.5)  # more ticks: nothing more today
    first_day = pick_messages(tg, 9101)
    assert len(first_day) == 5
    assert all(
        m.is_photo and [b["text"][:1] for b in m.reply_markup["inline_keyboard"][0]] == ["👍", "👎"] for m in first_day
    )

    clock.advance(86400)
    await eventually(lambda: len(pick_messages(tg, 9101)) >= 10, what="the second day's digest")
    await asyncio.sleep(1.0)
    second_day = pick_messages(tg, 9101)[5:]
    assert len(second_day) == 5
    assert not {pick_bvid(m) for m in second_day} & {pick_bvid(m) for m in first_day}


async def test_paused_users_get_no_digest(bot):
    tg, bili, svc, clock = bot
    uid = await linked_user(svc, bili, 9151, 4151, seed=5)
    digest_in(svc, uid, minutes=1)
    await tg.send_text(tg.user(9151, language_code="en"), "/digest off")
    await tg.wait_for(lambda m: "/digest on" in m.content, chat=9151)
    clock.advance(61)
    await asyncio.sleep(1.5)
    assert pick_messages(tg, 9151) == []


async def test_a_blocked_user_gets_nothing_more_and_a_429_only_delays(bot):
    tg, bili, svc, clock = bot
    alice = await linked_user(svc, bili, 9201, 4201, seed=7)
    bob = await linked_user(svc, bili, 9202, 4202, seed=8)
    for uid in (alice, bob):
        digest_in(svc, uid, minutes=1)
    for method in ("sendPhoto", "sendMessage"):
        tg.inject(method, 403, "Forbidden: bot was blocked by the user", chat_id=9202, times=50)
    tg.inject("sendPhoto", 429, retry_after=1, chat_id=9201)

    clock.advance(61)
    await eventually(lambda: len(pick_messages(tg, 9201)) >= 5, what="alice's digest despite the 429")
    await asyncio.sleep(1.0)
    assert len(pick_messages(tg, 9201)) == 5
    limited = next(e for e in tg.errors if e["error_code"] == 429)
    assert min(m.time for m in pick_messages(tg, 9201)) >= limited["time"] + 1.0, "retry_after was honoured"

    refused = [e for e in tg.errors if e["error_code"] == 403]
    assert len(refused) == 1, "no further sends after the first 403"
    assert pick_messages(tg, 9202) == []
    assert users.get_user_by_id(svc.db, bob).blocked

    clock.advance(86400)  # the next day: alice again, bob still nothing
    await eventually(lambda: len(pick_messages(tg, 9201)) >= 10, what="alice's second digest")
    assert len([e for e in tg.errors if e["error_code"] == 403]) == 1


async def test_taps_lead_to_a_retrain_that_moves_the_disliked_uploader_down(bot):
    tg, bili, svc, clock = bot
    uid = await linked_user(svc, bili, 9301, 4301, seed=11)
    first_version = svc.models.latest_version(str(uid))
    user = tg.user(9301, language_code="en")
    await tg.send_text(user, "/recommend")
    await eventually(lambda: len(pick_messages(tg, 9301)) >= 5, what="picks")
    shown = pick_messages(tg, 9301)[:5]

    # The uploaders of the picks, and how the current model rates their other videos.
    videos = catalogue.get_videos(svc.db, [pick_bvid(m) for m in shown])
    disliked_uploaders = {videos[pick_bvid(m)].owner_mid for m in shown}
    # Picks now come from every source (recall, the user's own related lists), so their uploaders'
    # other videos are looked for in the whole catalogue, not only in the shared lists.
    with svc.db.session() as s:
        stored = list(s.exec(select(Video).where(Video.owner_mid.in_(sorted(disliked_uploaders)))).all())
    # The uploaders' videos, the disliked picks among them (some uploaders have only the one).
    others = [to_rec_video(v) for v in stored if v.title]
    assert len(others) >= len(shown), "the picks themselves at least"

    def mean_score() -> float:
        model = svc.models.load(str(uid))
        return float(model.logits(encode_videos(others, model.cfg, svc.now())).mean())

    before = mean_score()
    for message in shown:
        await tg.wait_answer(await tg.tap(user, message, message.callback_data[1]))  # 👎
    await eventually(lambda: len(picks.get_feedback(svc.db, uid)) == 5, 5, "five labels stored")

    await asyncio.sleep(1.0)
    assert svc.models.latest_version(str(uid)) == first_version, "debounced: no retrain per tap"
    clock.advance(31)
    await eventually(lambda: svc.models.latest_version(str(uid)) != first_version, what="the retrain")
    after = mean_score()
    assert after < before


async def test_recommend_and_taps_are_answered_while_training_runs(bot, monkeypatch):
    tg, bili, svc, clock = bot
    uid = await linked_user(svc, bili, 9401, 4401, seed=13)
    user = tg.user(9401, language_code="en")
    await tg.send_text(user, "/recommend")
    await eventually(lambda: len(pick_messages(tg, 9401)) >= 5, what="picks")

    # A pass as long as one over many users: the real training, repeated for three seconds.
    real_train = recommender.train_users

    def long_pass(*args, **kwargs):
        deadline = time.monotonic() + 3.0
        models = real_train(*args, **kwargs)
        while time.monotonic() < deadline:
            models = real_train(*args, **kwargs)
        return models

    monkeypatch.setattr(recommender, "train_users", long_pass)
    training = asyncio.create_task(train_users_now(svc, [uid]))
    await eventually(lambda: uid in svc.busy_training, 5, "the training pass to start")
    mark = tg.mark()
    started = time.monotonic()
    await tg.send_text(user, "/recommend")
    query = await tg.tap(user, pick_messages(tg, 9401)[0], pick_messages(tg, 9401)[0].callback_data[0])
    answer = await tg.wait_answer(query)
    await tg.wait_for(is_pick, chat=9401, since=mark)
    answered_in = time.monotonic() - started
    still_training = not training.done()
    await training
    assert answer["latency"] < 1.0
    assert still_training, f"training finished before the answers ({answered_in:.2f}s): the test proves nothing"


async def test_a_dead_login_is_told_once_and_syncs_stop(bot):
    tg, bili, svc, clock = bot
    uid = await linked_user(svc, bili, 9601, 4601, seed=17)
    bili.inject("/x/passport-login/web/cookie/info", "-101", times=1000)  # the session died at bilibili

    clock.advance(7 * 3600)  # past the sync interval: the tick syncs, finds the login dead
    await tg.wait_for(lambda m: "Send /login" in m.content, chat=9601, timeout=30)
    assert users.get_user_by_id(svc.db, uid).session_dead
    calls = bili.calls["/x/passport-login/web/cookie/info"]

    clock.advance(7 * 3600)
    await asyncio.sleep(1.5)  # more ticks
    assert len([m for m in tg.sent_to(9601) if "Send /login" in m.content]) == 1
    assert bili.calls["/x/passport-login/web/cookie/info"] == calls, "no more syncs until a new /login"


async def test_after_downtime_a_digest_within_the_grace_period_still_goes_out(bot):
    tg, bili, svc, clock = bot
    late = await linked_user(svc, bili, 9701, 4701, seed=19)
    too_late = await linked_user(svc, bili, 9702, 4702, seed=23)
    for uid in (late, too_late):
        users.update_user(svc.db, uid, created_at=svc.now() - 10 * 86400)
    digest_in(svc, late, minutes=-120)  # the bot was down through the slot: 2 h late, grace is 3 h
    digest_in(svc, too_late, minutes=-240)  # 4 h late: skipped, tomorrow's comes as usual

    await eventually(lambda: len(pick_messages(tg, 9701)) >= 5, what="the late digest")
    await asyncio.sleep(1.0)
    assert pick_messages(tg, 9702) == []
    today = datetime.fromtimestamp(svc.now(), ZoneInfo(TZ)) - timedelta(minutes=240)
    assert picks.get_digest(svc.db, too_late, today.date().isoformat()).status == "skipped"


def shared_without(svc, user_ids: list[int]) -> recommender.SharedSignals:
    """The collaborative signals built from these users' behaviour alone."""
    events = {str(u): user_events(svc.db, u) for u in user_ids}
    chosen = {e.bvid for evs in events.values() for e in evs}
    related = catalogue.related_graph(svc.db, chosen, per_video=SHARED_RELATED_PER_VIDEO)  # as the build reads it
    return recommender.build_shared_signals(events, related)


def same_signals(a: recommender.SharedSignals | None, b: recommender.SharedSignals) -> bool:
    return (
        a is not None
        and a.bvids == b.bvids
        and np.array_equal(a.nbr_idx, b.nbr_idx)
        and np.allclose(a.nbr_sim, b.nbr_sim)
    )


async def test_forget_takes_the_user_out_of_the_shared_signals(bot):
    tg, bili, svc, clock = bot
    stays = await linked_user(svc, bili, 9701, 4701, seed=21)
    leaves = await linked_user(svc, bili, 9702, 4702, seed=22)
    await eventually(
        lambda: same_signals(svc.models.load_shared(), shared_without(svc, [stays, leaves])),
        what="signals from both users",
    )
    assert not same_signals(svc.models.load_shared(), shared_without(svc, [stays])), "the leaver counts"

    leaver = tg.user(9702, language_code="en")
    await forget_in_chat(tg, leaver)

    # Rebuilt from the one who stays: exactly what their behaviour alone gives.
    await eventually(
        lambda: same_signals(svc.models.load_shared(), shared_without(svc, [stays])), what="signals without the leaver"
    )
    await tg.send_text(tg.user(9701, language_code="en"), "/recommend")
    await eventually(lambda: len(pick_messages(tg, 9701)) >= 5, what="picks for the one who stays")


async def test_a_user_who_forgets_during_a_training_pass_keeps_no_model(bot, monkeypatch):
    tg, bili, svc, clock = bot
    uid = await linked_user(svc, bili, 9801, 4801, seed=23)
    release = threading.Event()
    real_train = recommender.train_users

    def held_pass(*args, **kwargs):  # a pass that read the user's behaviour, and ends after the /forget
        release.wait(10)
        return real_train(*args, **kwargs)

    monkeypatch.setattr(recommender, "train_users", held_pass)
    training = asyncio.create_task(train_users_now(svc, [uid]))
    try:
        await eventually(lambda: uid in svc.busy_training, 5, "the training pass to start")
        leaver = tg.user(9801, language_code="en")
        await forget_in_chat(tg, leaver)
    finally:
        release.set()
    report = await training
    assert report.users == 0
    assert svc.models.latest_version(str(uid)) is None, "no model file came back"
    with svc.db.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM model_versions WHERE user_id = :u"), {"u": uid}).scalar() == 0


async def test_a_user_who_forgets_during_onboarding_training_keeps_no_model(bot, monkeypatch):
    """/forget cancels the onboarding task awaiting the pass, but the trainer thread goes on: the save
    itself must see that the user is gone (their id may come back; their model must not)."""
    tg, bili, svc, clock = bot
    uid = await linked_user(svc, bili, 9802, 4802, seed=24)
    svc.models.delete(str(uid))
    release = threading.Event()
    real_train = recommender.train_users

    def held_pass(*args, **kwargs):
        release.wait(10)
        return real_train(*args, **kwargs)

    monkeypatch.setattr(recommender, "train_users", held_pass)
    onboarding = svc.spawn(train_users_now(svc, [uid]), "onboarding", user_id=uid)  # as /login does
    try:
        await eventually(lambda: uid in svc.busy_training, 5, "the training pass to start")
        await forget_in_chat(tg, tg.user(9802, language_code="en"))
        assert onboarding.cancelled() or onboarding.done()
    finally:
        release.set()
    await asyncio.get_running_loop().run_in_executor(svc.trainer, lambda: None)  # the pass has ended
    assert svc.models.latest_version(str(uid)) is None, "no model file came back"
    with svc.db.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM model_versions WHERE user_id = :u"), {"u": uid}).scalar() == 0
