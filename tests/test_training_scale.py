"""A training pass costs what its own users cost (issue 16 §1): it reads only their events and
videos, chunked; the collaborative signals are built on their own schedule from a bounded sample,
and a /forget drops them only when the leaver's rows were in the build."""

from __future__ import annotations

import asyncio
import threading

import pytest

import recommender
from jobs import training
from jobs.sync import refresh_candidates, sync_user
from jobs.training import build_shared, rebuild_shared, shared_due, train_users_now
from storage import behaviour, picks, users
from storage.behaviour import BehaviourRow
from tests.botenv import forget_in_chat, pick_messages, running_bot
from tests.dbfixtures import postgres_url  # noqa: F401
from tests.harness import link_user, make_services


def _heavy_users(svc, count: int, videos_each: int, first_telegram_id: int) -> list[int]:
    """Users shaped like real ones on a long-tailed catalogue: each brings videos of their own."""
    ids = []
    for i in range(count):
        user = users.ensure_user(svc.db, first_telegram_id + i, first_telegram_id + i, "en", now=svc.now())
        rows = [BehaviourRow(f"BV{i:03d}x{j:06d}", "watch", at=svc.now() - j) for j in range(videos_each)]
        behaviour.save_behaviours(svc.db, user.id, rows)
        ids.append(user.id)
    return ids


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'bilipick.db'}"
    return request.getfixturevalue("postgres_url")


async def test_a_new_users_first_model_trains_beside_70000_other_videos(tmp_path, bilibili_double, database_url):
    """50 real-shaped users bring 70,000 distinct videos: more than one statement may name on
    PostgreSQL (65,535) or stock SQLite (32,766). A new user's pass must not name them at all."""
    svc = make_services(tmp_path, bilibili_double, database_url=database_url)
    try:
        _heavy_users(svc, count=50, videos_each=1400, first_telegram_id=100)
        bilibili_double.add_generated_user(7001, seed=3, n_history=60)
        newcomer = link_user(svc, bilibili_double, 9001, 7001)
        await refresh_candidates(svc, force=True)
        assert (await sync_user(svc, newcomer)).ok
        report = await train_users_now(svc, [newcomer])
        assert report.users == 1 and svc.models.load(str(newcomer)) is not None
    finally:
        await svc.close()


async def test_the_shared_signals_read_a_bounded_sample(tmp_path, bilibili_double):
    svc = make_services(tmp_path, bilibili_double, shared_sample_users=20, shared_items_per_user=50)
    try:
        heavy = _heavy_users(svc, count=30, videos_each=200, first_telegram_id=100)
        for uid in heavy:  # one video everybody watched, the newest of each history
            behaviour.save_behaviours(svc.db, uid, [BehaviourRow("BV1everyone1", "like", at=svc.now() + 1)])
        shared = build_shared(svc)
        assert len(shared.members) == 20 and {int(m) for m in shared.members} <= set(heavy)
        assert "BV1everyone1" in shared.bvids, "a video co-watched in the sample has neighbours"
    finally:
        await svc.close()


async def test_signals_are_built_on_their_own_schedule(tmp_path, bilibili_double):
    clock = {"now": 1_800_000_000.0}
    svc = make_services(tmp_path, bilibili_double, shared_rebuild_s=3600)
    svc.clock = lambda: clock["now"]
    try:
        bilibili_double.add_generated_user(7101, seed=4, n_history=60)
        uid = link_user(svc, bilibili_double, 9101, 7101)
        await refresh_candidates(svc, force=True)
        assert (await sync_user(svc, uid)).ok
        assert not shared_due(svc), "nobody has a model to rank with yet"
        await train_users_now(svc, [uid])
        assert shared_due(svc) and await rebuild_shared(svc)
        assert not shared_due(svc)
        await train_users_now(svc, [uid])  # a pass loads the signals, it does not rebuild them
        assert svc.models.load_shared().built_at == int(clock["now"]) and not shared_due(svc)
        clock["now"] += 3600
        assert shared_due(svc), "SHARED_REBUILD_INTERVAL later"
    finally:
        await svc.close()


