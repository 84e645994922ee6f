"""Sync faults that used to lose or mix data, over real HTTP to the bilibili double (issue 11:
§1.1 cursors before rows, §1.8 endless pagination, §1.14 a different account, §2 a crash before commit)."""

from __future__ import annotations

import asyncio

import pytest

from jobs.sync import sync_user
from storage import behaviour
from tests.doubles.bilibili import COIN, FAV_ITEMS, HISTORY
from tests.harness import link_user, make_services


@pytest.fixture
async def svc(tmp_path, bilibili_double):
    services = make_services(tmp_path, bilibili_double)
    yield services
    await services.close()


def stored(svc, user_id: int, kind: str) -> set[str]:
    return {b.bvid for b in behaviour.user_behaviours(svc.db, user_id) if b.kind == kind}


def live_favourites(double, mid: int) -> set[str]:
    return {item.bvid for f in double.users[mid].folders for item in f.items if item.attr == 0}


async def test_a_fault_late_in_a_sync_does_not_hide_favourites_from_the_next_sync(svc, bilibili_double):
    """§1.1: the folder cursors used to be saved before the rows; a -352 on the coin list then
    dropped the favourites but kept the cursors, so the next sync skipped the folders."""
    double = bilibili_double
    double.add_generated_user(3101, seed=21, n_history=80)
    favourites = live_favourites(double, 3101)
    assert favourites, "the generated user has favourites"
    user_id = link_user(svc, double, 1, 3101)
    double.inject(COIN, "-352", times=5)

    failed = await sync_user(svc, user_id)

    assert not failed.ok
    double.clear_faults()
    again = await sync_user(svc, user_id)
    assert again.ok, again.error
    assert stored(svc, user_id, "favorite") == favourites
    assert stored(svc, user_id, "watch") == set(double.users[3101].history)


ENDLESS = 10**5  # injected pages: far more than any sync may ask for


async def sync_within(svc, user_id: int, seconds: float = 60):
    """A sync that must end; a looping pagination fails the test here instead of hanging it."""
    return await asyncio.wait_for(sync_user(svc, user_id), seconds)


@pytest.mark.parametrize("fault", ["repeat_cursor", "endless"])
async def test_a_history_that_never_ends_stops_and_keeps_what_it_got(svc, bilibili_double, fault):
    """§1.8: a repeating cursor (or pages of nothing that still have a next cursor) looped forever."""
    double = bilibili_double
    double.add_generated_user(3201, seed=22, n_history=80)
    user_id = link_user(svc, double, 1, 3201)
    double.inject(HISTORY, fault, times=ENDLESS)

    report = await sync_within(svc, user_id)

    assert report.ok, report.error
    assert double.calls[HISTORY] <= 3
    first_page = sorted(double.users[3201].history.values(), key=lambda w: w.view_at, reverse=True)[:30]
    if fault == "repeat_cursor":
        assert stored(svc, user_id, "watch") == {w.bvid for w in first_page}
    assert stored(svc, user_id, "favorite") == live_favourites(double, 3201), "the rest of the sync ran"
    double.clear_faults()
    await sync_within(svc, user_id)
    assert stored(svc, user_id, "watch") == set(double.users[3201].history), "the next sync reads the rest"


@pytest.mark.parametrize("fault", ["repeat_cursor", "endless"])
async def test_a_favourite_folder_that_never_ends_stops_and_keeps_what_it_got(svc, bilibili_double, fault):
    double = bilibili_double
    favourites = double.popular_order[:45]  # three pages of 20
    double.add_user(
        3202, "folders", history=[(b, 1_700_000_000 - i) for i, b in enumerate(favourites[:5])], favs=favourites
    )
    user_id = link_user(svc, double, 1, 3202)
    double.inject(FAV_ITEMS, fault, times=ENDLESS)

    report = await sync_within(svc, user_id)

    assert report.ok, report.error
    assert double.calls[FAV_ITEMS] <= 45 // 20 + 2, "no more pages than the folder's count allows"
    if fault == "repeat_cursor":
        newest = sorted(double.users[3202].folders[-1].items, key=lambda e: e.fav_time, reverse=True)[:20]
        assert stored(svc, user_id, "favorite") == {e.bvid for e in newest}
    double.clear_faults()
    await sync_within(svc, user_id)
    assert stored(svc, user_id, "favorite") == set(favourites), "the folder is read again, to its end"


async def test_a_page_of_only_deleted_favourites_does_not_end_the_folder(svc, bilibili_double):
    """Deleted videos come back filtered out: an empty page that is honest, not the end."""
    double = bilibili_double
    live, dead = double.popular_order[:30], double.popular_order[30:50]
    now = 1_700_000_000
    entries = (
        [(b, now - i) for i, b in enumerate(live[:20])]
        + [(b, now - 100 - i, 9) for i, b in enumerate(dead)]
        + [(b, now - 200 - i) for i, b in enumerate(live[20:])]
    )
    double.add_user(3204, "deleted", history=[(live[0], now)], favs=entries)
    user_id = link_user(svc, double, 1, 3204)

    report = await sync_within(svc, user_id)

    assert report.ok, report.error
    assert stored(svc, user_id, "favorite") == set(live)


async def test_a_page_cap_bounds_an_honest_but_endless_list(tmp_path, bilibili_double):
    """Every page new, the cursor always moving, bilibili never saying it ended: SYNC_MAX_PAGES stops it."""
    double = bilibili_double
    svc = make_services(tmp_path, double, sync_max_pages=2)
    try:
        double.add_generated_user(3203, seed=23, n_history=100)
        user_id = link_user(svc, double, 1, 3203)

        report = await sync_within(svc, user_id)

        assert report.ok, report.error
        assert double.calls[HISTORY] == 2
        assert len(stored(svc, user_id, "watch")) == 60
    finally:
        await svc.close()
