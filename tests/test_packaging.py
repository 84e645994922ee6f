"""What a stranger meets installing and starting BiliPick (issue 20): no token, a wrong token, no
network, the lock CI passed with, the console commands and the alembic command line."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
import sys
import tomllib
from importlib import import_module
from pathlib import Path

from tests.test_deploy import _run_until_exit

ROOT = Path(__file__).resolve().parent.parent


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"BOT_TOKEN", "DATABASE_URL", "FERNET_KEYS"}}
    return {**env, "DATA_DIR": str(tmp_path / "data"), "PYTHONPATH": str(ROOT), **extra}


def test_make_run_without_a_token_says_how_to_get_one_before_installing_anything(tmp_path):
    venv = tmp_path / "venv"
    done = subprocess.run(
        ["make", "-s", "-f", str(ROOT / "Makefile"), "run", f"VENV={venv}"],
        cwd=tmp_path,
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "@BotFather" in done.stdout and "/newbot" in done.stdout and "make demo" in done.stdout
    assert not venv.exists(), "nothing is installed before the token is checked"


async def test_a_wrong_token_ends_in_one_clear_line_not_a_traceback(tmp_path, tg):
    env = _env(tmp_path, BOT_TOKEN="999:WRONG", TELEGRAM_BASE_URL=tg.base_url)
    code, out = await _run_until_exit(["bot.py"], env)
    assert code not in (0, None)
    assert "Telegram refused BOT_TOKEN" in out
    assert "Traceback" not in out and "999:WRONG" not in out


async def test_no_network_ends_in_one_clear_line_not_a_traceback(tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = _env(
        tmp_path, BOT_TOKEN="123:ABC", TELEGRAM_BASE_URL=f"http://127.0.0.1:{port}/bot", TELEGRAM_READ_TIMEOUT="2"
    )
    code, out = await _run_until_exit(["bot.py"], env)
    assert code not in (0, None)
    assert f"Cannot reach Telegram at 127.0.0.1:{port}" in out
    assert "Traceback" not in out


async def test_the_first_start_says_where_the_database_key_and_models_live(tmp_path, tg):
    env = _env(tmp_path, BOT_TOKEN=tg.token, TELEGRAM_BASE_URL=tg.base_url, TELEGRAM_POLL_TIMEOUT="1")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "bot.py", cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out = ""
    try:  # the bot runs until stopped: read until the last of the three lines
        while "models: " not in out and (line := await asyncio.wait_for(proc.stdout.readline(), 60)):
            out += line.decode(errors="replace")
    finally:
        proc.kill()
        await proc.wait()
    data = (tmp_path / "data").resolve()
    assert f"database: sqlite:///{data / 'bilipick.db'}" in out
    assert f"encryption key: {data / 'secret.key'}" in out
    assert f"models: {data / 'models'}" in out


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_console_commands_start_the_bot_and_the_worker():
    scripts = _pyproject()["project"]["scripts"]
    for name in ("bilipick", "bilipick-worker"):
        module, _, function = scripts[name].partition(":")
        assert callable(getattr(import_module(module), function))


def _name(requirement: str) -> str:
    return re.split(r"[\[<>=!~; ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def test_the_lock_pins_every_declared_dependency_and_cpu_torch():
    project = _pyproject()["project"]
    declared = {_name(r) for r in project["dependencies"]}
    for extra in project["optional-dependencies"].values():
        declared |= {_name(r) for r in extra if not r.startswith("bilipick")}
    pins = dict(line.split("==", 1) for line in (ROOT / "requirements.lock").read_text().split() if "==" in line)
    pins = {name.lower().replace("_", "-"): version for name, version in pins.items()}
    assert declared - pins.keys() == set(), "`make lock` after adding a dependency"
    assert pins["torch"].endswith("+cpu")


def test_the_alembic_command_line_works_on_the_bots_database(tmp_path):
    """`alembic check` is what `alembic revision --autogenerate` compares: the models match head."""
    env = _env(tmp_path)
    (tmp_path / "data").mkdir()
    for command in (["upgrade", "head"], ["check"]):
        done = subprocess.run(
            [sys.executable, "-m", "alembic", "-c", str(ROOT / "alembic.ini"), *command],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
    assert "No new upgrade operations detected" in done.stdout + done.stderr
