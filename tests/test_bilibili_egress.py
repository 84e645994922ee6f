"""bilibili limits per egress IP, not per process (issue 16 §10): in distributed mode the processes
leaving by one IP share BILIBILI_MAX_RPS and the risk pause through the database; another egress
name is paced on its own. Two Services here are two processes' worth: their own clients and
Throttles, one PostgreSQL database, the bilibili double counting what arrives."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bilibili import RiskControl, RiskPaused
from bilibili.client import P_VIEW
from services import Services, build_bilibili
from storage.pace import BilibiliEgressPace
from tests.dbfixtures import postgres_url  # noqa: F401
from tests.distributed import distributed_services
from tests.doubles.bilibili import BilibiliDouble
from tests.harness import FAST_BILIBILI

pytestmark = pytest.mark.postgres

BV = "BV1FYjBzAE8h"
RATE = 8  # requests per second per egress IP


async def _process(data_dir: Path, double: BilibiliDouble, url: str, **bilibili) -> Services:
    """One process's Services in distributed mode, its bilibili client built as build_services does."""
    svc = distributed_services(data_dir, double, url)
    svc.settings.bilibili = double.settings(**{**FAST_BILIBILI, **bilibili})
    await svc.bili.close()
    svc.bili = build_bilibili(svc.settings, svc.db)
    return svc


async def _views(svc: Services, tasks: int, each: int) -> None:
    async def one_task() -> None:
        for _ in range(each):
            await svc.bili.view(BV)

    await asyncio.gather(*(one_task() for _ in range(tasks)))


async def test_two_processes_on_one_egress_together_keep_bilibilis_rate(tmp_path, bilibili_double, postgres_url):  # noqa: F811
    a = await _process(tmp_path / "a", bilibili_double, postgres_url, max_requests_per_second=RATE)
    b = await _process(tmp_path / "b", bilibili_double, postgres_url, max_requests_per_second=RATE)
    try:
        await asyncio.gather(_views(a, 3, 4), _views(b, 3, 4))
    finally:
        await a.close()
        await b.close()
    arrivals = sorted(r.at for r in bilibili_double.requests)
    assert len(arrivals) >= 24
    # Slots 1/RATE apart: any RATE+1 requests in a row span a second (less a little network jitter).
    # Each process alone at RATE (the pace per process) makes it half a second.
    spans = [arrivals[i + RATE] - arrivals[i] for i in range(len(arrivals) - RATE)]
    assert min(spans) >= 0.85, f"{RATE + 1} requests within {min(spans):.2f}s from one IP"


async def test_a_risk_pause_hit_by_one_process_pauses_the_others_on_its_egress(tmp_path, bilibili_double, postgres_url):  # noqa: F811
    pause = dict(risk_pause_base_s=600.0, risk_pause_max_s=600.0)
    a = await _process(tmp_path / "a", bilibili_double, postgres_url, **pause)
    b = await _process(tmp_path / "b", bilibili_double, postgres_url, **pause)
    elsewhere = await _process(tmp_path / "c", bilibili_double, postgres_url, egress="proxy-2", **pause)
    try:
        for svc in (a, b, elsewhere):
            await svc.bili.view(BV)  # device cookies and a first call: what follows is only views
        bilibili_double.inject(P_VIEW, "412_json")
        with pytest.raises(RiskControl) as hit:
            await a.bili.view(BV)
        assert hit.value.retry_in_s > 500
        calls = bilibili_double.total_calls

        with b.bili.refusing_pauses(), pytest.raises(RiskPaused) as refused:  # a queued job: fails fast
            await b.bili.view(BV)
        assert refused.value.retry_in_s > 500 and b.bili.throttle.paused
        waiting = asyncio.create_task(b.bili.view(BV))  # other background work waits the pause out
        await asyncio.sleep(0.3)
        assert not waiting.done()
        waiting.cancel()
        assert bilibili_double.total_calls == calls, "nothing left the paused IP"

        assert (await elsewhere.bili.view(BV)).bvid == BV  # another IP is not blocked
        assert bilibili_double.total_calls == calls + 1 and not elsewhere.bili.throttle.paused
    finally:
        for svc in (a, b, elsewhere):
            await svc.close()


async def test_another_egress_name_is_paced_on_its_own(tmp_path, bilibili_double, postgres_url):  # noqa: F811
    svc = distributed_services(tmp_path, bilibili_double, postgres_url)
    try:
        here, there = BilibiliEgressPace(svc.db, "default"), BilibiliEgressPace(svc.db, "proxy-2")
        for _ in range(20):
            here.reserve(0.5)  # the next 10 s of this IP are taken
        assert here.reserve(0.5)[0] > 9.0
        assert there.reserve(0.5)[0] == 0.0
        here.pause(60.0, 60.0)
        assert here.reserve(0.5)[1] > 55.0 and there.reserve(0.5)[1] == 0.0
    finally:
        svc.db.dispose()


async def test_status_on_another_process_says_bilibili_is_limiting_during_a_pause_it_has_not_met(
    tmp_path,
    bilibili_double,
    postgres_url,  # noqa: F811
):
    """/status on the front while a worker hit the risk pause: the front has made no request since,
    so its own throttle knows nothing; the shared pace does."""
    from handlers.controls import status_text
    from storage import users
    from tests.harness import link_user

    pause = dict(risk_pause_base_s=600.0, risk_pause_max_s=600.0)
    worker = await _process(tmp_path / "a", bilibili_double, postgres_url, **pause)
    front = await _process(tmp_path / "b", bilibili_double, postgres_url, **pause)
    try:
        bilibili_double.add_generated_user(7401, seed=1, n_history=5)
        link_user(front, bilibili_double, 41001, 7401)
        user = users.get_user(front.db, 41001)
        assert "not limiting" in status_text(front, user, await front.bili.throttle.any_pause_left_s())
        await worker.bili.view(BV)
        bilibili_double.inject(P_VIEW, "412_json")
        with pytest.raises(RiskControl):
            await worker.bili.view(BV)
        calls = bilibili_double.total_calls
        left = await front.bili.throttle.any_pause_left_s()
        assert not front.bili.throttle.paused and left > 500
        assert "bilibili is limiting the bot right now; syncs wait about 10 min" in status_text(front, user, left)
        assert bilibili_double.total_calls == calls, "asking costs bilibili nothing"
    finally:
        for svc in (worker, front):
            await svc.close()
