"""Secrets stay out of the logs: the bot token (httpx and python-telegram-bot log request URLs that
contain it) and the bilibili cookies, with every logger at DEBUG through a whole login."""

from __future__ import annotations

import logging

import pytest

from redaction import install_redaction
from storage import users
from tests.botenv import TOKEN, running_bot

MID = 4242


@pytest.fixture
def restore_record_factory():
    original = logging.getLogRecordFactory()
    yield
    logging.setLogRecordFactory(original)


async def log_a_login(tmp_path, tg, bili, caplog) -> dict[str, str]:
    """Runs /start and a full QR login with every logger at DEBUG; returns the user's cookies."""
    bili.add_generated_user(MID, seed=2, n_history=20, uname="secretive")
    caplog.set_level(logging.DEBUG)
    async with running_bot(tmp_path, tg, bili, tick_seconds=3600) as (app, svc):
        alice = tg.user(4001, language_code="en")
        await tg.send_text(alice, "/login")
        await tg.wait_for(lambda m: m.is_photo, chat=alice)
        key = bili.pending_qr().key
        bili.scan(key)
        bili.confirm(key, MID)
        await tg.wait_for(lambda m: "Linked as secretive" in m.content, chat=alice)
        await tg.wait_for(lambda m: "first personal picks are ready" in m.content, chat=alice, timeout=60)
        user = users.get_user(svc.db, 4001)
        return svc.vault.decrypt(user.credentials)


async def test_without_redaction_the_token_would_leak(tmp_path, tg, bilibili_double, caplog):
    """The control: httpx does log the token in request URLs, so the next test can fail."""
    await log_a_login(tmp_path, tg, bilibili_double, caplog)
    assert TOKEN in caplog.text


async def test_no_secret_reaches_any_log_line(tmp_path, tg, bilibili_double, caplog, restore_record_factory):
    install_redaction(TOKEN)
    cookies = await log_a_login(tmp_path, tg, bilibili_double, caplog)
    assert "httpx" in {r.name for r in caplog.records}, "request lines were logged (and redacted)"
    assert "<redacted>" in caplog.text
    secrets = [TOKEN, cookies["SESSDATA"], cookies["bili_jct"], cookies["refresh_token"]]
    for record in caplog.records:
        line = record.getMessage() + (record.exc_text or "")
        for secret in secrets:
            assert secret not in line, f"a secret leaked through logger {record.name}"
    assert all(s not in caplog.text for s in secrets)


def test_bad_log_arguments_never_raise_and_stay_redacted(restore_record_factory, caplog):
    install_redaction(TOKEN)
    log = logging.getLogger("bilipick.test")
    with caplog.at_level(logging.INFO, logger="bilipick.test"):
        log.info("%s %s", "one argument")  # one argument short
        log.info("%d picks", "not a number")
        log.info("token %s and %s", TOKEN)  # a bad call that carries a secret
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 3 and "one argument" in lines[0] and "not a number" in lines[1]
    assert TOKEN not in caplog.text and "<redacted>" in lines[2]