@pytest.fixture
async def world(tmp_path, tg, bilibili_double):
    async with running_bot(tmp_path, tg, bilibili_double, tick_seconds=3600) as (app, svc):
        await refresh_candidates(svc, force=True)
        yield tg, bilibili_double, svc


async def _member(svc, bili, telegram_id: int, mid: int, seed: int) -> int:
    bili.add_generated_user(mid, seed=seed, n_history=60)
    uid = link_user(svc, bili, telegram_id, mid)
    assert (await sync_user(svc, uid)).ok
    await train_users_now(svc, [uid])
    return uid


async def test_a_newcomer_who_likes_a_pick_and_leaves_keeps_everyones_signals(world):
    """The loop /recommend, 👍, /forget must not reset everyone's signals: the newcomer's 👍 came
    after the build, so their rows were never in it."""
    tg, bili, svc = world
    member = await _member(svc, bili, 13001, 6301, seed=5)
    assert await rebuild_shared(svc)
    generation = svc.models.shared_generation

    newcomer = tg.user(13002, first_name="N", language_code="en")
    await tg.send_text(newcomer, "/recommend")
    await tg.wait_for(lambda m: m.callback_data, chat=newcomer)
    pick = pick_messages(tg, newcomer)[0]
    await tg.wait_answer(await tg.tap(newcomer, pick, pick.callback_data[0]))  # 👍
    assert picks.get_feedback(svc.db, users.get_user(svc.db, 13002).id)
    await forget_in_chat(tg, newcomer)

    assert users.get_user(svc.db, 13002) is None
    assert svc.models.shared_generation == generation and svc.models.load_shared() is not None
    assert str(member) in svc.models.load_shared().members

    await forget_in_chat(tg, tg.user(13001, first_name="M", language_code="en"))
    assert svc.models.load_shared() is None, "a member's leaving drops the signals built from them"


async def test_a_member_who_leaves_while_the_signals_are_built_is_not_kept_in_them(world, monkeypatch):
    tg, bili, svc = world
    stays = await _member(svc, bili, 13101, 6401, seed=6)
    leaves = await _member(svc, bili, 13102, 6402, seed=7)
    read, release = threading.Event(), threading.Event()
    real_build = recommender.build_from_choices

    def held_build(*args, **kwargs):  # the build has read both users' rows, and saves after the /forget
        read.set()
        release.wait(10)
        return real_build(*args, **kwargs)

    monkeypatch.setattr(training.rec, "build_from_choices", held_build)
    building = asyncio.create_task(rebuild_shared(svc))
    await asyncio.get_running_loop().run_in_executor(None, read.wait, 10)
    await forget_in_chat(tg, tg.user(13102, first_name="L", language_code="en"))
    release.set()
    assert await building is False
    assert svc.models.load_shared() is None, "built with the leaver's rows: not kept"
    monkeypatch.setattr(training.rec, "build_from_choices", real_build)
    assert await rebuild_shared(svc)
    assert (
        svc.models.load_shared().members == frozenset({str(stays)})
        and str(leaves) not in svc.models.load_shared().members
    )


async def test_many_users_due_at_once_all_get_models_in_bounded_passes(tmp_path, bilibili_double, monkeypatch):
    monkeypatch.setattr(training, "PASS_MAX_USERS", 2)
    svc = make_services(tmp_path, bilibili_double)
    try:
        await refresh_candidates(svc, force=True)
        due = []
        for i in range(5):
            bilibili_double.add_generated_user(7200 + i, seed=30 + i, n_history=40)
            due.append(link_user(svc, bilibili_double, 9200 + i, 7200 + i))
            assert (await sync_user(svc, due[-1])).ok
        report = await train_users_now(svc, due)
        assert report.users == 5 and all(svc.models.load(str(uid)) is not None for uid in due)
        assert not users.users_due_training(svc.db, svc.now() + 10**6)
    finally:
        await svc.close()
