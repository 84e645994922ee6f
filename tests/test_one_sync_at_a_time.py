"""One sync of a user at a time: the tick never starts a second sync of a user being onboarded
(issue 13 §3; seen as 196 wasted calls beside a first sync)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from jobs.onboarding import first_sync_and_train
from jobs.tick import Ticker
from tests.botenv import eventually
from tests.harness import link_user, make_services

MID = 3401
HISTORY, LIKE = "/x/web-interface/history/cursor", "/x/space/like/video"


@pytest.fixture
async def svc(tmp_path, bilibili_double):
    services = make_services(tmp_path, bilibili_double)
    yield services
    await services.close()


async def test_the_tick_does_not_sync_a_user_while_their_first_sync_runs(svc, bilibili_double):
    double = bilibili_double
    double.add_generated_user(MID, seed=5, n_history=60)
    user_id = link_user(svc, double, 1, MID)  # due for a sync at once, as after a login
    svc.settings.bilibili.timeout_s = 60
    double.hold(LIKE, after=0)  # the first sync is still reading when the tick comes

    class Quiet:
        async def status(self, key: str, **values: object) -> None:
            return None

        notify = status

    onboarding = asyncio.create_task(first_sync_and_train(svc, user_id, Quiet()))
    await eventually(lambda: double.calls[LIKE] >= 1, what="the first sync to reach the likes")
    history_reads = double.calls[HISTORY]  # the first sync has read the newest history by now

    await Ticker(svc).run_syncs(SimpleNamespace(bot=None))

    assert double.calls[HISTORY] == history_reads, "the tick read nobody's history a second time"
    double.release(LIKE)
    assert await onboarding, "the first sync and training finish"
