"""Every injected fault ends in a typed error or a successful retry; risk control pauses all traffic."""

from __future__ import annotations

import asyncio
import time

import pytest

from bilibili import (
    BilibiliClient,
    BilibiliError,
    Credentials,
    EmptyData,
    MalformedResponse,
    NotLoggedIn,
    RiskControl,
    TransportError,
)
from bilibili.client import P_NAV, P_POPULAR, P_VIEW

BV = "BV1FYjBzAE8h"


async def test_transient_faults_retry_then_succeed(bili_client, bilibili_double):
    for fault in ("500", "malformed", "slow"):
        bilibili_double.reset_calls()
        bilibili_double.inject(P_VIEW, fault, times=1)
        v = await bili_client.view(BV)
        assert v.bvid == BV
        assert bilibili_double.calls[P_VIEW] == 2, fault


@pytest.mark.parametrize(
    "fault,error", [("500", TransportError), ("malformed", MalformedResponse), ("slow", TransportError)]
)
async def test_transient_faults_exhaust_retries(bili_client, bilibili_double, fault, error):
    bilibili_double.inject(P_VIEW, fault, times=3)  # retries=2 -> 3 attempts
    with pytest.raises(error):
        await bili_client.view(BV)
    assert bilibili_double.calls[P_VIEW] == 3


async def test_connection_refused_is_transport_error(bilibili_double):
    s = bilibili_double.settings(
        api_url="http://127.0.0.1:9", timeout_s=0.5, retries=1, backoff_base_s=0.01, max_requests_per_second=0
    )
    async with BilibiliClient(s) as c:
        with pytest.raises(TransportError):
            await c.view(BV)
        assert c.calls >= 2  # spi attempts + view attempts


@pytest.mark.parametrize("fault", ["412_html", "412_json", "-799", "-509"])
async def test_risk_faults_raise_riskcontrol_and_pause(bili_client, bilibili_double, fault):
    await bili_client.view(BV)  # warm up spi
    bilibili_double.inject(P_VIEW, fault)
    with pytest.raises(RiskControl) as ei:
        await bili_client.view(BV)
    assert ei.value.code == (-412 if fault.startswith("412") else int(fault))
    assert bili_client.throttle.paused and bili_client.throttle.pauses == 1
    assert bilibili_double.calls[P_VIEW] == 2  # no retry under risk control


async def test_412_pauses_all_traffic(bili_client, bilibili_double):
    await bili_client.popular()
    bilibili_double.reset_calls()
    bilibili_double.inject(P_POPULAR, "412_html")
    with pytest.raises(RiskControl):
        await bili_client.popular()
    # another request (different endpoint) must wait for the pause, not hit the server
    other = asyncio.create_task(bili_client.view(BV))
    await asyncio.sleep(0.05)  # pause is 0.3 s
    assert not other.done() and bilibili_double.calls[P_VIEW] == 0
    assert (await other).bvid == BV
    assert bilibili_double.calls[P_VIEW] == 1


async def test_risk_pause_backs_off_exponentially(bili_client, bilibili_double):
    t = bili_client.throttle
    t.pause_base_s, t.pause_max_s = 0.01, 0.03
    lengths = [t.risk() for _ in range(4)]
    assert lengths == [0.01, 0.02, 0.03, 0.03]
    t.ok()
    assert t.risk() == 0.01


async def test_wbi_352_refetches_keys_once_and_retries(bili_client, bilibili_double):
    await bili_client.popular()
    navs = bilibili_double.calls[P_NAV]
    bilibili_double.inject(P_POPULAR, "-352")
    items, _ = await bili_client.popular()
    assert items and bilibili_double.calls[P_NAV] == navs + 1
    assert not bili_client.throttle.paused


async def test_wbi_persistent_352_is_riskcontrol(bili_client, bilibili_double):
    bilibili_double.inject(P_POPULAR, "-352", times=2)
    with pytest.raises(RiskControl) as ei:
        await bili_client.popular()
    assert ei.value.code == -352 and bili_client.throttle.paused


