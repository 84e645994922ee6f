"""QR login and cookie refresh over real HTTP against the bilibili double."""

from __future__ import annotations

import asyncio
import logging

import pytest

from bilibili import BilibiliClient, Credentials, SessionExpired
from bilibili.client import P_CONFIRM_REFRESH, P_COOKIE_REFRESH


async def _login(client, double, mid, *, uname="测试用户", scan=True):
    double.add_user(mid, uname)
    qr = await client.generate_qr()
    assert qr.url.endswith("&from=") and f"qrcode_key={qr.key}" in qr.url and len(qr.key) == 32
    states = []
    async for ev in client.poll_login(qr, interval=0.01):
        states.append(ev)
        if ev.state == "waiting":
            if scan:
                double.scan(qr.key)
            else:
                double.expire(qr.key)
        elif ev.state == "scanned":
            double.confirm(qr.key, mid)
    return qr, states


async def test_qr_flow_states_cookies_and_no_secret_in_logs(bili_client, bilibili_double, caplog):
    caplog.set_level(logging.DEBUG)
    qr, events = await _login(bili_client, bilibili_double, 4242)
    assert [e.state for e in events] == ["waiting", "scanned", "success"]
    ev = events[-1]
    creds, account = ev.credentials, ev.account
    assert account.mid == 4242 and account.uname == "测试用户"
    session = next(s for s in bilibili_double.sessions.values() if s.mid == 4242)
    assert creds.sessdata == session.sessdata and "%2C" in creds.sessdata  # verbatim, never decoded
    assert creds.bili_jct == session.bili_jct and creds.dedeuserid == "4242"
    assert creds.refresh_token == session.refresh_token
    assert creds.extra["DedeUserID__ckMd5"] == session.ckmd5 and creds.buvid3 == bilibili_double.buvid3
    assert await bili_client.nav(creds) == account
    # secrets nowhere: logs, repr
    logged = "\n".join(r.getMessage() for r in caplog.records) + caplog.text
    assert caplog.records, "expected DEBUG records"
    for secret in (creds.sessdata, creds.bili_jct, creds.refresh_token):
        assert secret not in logged
        assert secret not in repr(creds) and secret not in repr(ev)
    # the nav request carried SESSDATA byte-for-byte
    assert bilibili_double.last_request("/x/web-interface/nav").cookies["SESSDATA"] == creds.sessdata


async def test_qr_login_falls_back_to_data_url(bili_client, bilibili_double):
    bilibili_double.set_cookie_on_login = False
    _, events = await _login(bili_client, bilibili_double, 77)
    creds = events[-1].credentials
    assert events[-1].account.mid == 77 and "%2C" in creds.sessdata
    assert bilibili_double.session_alive(creds.sessdata)


async def test_qr_expired(bili_client, bilibili_double):
    qr, events = await _login(bili_client, bilibili_double, 5, scan=False)
    assert [e.state for e in events] == ["waiting", "expired"]
    assert events[-1].credentials is None


async def test_qr_expires_by_ttl(bili_client, bilibili_double):
    bilibili_double.qr_ttl_s = 0.05
    qr = await bili_client.generate_qr()
    states = [e.state async for e in bili_client.poll_login(qr, interval=0.02)]
    assert states == ["waiting", "expired"]


async def test_nav_anonymous_is_none(bili_client):
    assert await bili_client.nav() is None


async def test_refresh_round_trip(bili_client, bilibili_double):
    bilibili_double.add_user(9, "nine")
    old = Credentials.from_dict(bilibili_double.login(9))
    assert await bili_client.refresh_if_needed(old, _fail_persist) == old  # not needed: untouched
    bilibili_double.set_refresh_needed(9)
    persisted: list[Credentials] = []

    async def persist(new):
        assert bilibili_double.calls[P_COOKIE_REFRESH] == 1
        assert bilibili_double.calls[P_CONFIRM_REFRESH] == 0  # persisted before confirm
        assert bilibili_double.session_alive(new.sessdata) and bilibili_double.session_alive(old.sessdata)
        persisted.append(new)

    new = await bili_client.refresh_if_needed(old, persist)
    assert persisted == [new]
    assert new.sessdata != old.sessdata and new.bili_jct != old.bili_jct
    assert new.refresh_token != old.refresh_token and new.dedeuserid == "9" and new.buvid3 == old.buvid3
    assert not bilibili_double.session_alive(old.sessdata)  # confirm killed the old session
    assert await bili_client.nav(new) is not None and await bili_client.nav(old) is None
    assert bilibili_double.users[9].refresh_needed is False


async def _fail_persist(new):
    raise AssertionError("persist must not be called")


async def test_refresh_stale_token_is_session_expired(bili_client, bilibili_double):
    bilibili_double.add_user(10)
    d = bilibili_double.login(10)
    d["refresh_token"] = "0" * 32
    bilibili_double.set_refresh_needed(10)
    with pytest.raises(SessionExpired) as ei:
        await bili_client.refresh_if_needed(Credentials.from_dict(d), _fail_persist)
    assert ei.value.code == 86095 and d["SESSDATA"] not in str(ei.value)


async def test_refresh_dead_session_is_session_expired(bili_client, bilibili_double):
    bilibili_double.add_user(11)
    d = bilibili_double.login(11)
    bilibili_double.sessions[d["SESSDATA"]].alive = False
    with pytest.raises(SessionExpired) as ei:
        await bili_client.refresh_if_needed(Credentials.from_dict(d), _fail_persist)
    assert ei.value.code == -101


async def test_concurrent_refreshes_run_once(bili_client, bilibili_double):
    bilibili_double.add_user(12)
    old = Credentials.from_dict(bilibili_double.login(12))
    bilibili_double.set_refresh_needed(12)
    persisted = []

    async def persist(new):
        await asyncio.sleep(0.02)
        persisted.append(new)

    results = await asyncio.gather(*[bili_client.refresh_if_needed(old, persist) for _ in range(4)])
    assert len(persisted) == 1 and all(r == persisted[0] for r in results)
    assert bilibili_double.refreshes[12] == 1 and bilibili_double.calls[P_COOKIE_REFRESH] == 1


async def test_real_bilibili_key_path_is_rejected_by_double(bilibili_double):
    """A client using bilibili's real public key makes a path the double cannot decrypt: 404,
    so refresh fails typed (MalformedResponse), not with an untyped exception."""
    from bilibili import MalformedResponse

    s = bilibili_double.settings(timeout_s=0.5, retries=0, max_requests_per_second=0)
    bilibili_double.add_user(13)
    creds = Credentials.from_dict(bilibili_double.login(13))
    bilibili_double.set_refresh_needed(13)
    async with BilibiliClient(s) as client:
        with pytest.raises(MalformedResponse):
            await client.refresh_if_needed(creds, _fail_persist)
    assert bilibili_double.calls["/correspond/1"] == 2  # regenerated once after the 404
