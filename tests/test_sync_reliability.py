"""Sync faults that used to lose or mix data, over real HTTP to the bilibili double (issue 11:
§1.1 cursors before rows, §1.8 endless pagination, §1.14 a different account, §2 a crash before commit)."""

from __future__ import annotations

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
