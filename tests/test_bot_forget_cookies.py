"""After /logout or /forget the bilibili client holds none of the user's refreshed cookies (issue 11, low):
the old session no longer buys the new cookies from the client's memory."""

from __future__ import annotations

import asyncio

import pytest

from bilibili import Credentials, SessionExpired
from storage import users
from tests.botenv import forget_in_chat, running_bot

MID = 4242


@pytest.fixture
async def world(tmp_path, tg, bilibili_double):
    async with running_bot(tmp_path, tg, bilibili_double, tick_seconds=3600) as (app, svc):
        yield tg, bilibili_double, svc


async def linked_and_refreshed(svc, bili, telegram_id: int) -> Credentials:
    """A linked user whose cookies the client has just refreshed; returns the old (now dead) ones."""
    cookies = bili.login(MID)
    user = users.ensure_user(svc.db, telegram_id, telegram_id, "en", now=svc.now())
    users.link_bilibili(svc.db, svc.vault, user.id, cookies, MID, "u", svc.now())
    old = Credentials.from_dict(cookies)
    bili.set_refresh_needed(MID)

    async def persist(new: Credentials) -> None:
        users.link_bilibili(svc.db, svc.vault, user.id, new.to_dict(), MID, "u", svc.now())

    new = await svc.bili.refresh_if_needed(old, persist)
    assert new.sessdata != old.sessdata and not bili.session_alive(old.sessdata)
    assert await svc.bili.refresh_if_needed(old, persist) == new  # the client remembers the new pair
    return old


async def no_cookies_in_memory(client, old: Credentials) -> None:
    async def persist(new: Credentials) -> None:
        raise AssertionError("nothing may be refreshed for a user who left")

    with pytest.raises(SessionExpired):  # asked bilibili, which knows the old session is dead
        await client.refresh_if_needed(old, persist)


async def test_logout_drops_the_refreshed_cookies(world):
    tg, bili, svc = world
    old = await linked_and_refreshed(svc, bili, 6001)
    alice = tg.user(6001, language_code="en")
    mark = tg.mark()
    await tg.send_text(alice, "/logout")
    await tg.wait_for(lambda m: "login is forgotten" in m.content, chat=alice, since=mark)
    await no_cookies_in_memory(svc.bili, old)


async def test_forget_drops_the_refreshed_cookies(world):
    tg, bili, svc = world
    old = await linked_and_refreshed(svc, bili, 6002)
    await forget_in_chat(tg, tg.user(6002, language_code="en"))
    await no_cookies_in_memory(svc.bili, old)


async def test_logout_while_a_refresh_stores_the_new_cookies_keeps_nothing(bili_client, bilibili_double):
    """The refresh that was running when the user left does not put their new cookies in memory."""
    old = Credentials.from_dict(bilibili_double.login(MID))
    bilibili_double.set_refresh_needed(MID)
    storing, release = asyncio.Event(), asyncio.Event()

    async def slow_persist(new: Credentials) -> None:
        storing.set()
        await release.wait()

    refresh = asyncio.create_task(bili_client.refresh_if_needed(old, slow_persist))
    await storing.wait()
    bili_client.forget_account(MID)  # /logout lands while the new pair is being stored
    release.set()
    await refresh
    await no_cookies_in_memory(bili_client, old)
