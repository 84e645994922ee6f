"""kill -9 between storing refreshed bilibili cookies and confirming them: after a restart the new
cookies are stored, the login is alive, and the next sync and refresh go through (real subprocess,
real HTTP to the bilibili double)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

from bilibili import Credentials
from jobs.sync import sync_user
from storage import users
from tests.harness import link_user, make_services

ROOT = Path(__file__).parents[1]

_REFRESH_THEN_DIE = """
import asyncio, os, signal, sys
from types import SimpleNamespace

from bilibili import BilibiliClient
from settings import BilibiliSettings
from storage import users
from storage.crypto import CredentialVault
from storage.db import Database
import jobs.sync as sync

url, key, pem_path, user_id = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
real_save = users.replace_credentials

def save_then_die(*args, **kwargs):
    assert real_save(*args, **kwargs)  # the new cookies are committed ...
    os.kill(os.getpid(), signal.SIGKILL)  # ... and the process dies before confirm/refresh

users.replace_credentials = save_then_die

async def main():
    bili = BilibiliClient(BilibiliSettings(), correspond_public_key=open(pem_path, "rb").read())
    services = SimpleNamespace(db=Database(url), vault=CredentialVault([key]), bili=bili)
    await sync.fresh_credentials(services, user_id)

asyncio.run(main())
"""


async def test_a_kill_between_storing_refreshed_cookies_and_confirming_them_loses_no_login(tmp_path, bilibili_double):
    svc = make_services(tmp_path, bilibili_double)
    try:
        mid = 6101
        bilibili_double.add_generated_user(mid, seed=3, n_history=30)
        uid = link_user(svc, bilibili_double, mid, mid)
        old = users.load_credentials(svc.db, svc.vault, uid)
        bilibili_double.set_refresh_needed(mid)
        pem = tmp_path / "correspond.pem"
        pem.write_bytes(bilibili_double.correspond_public_pem)
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "BILIBILI_API_URL": bilibili_double.url,
            "BILIBILI_PASSPORT_URL": bilibili_double.url,
            "BILIBILI_WWW_URL": bilibili_double.url,
            "BILIBILI_MAX_RPS": "0",
        }
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _REFRESH_THEN_DIE,
            svc.db.url,
            svc.settings.storage.fernet_keys.get_secret_value(),
            str(pem),
            str(uid),
            cwd=ROOT,
            env=env,
        )  # the double keeps serving on this loop while the child runs
        assert await asyncio.wait_for(child.wait(), 120) == -signal.SIGKILL
        assert bilibili_double.refreshes[mid] == 1 and bilibili_double.users[mid].refresh_needed, (
            "killed before confirming"
        )

        stored = users.load_credentials(svc.db, svc.vault, uid)
        assert stored["SESSDATA"] != old["SESSDATA"], "the refreshed cookies were kept"
        report = await sync_user(svc, uid)  # the restarted bot's next sync
        assert report.ok, report.error
        assert report.counts.get("watch", 0) > 0
        assert not users.get_user_by_id(svc.db, uid).session_dead
        assert bilibili_double.users[mid].refresh_needed is False, "the next refresh was confirmed"
        assert Credentials.from_dict(users.load_credentials(svc.db, svc.vault, uid)).dedeuserid == str(mid)
    finally:
        await svc.close()


async def test_a_kill_between_linking_and_onboarding_leaves_no_user_stuck(tmp_path, tg, bilibili_double):
    """The login was stored (the QR confirmed) and the process died before the first sync began: after
    the restart the tick syncs and trains the user, and /recommend serves personal picks."""
    from storage import picks
    from tests.botenv import eventually, pick_messages, running_bot

    mid, chat = 6201, 6201
    bilibili_double.add_generated_user(mid, seed=8, n_history=40)
    svc = make_services(tmp_path, bilibili_double)
    hold_s = int(svc.settings.jobs.onboarding_hold_s)
    user = users.ensure_user(svc.db, chat, chat, "en", now=svc.now())
    uid = user.id  # what the login stores before onboarding starts (the scheduled syncs held off):
    users.link_bilibili(
        svc.db, svc.vault, uid, bilibili_double.login(mid), mid, "u", svc.now(), first_sync_at=svc.now() + hold_s
    )
    keys = svc.settings.storage.fernet_keys.get_secret_value()
    await svc.close()

    async with running_bot(tmp_path, tg, bilibili_double, fernet_keys=keys, tick_seconds=0.5) as (_, restarted):
        restarted.clock = lambda: time.time() + hold_s + 1  # the hold has passed since the crash
        await eventually(lambda: picks.any_model_version(restarted.db), 90, "the tick to sync and train the user")
        alice = tg.user(chat, language_code="en")
        mark = tg.mark()
        await tg.send_text(alice, "/recommend")
        await eventually(lambda: len(pick_messages(tg, alice)) >= 5, 30, "the picks")
        replies = [m.content for m in tg.sent_to(alice) if m.message_id > mark]
        assert not any("popular picks" in r for r in replies), "personal picks, not the cold-start fallback"
        assert users.get_user_by_id(restarted.db, uid).next_sync_at > restarted.now(), "the first sync is done"
