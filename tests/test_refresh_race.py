"""A cookie refresh that finishes after the user logged out or linked another account stores nothing."""

from __future__ import annotations

import pytest

from jobs.sync import sync_user
from storage import users
from tests.harness import link_user, make_services

MID, OTHER_MID = 8101, 8102


@pytest.fixture
async def svc(tmp_path, bilibili_double):
    services = make_services(tmp_path, bilibili_double)
    yield services
    await services.close()


def meanwhile(svc, action) -> None:
    """Runs `action` after bilibili issued the new cookies and before the sync stores them."""
    refresh = svc.bili.refresh_if_needed

    async def racing(creds, persist):
        async def late_persist(new):
            action()
            await persist(new)

        return await refresh(creds, late_persist)

    svc.bili.refresh_if_needed = racing


async def test_a_refresh_finishing_after_logout_does_not_link_the_user_again(svc, bilibili_double):
    user_id = link_user(svc, bilibili_double, 1, MID)
    bilibili_double.set_refresh_needed(MID)
    meanwhile(svc, lambda: users.unlink_bilibili(svc.db, user_id))

    await sync_user(svc, user_id)

    assert users.load_credentials(svc.db, svc.vault, user_id) is None, "the /logout stands"


async def test_a_refresh_finishing_after_a_new_login_keeps_the_new_account(svc, bilibili_double):
    user_id = link_user(svc, bilibili_double, 1, MID)
    bilibili_double.set_refresh_needed(MID)
    new_login = bilibili_double.login(OTHER_MID)
    meanwhile(svc, lambda: users.link_bilibili(svc.db, svc.vault, user_id, new_login, OTHER_MID, "b", svc.now()))

    await sync_user(svc, user_id)

    assert users.load_credentials(svc.db, svc.vault, user_id) == new_login
