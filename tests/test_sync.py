"""One user's sync over real HTTP to the bilibili double: complete, incremental, shared, fault-proof."""

from __future__ import annotations

import pytest

from jobs.schedule import after_sync
from jobs.sync import sync_user
from storage import behaviour, catalogue, users
from tests.dbfixtures import postgres_url  # noqa: F401
from tests.harness import link_user, make_services

HISTORY_MID = 9001


async def _linked_user(svc, double, telegram_id: int, mid: int) -> int:
    return link_user(svc, double, telegram_id, mid, language="zh")


@pytest.fixture
async def svc(tmp_path, bilibili_double):
    services = make_services(tmp_path, bilibili_double)
    yield services
    await services.close()


async def test_first_sync_of_a_long_history_user_stores_all_behaviour(svc, bilibili_double):
    source = bilibili_double.add_long_history_user(HISTORY_MID)
    user_id = await _linked_user(svc, bilibili_double, 1, HISTORY_MID)

    report = await sync_user(svc, user_id)

    assert report.ok, report.error
    counts = behaviour.behaviour_counts(svc.db, user_id)
    assert counts["watch"] == len(source.history)
    # bilibili's web API exposes only the ~20 most recent likes; all of those are kept.
    likes = {b.bvid for b in behaviour.user_behaviours(svc.db, user_id) if b.kind == "like"}
    assert likes == set(source.likes[:20])
    assert counts.get("coin", 0) == len(source.coins)
    favs = sum(1 for f in source.folders for item in f.items if item.attr == 0)
    assert counts.get("favorite", 0) == favs
    watched = {b.bvid for b in behaviour.user_behaviours(svc.db, user_id)}
    videos = catalogue.get_videos(svc.db, watched)
    assert set(videos) == watched  # every watched video has a catalogue row
    assert all(v.fetched_at > 0 for v in videos.values()), "metadata + tags fetched for each"
    # The progress of a video watched to the end is kept as bilibili sends it.
    some = next(w for w in source.history.values() if w.progress == -1)
    stored = {(b.bvid, b.kind): b for b in behaviour.user_behaviours(svc.db, user_id)}
    assert stored[(some.bvid, "watch")].progress == -1


async def test_repeat_sync_of_an_unchanged_user_is_cheap_and_changes_nothing(svc, bilibili_double):
    bilibili_double.add_long_history_user(HISTORY_MID)
    user_id = await _linked_user(svc, bilibili_double, 1, HISTORY_MID)
    await sync_user(svc, user_id)
    before = behaviour.behaviour_counts(svc.db, user_id)

    second = await sync_user(svc, user_id)

    assert second.ok and second.new_items == 0
    assert second.calls <= 6, f"repeat sync made {second.calls} bilibili calls"
    assert behaviour.behaviour_counts(svc.db, user_id) == before


async def test_new_behaviour_is_picked_up_incrementally(svc, bilibili_double):
    double = bilibili_double
    double.add_generated_user(4242, seed=3, n_history=60)
    user_id = await _linked_user(svc, double, 1, 4242)
    await sync_user(svc, user_id)
    seen = {b.bvid for b in behaviour.user_behaviours(svc.db, user_id)}
    fresh = next(b for b in double.popular_order if b not in seen)

    double.add_watch(4242, fresh, progress=30, like=True)
    report = await sync_user(svc, user_id)

    assert report.ok and report.new_items == 2  # the watch and the like
    stored = {(b.bvid, b.kind) for b in behaviour.user_behaviours(svc.db, user_id)}
    assert {(fresh, "watch"), (fresh, "like")} <= stored


async def test_a_second_user_watching_the_same_videos_fetches_no_metadata_again(svc, bilibili_double):
    double = bilibili_double
    double.add_generated_user(501, seed=11, n_history=40)
    first = await _linked_user(svc, double, 1, 501)
    await sync_user(svc, first)
    same = [(w.bvid, w.view_at, w.progress) for w in double.users[501].history.values()]
    double.add_user(502, "twin", history=same)
    second = await _linked_user(svc, double, 2, 502)
    double.reset_calls()

    report = await sync_user(svc, second)

    assert report.ok and report.new_items == len(same)
    assert double.calls["/x/web-interface/view"] == 0
    assert double.calls["/x/web-interface/view/detail/tag"] == 0


@pytest.mark.parametrize("fault", ["412_html", "412_json", "-352"])
async def test_risk_control_stops_the_sync_and_a_later_sync_loses_nothing(svc, bilibili_double, fault):
    double = bilibili_double
    source = double.add_generated_user(777, seed=5, n_history=50)
    user_id = await _linked_user(svc, double, 1, 777)
    double.inject("/x/web-interface/history/cursor", fault, times=2)

    failed = await sync_user(svc, user_id)

    assert not failed.ok and failed.error.startswith("risk_control")
    assert svc.bili.throttle.paused  # all bilibili traffic waits now
    double.clear_faults()
    again = await sync_user(svc, user_id)
    assert again.ok, again.error
    counts = behaviour.behaviour_counts(svc.db, user_id)
    assert counts["watch"] == len(source.history)
    rows = behaviour.user_behaviours(svc.db, user_id)
    assert len(rows) == len({(b.bvid, b.kind) for b in rows})  # nothing duplicated


@pytest.mark.parametrize("fault", ["500", "malformed", "slow"])
async def test_transient_faults_are_retried(svc, bilibili_double, fault):
    double = bilibili_double
    source = double.add_generated_user(778, seed=6, n_history=30)
    user_id = await _linked_user(svc, double, 1, 778)
    double.inject("/x/web-interface/history/cursor", fault, times=1)

    report = await sync_user(svc, user_id)

    assert report.ok, report.error
    assert behaviour.behaviour_counts(svc.db, user_id)["watch"] == len(source.history)


async def test_a_dead_login_marks_the_user_once(svc, bilibili_double):
    double = bilibili_double
    double.add_generated_user(779, seed=8, n_history=10)
    user_id = await _linked_user(svc, double, 1, 779)
    double.inject("/x/passport-login/web/cookie/info", "-101", times=5)

    report = await sync_user(svc, user_id)

    assert report.error == "session_dead"
    assert after_sync(svc, user_id, report) is True  # tell the user…
    assert after_sync(svc, user_id, report) is False  # …only once
    assert users.get_user_by_id(svc.db, user_id).session_dead
    assert users.users_due_sync(svc.db, now=svc.now() + 10**6) == []


async def test_sync_runs_on_postgres_too(tmp_path, bilibili_double, postgres_url):
    svc = make_services(tmp_path, bilibili_double, database_url=postgres_url)
    try:
        source = bilibili_double.add_generated_user(880, seed=9, n_history=40)
        user_id = await _linked_user(svc, bilibili_double, 1, 880)
        assert (await sync_user(svc, user_id)).ok
        assert (await sync_user(svc, user_id)).new_items == 0
        assert behaviour.behaviour_counts(svc.db, user_id)["watch"] == len(source.history)
    finally:
        await svc.close()
