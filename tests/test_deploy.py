"""What an operator meets when deploying (issue 16): the keys every process must share, webhook mode
behind a proxy, what is published where, and the files that must never be committed."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
import yaml
from cryptography.fernet import Fernet

from jobs import worker
from jobs.metrics import MetricsServer
from settings import DistributedSettings, Settings
from storage import users
from tests.botenv import eventually
from tests.dbfixtures import postgres_url  # noqa: F401
from tests.distributed import distributed_services, seed_day, worker_env
from tests.harness import make_services

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _run_until_exit(argv: list[str], env: dict[str, str], timeout: float = 60) -> tuple[int | None, str]:
    """(exit code, stderr+stdout); exit code None when the process was still running at the timeout."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, *argv, cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
        return proc.returncode, out.decode(errors="replace")
    except TimeoutError:
        proc.kill()
        out, _ = await proc.communicate()
        return None, out.decode(errors="replace")


# ---------------------------------------------------------------- FERNET_KEYS across processes


@pytest.mark.postgres
@pytest.mark.parametrize("process", [["bot.py"], ["-m", "jobs.worker", "--queues", "sync"]], ids=["front", "worker"])
async def test_distributed_mode_without_fernet_keys_refuses_to_start_naming_it(
    tmp_path,
    tg,
    postgres_url,  # noqa: F811
    process,
):
    env = {
        **os.environ,
        "WORK_MODE": "distributed",
        "DATABASE_URL": postgres_url,
        "DATA_DIR": str(tmp_path),
        "BOT_TOKEN": tg.token,
        "TELEGRAM_BASE_URL": tg.base_url,
        "TELEGRAM_POLL_TIMEOUT": "1",
        "FERNET_KEYS": "",
        "PYTHONPATH": str(ROOT),
    }
    code, output = await _run_until_exit(process, env, timeout=45)
    assert code is not None, f"{process} started without FERNET_KEYS (each process would make its own key)"
    assert code != 0
    refusal = [line for line in output.splitlines() if "FERNET_KEYS" in line]
    assert len(refusal) == 1, output[-2000:]
    assert "Traceback" not in output


@pytest.mark.postgres
async def test_a_worker_with_the_wrong_keys_refuses_to_start_and_tells_nobody(
    tmp_path, bilibili_double, tg, postgres_url
):  # noqa: F811
    svc = distributed_services(tmp_path, bilibili_double, postgres_url)
    user_ids = seed_day(svc, bilibili_double, tg, 2)  # due for a sync right now
    env = worker_env(svc, bilibili_double, tg, postgres_url, FERNET_KEYS=Fernet.generate_key().decode())
    env["DATA_DIR"] = str(tmp_path / "worker")  # its own volume, as a container has
    try:
        code, output = await _run_until_exit(["-m", "jobs.worker", "--queues", "sync"], env, timeout=45)
        assert code is not None and code != 0, "a worker whose keys open no stored login must not start"
        assert "FERNET_KEYS" in output
        assert env["FERNET_KEYS"] not in output
        for tid in (1, 2):
            assert tg.sent_to(tid) == [], "nobody is told their login is dead"
        assert not any(users.get_user_by_id(svc.db, uid).session_dead for uid in user_ids)
    finally:
        await svc.close()