async def test_rotated_wbi_keys_are_picked_up(bili_client, bilibili_double):
    await bili_client.ranking()
    bilibili_double.rotate_wbi_keys()
    assert len(await bili_client.ranking()) == 100  # -352 from the double -> new keys -> ok


async def test_unsigned_request_is_rejected_by_double(bili_client, bilibili_double):
    async with bili_client.session.get(bilibili_double.url + P_POPULAR) as r:
        body = await r.json()
    assert body["code"] == -352 and body["data"]["v_voucher"].startswith("voucher_")


async def test_minus_101_and_null_data(bili_client, bilibili_double):
    bilibili_double.add_user(1)
    creds = Credentials.from_dict(bilibili_double.login(1))
    bilibili_double.inject("/x/web-interface/history/cursor", "-101")
    with pytest.raises(NotLoggedIn) as ei:
        await bili_client.history_page(creds)
    assert ei.value.code == -101 and creds.sessdata not in str(ei.value)
    bilibili_double.inject(P_VIEW, "null_data")
    with pytest.raises(EmptyData):
        await bili_client.view(BV)
    bilibili_double.inject("/x/v3/fav/folder/created/list-all", "null_data")
    assert await bili_client.fav_folders(creds, 1) == []
    bilibili_double.inject("/x/space/coin/video", "null_data")
    assert await bili_client.coined_videos(creds, 1) == []


async def test_fault_on_every_path_is_typed(bili_client, bilibili_double):
    """A fault injected for all paths on each public call: never an untyped exception."""
    bilibili_double.add_user(2)
    creds = Credentials.from_dict(bilibili_double.login(2))
    calls = [
        lambda: bili_client.popular(),
        lambda: bili_client.view(BV),
        lambda: bili_client.tags(BV),
        lambda: bili_client.related(BV),
        lambda: bili_client.history_page(creds),
        lambda: bili_client.fav_items(creds, 1),
        lambda: bili_client.liked_videos(creds, 2),
        lambda: bili_client.weekly_numbers(),
        lambda: bili_client.generate_qr(),
    ]
    for fault in ("412_html", "malformed", "null_data", "-101", "500", "-404"):
        for call in calls:
            bili_client.throttle.paused_until = 0
            bilibili_double.clear_faults()
            bilibili_double.inject(None, fault, times=5)
            try:
                await call()
            except BilibiliError:
                pass


async def test_rate_limiter_spaces_requests(bilibili_double):
    s = bilibili_double.settings(max_requests_per_second=40, timeout_s=1, retries=0)
    async with BilibiliClient(s) as c:
        start = time.monotonic()
        await asyncio.gather(*[c.view(BV) for _ in range(10)])
        elapsed = time.monotonic() - start
    assert c.calls == 11  # spi + 10 views
    assert c.throttle.rate_waits >= 9
    assert elapsed >= 10 / 40 * 0.9  # 11 slots at 25 ms: sleeping never ends early


async def test_fail_fast_calls_refuse_the_pause_and_background_calls_wait(bili_client, bilibili_double):
    from bilibili import RiskPaused

    cover = (await bili_client.view(BV)).cover
    bilibili_double.inject(P_VIEW, "412_html")
    with pytest.raises(RiskControl) as first:
        await bili_client.view(BV)
    assert 0 < first.value.retry_in_s <= 0.3  # the 412 itself says how long the pause runs
    sent = bilibili_double.total_calls
    user_calls = [
        lambda: bili_client.fetch_cover(cover, fail_fast=True),
        lambda: bili_client.generate_qr(fail_fast=True),
    ]
    for call in user_calls:
        with pytest.raises(RiskPaused) as ei:
            await call()
        assert 0 < ei.value.retry_in_s <= 0.3
    assert bilibili_double.total_calls == sent  # refused before anything went out
    assert (await bili_client.view(BV)).bvid == BV  # background work waits the pause out
    assert await bili_client.fetch_cover(cover, fail_fast=True)  # and after it, fail-fast calls go through
