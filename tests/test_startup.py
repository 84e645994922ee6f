"""Start-up refuses unsafe configurations with a clear reason, and keeps stored logins readable."""

from __future__ import annotations

import asyncio
from unittest.mock import patch

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr

from bot import build_application
from settings import Settings
from storage import users
from storage.crypto import CredentialVault
from tests.botenv import TOKEN, running_bot
from tests.harness import link_user, make_services


def test_webhook_mode_without_a_secret_refuses_to_start(tmp_path):
    env = {
        "BOT_TOKEN": TOKEN,
        "WEBHOOK_URL": "https://bot.example/hook",
        "DATA_DIR": str(tmp_path),
        "FERNET_KEYS": Fernet.generate_key().decode(),
    }
    with patch.dict("os.environ", env, clear=False), pytest.raises(SystemExit) as refused:
        build_application(Settings())
    assert "WEBHOOK_SECRET" in str(refused.value)
    assert TOKEN not in str(refused.value)


def test_webhook_mode_with_a_secret_starts(tmp_path):
    env = {
        "BOT_TOKEN": TOKEN,
        "WEBHOOK_URL": "https://bot.example/hook",
        "WEBHOOK_SECRET": "s3cret_-token",
        "DATA_DIR": str(tmp_path),
        "FERNET_KEYS": Fernet.generate_key().decode(),
    }
    with patch.dict("os.environ", env, clear=False):
        app = build_application(Settings())
    assert app.bot.token == TOKEN


async def test_start_reencrypts_stored_logins_under_the_newest_key(tmp_path, bilibili_double):
    svc = make_services(tmp_path, bilibili_double)
    old_key = svc.settings.storage.fernet_keys.get_secret_value()
    bilibili_double.add_generated_user(5101, seed=1, n_history=5)
    uid = link_user(svc, bilibili_double, 5101, 5101)
    before = users.load_credentials(svc.db, svc.vault, uid)
    new_key = Fernet.generate_key().decode()
    svc.vault = CredentialVault([new_key, old_key])  # the operator put a new key first
    svc.settings.telegram.bot_token = SecretStr(TOKEN)
    try:
        build_application(svc.settings, svc)
        # The old key can now be dropped: every login opens under the new key alone.
        assert users.load_credentials(svc.db, CredentialVault([new_key]), uid) == before
    finally:
        await svc.close()


async def test_a_wrong_key_set_refuses_to_start_and_tells_nobody(tmp_path, tg, bilibili_double):
    svc = make_services(tmp_path, bilibili_double)
    good_key = svc.settings.storage.fernet_keys.get_secret_value()
    linked = []
    for mid in (5201, 5202):
        bilibili_double.add_generated_user(mid, seed=mid, n_history=5)
        linked.append(link_user(svc, bilibili_double, mid, mid))
    secrets = users.load_credentials(svc.db, svc.vault, linked[0])
    await svc.close()

    wrong_key = Fernet.generate_key().decode()
    built: list = []
    try:
        with patch("tests.botenv.make_services", _with_keys(wrong_key, built)), pytest.raises(SystemExit) as refused:
            async with running_bot(tmp_path, tg, bilibili_double, tick_seconds=0.1):
                await asyncio.sleep(1.0)  # before the fix: the ticks sync, fail to decrypt, and message everyone
    finally:
        for services in built:
            await services.close()
    message = str(refused.value)
    assert "FERNET_KEYS" in message
    for secret in (good_key, wrong_key, *secrets.values()):
        assert secret not in message
    for mid in (5201, 5202):
        assert tg.sent_to(mid) == [], "nobody is told their login is dead"
    # Nothing lost: with the right key back, the logins open as before.
    again = make_services(tmp_path, bilibili_double)
    try:
        assert users.load_credentials(again.db, CredentialVault([good_key]), linked[0]) == secrets
        assert not any(users.get_user_by_id(again.db, uid).session_dead for uid in linked)
    finally:
        await again.close()


def _with_keys(key: str, built: list):
    def make(data_dir, double, **jobs):
        svc = make_services(data_dir, double, **jobs)
        svc.vault = CredentialVault([key])
        built.append(svc)
        return svc

    return make


async def test_start_removes_model_files_of_users_who_are_gone(tmp_path, bilibili_double):
    """Before ids were never reused, a model saved after a /forget waited under the leaver's id for
    the next newcomer: start-up removes model directories whose user is gone."""
    from recommender import UserData, train_users
    from recommender.data import synthetic

    svc = make_services(tmp_path, bilibili_double)
    try:
        s = synthetic(n_users=1, samples=60, seed=4)
        model = train_users({"u0": UserData(s.events["u0"], s.pools["u0"])}, s.videos, None, s.now)["u0"]
        stayer = users.ensure_user(svc.db, 1, 1, "en", now=1).id
        svc.models.save(str(stayer), model)
        svc.models.save(str(stayer + 1), model)  # the leaver's, saved after their /forget
        svc.settings.telegram.bot_token = SecretStr(TOKEN)
        build_application(svc.settings, svc)
        newcomer = users.ensure_user(svc.db, 2, 2, "en", now=2).id
        assert svc.models.load(str(newcomer)) is None, "the newcomer starts with no one's model"
        assert svc.models.load(str(stayer)) is not None
    finally:
        await svc.close()


async def test_a_lost_key_file_refuses_to_start(tmp_path):
    """Without FERNET_KEYS the key lives in DATA_DIR/secret.key; losing it must not mark every login
    dead (a new key would be generated and open nothing)."""
    from services import build_services

    env = {"BOT_TOKEN": TOKEN, "DATA_DIR": str(tmp_path), "FERNET_KEYS": ""}
    with patch.dict("os.environ", env, clear=False):
        svc = build_services(Settings())
        uid = users.ensure_user(svc.db, 1, 1, "en", now=1).id
        users.link_bilibili(svc.db, svc.vault, uid, {"SESSDATA": "abc"}, 7, "u7", now=1)
        await svc.close()
        (tmp_path / "secret.key").unlink()
        with pytest.raises(SystemExit) as refused:
            build_application(Settings())
    assert "FERNET_KEYS" in str(refused.value) and "secret.key" in str(refused.value)