def test_an_empty_variable_in_the_env_file_means_unset(tmp_path, monkeypatch):
    """`.env.example` leaves FERNET_KEYS= and others empty: that is "not set", not a value."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("FERNET_KEYS=\nMETRICS_PORT=\nWEBHOOK_URL=\nWEBHOOK_PORT=\nDATABASE_URL=\n")
    for name in ("FERNET_KEYS", "METRICS_PORT", "WEBHOOK_URL", "WEBHOOK_PORT", "DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings()
    assert settings.storage.fernet_keys is None
    assert settings.work.metrics_port is None
    assert settings.telegram.webhook_url is None and settings.telegram.webhook_port == 8443


# ---------------------------------------------------------------- webhook mode


async def test_webhook_mode_answers_an_update_posted_to_the_path_of_webhook_url(tmp_path, tg):
    port = free_port()
    url = "https://bot.example.org/tg/hook-7"
    env = {
        **os.environ,
        "BOT_TOKEN": tg.token,
        "TELEGRAM_BASE_URL": tg.base_url,
        "DATA_DIR": str(tmp_path),
        "FERNET_KEYS": Fernet.generate_key().decode(),
        "WEBHOOK_URL": url,
        "WEBHOOK_SECRET": "s3cret_-token",
        "WEBHOOK_LISTEN": "127.0.0.1",
        "WEBHOOK_PORT": str(port),
    }
    log = open(tmp_path / "bot.log", "wb")
    bot = subprocess.Popen([sys.executable, "bot.py"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        await eventually(lambda: tg.webhook is not None or bot.poll() is not None, 60, "the bot to set its webhook")
        assert bot.poll() is None, (tmp_path / "bot.log").read_text()[-2000:]
        assert tg.webhook["url"] == url
        user = tg.user(7301)
        mark = tg.mark()
        message = await tg.send_text(user, "/help")  # what Telegram would post: the update with this message
        update = {"update_id": 900_001, "message": message}
        async with aiohttp.ClientSession() as http:
            for _ in range(100):  # the server may still be binding right after setWebhook
                try:
                    async with http.post(
                        f"http://127.0.0.1:{port}/tg/hook-7",
                        json=update,
                        headers={"X-Telegram-Bot-Api-Secret-Token": "s3cret_-token"},
                    ) as answer:
                        status = answer.status
                    break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.2)
        assert status == 200, f"Telegram's post to the webhook path got {status}"
        await tg.wait_for(lambda m: "/recommend" in m.content, chat=user, since=mark, timeout=30)
    finally:
        bot.terminate()
        try:
            bot.wait(30)
        except subprocess.TimeoutExpired:
            bot.kill()
            bot.wait()
        log.close()


# ---------------------------------------------------------------- what listens where, what is committed


def test_metrics_listen_on_loopback_unless_told_otherwise():
    assert DistributedSettings().metrics_listen == "127.0.0.1"


async def test_a_taken_metrics_port_is_one_logged_error_not_a_dead_process(tmp_path, bilibili_double, caplog):
    svc = make_services(tmp_path, bilibili_double)
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    server = MetricsServer(svc, taken.getsockname()[1], "127.0.0.1")
    try:
        with caplog.at_level(logging.ERROR):
            await server.start()  # before: OSError, and the process died with it
        errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        assert len(errors) == 1 and "METRICS_PORT" in errors[0]
        await server.stop()
    finally:
        taken.close()
        await svc.close()


@pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists(), reason="not a git checkout")
def test_the_env_file_with_the_token_and_keys_is_never_committed():
    ignored = subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=ROOT)
    assert ignored.returncode == 0, ".env (BOT_TOKEN, FERNET_KEYS, POSTGRES_PASSWORD) is not git-ignored"


def _compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _env_example() -> dict[str, str]:
    pairs = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            pairs[name.strip()] = value.strip()
    return pairs


def test_compose_ships_no_default_secrets_and_requires_them():
    example = _env_example()
    for name in ("BOT_TOKEN", "FERNET_KEYS", "POSTGRES_PASSWORD"):
        assert example.get(name, "") == "", f".env.example ships a value for {name}"
    text = (ROOT / "docker-compose.yml").read_text()
    assert "${POSTGRES_PASSWORD:?" in text and "${FERNET_KEYS:?" in text and "${BOT_TOKEN:?" in text
    assert "change-me" not in text and "change-me" not in (ROOT / ".env.example").read_text()


def test_compose_publishes_metrics_on_loopback_only():
    services = _compose()["services"]
    for name, service in services.items():
        for port in service.get("ports", []):
            if str(port).endswith(":9090"):
                assert str(port).startswith("127.0.0.1:"), f"{name} publishes /metrics on every interface: {port}"


def test_compose_lets_a_worker_finish_its_jobs_before_it_is_killed():
    services = _compose()["services"]
    grace = services["worker"].get("stop_grace_period") or _compose()["x-bilipick"].get("stop_grace_period")
    assert grace is not None, "Docker kills a worker after 10 s by default, mid-job"
    assert grace.endswith("s") and int(grace[:-1]) > worker.SHUTDOWN_GRACE_S
