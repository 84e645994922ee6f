"""docker-compose.yml as local processes (no Docker here): each service's command, with the environment
compose would give it (.env.example filled in as the README says, then the service's `environment`),
one process per replica, each with its own DATA_DIR (its own volume) and its own ports (its own
network). The postgres service is replaced by a throwaway database on the local server, Telegram and
bilibili by the doubles. One user walks from /login to a daily digest; every process passes the
compose healthcheck. A missing variable, a wrong command or a port clash fails it."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from cryptography.fernet import Fernet
from sqlalchemy import text
from sqlalchemy.engine import make_url

from storage.db import Database
from tests.botenv import first_picks_ready, pick_messages, qr_key_after_login
from tests.dbfixtures import postgres_url  # noqa: F401
from tests.distributed import FAST_CRON, stop_worker
from tests.test_deploy import free_port

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parent.parent
_VARIABLE = re.compile(r"\$\{(\w+)(?:(:?[?-])([^}]*))?\}")


def interpolate(value: str, variables: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default}, ${VAR:?error} (and ${VAR-…}, ${VAR?…}) as compose does them."""

    def one(match: re.Match) -> str:
        name, op, arg = match.group(1), match.group(2), match.group(3)
        value = variables.get(name)
        missing = value is None or (value == "" and op is not None and op.startswith(":"))
        if op is not None and op.endswith("?") and missing:
            raise AssertionError(f"compose refuses to start: {name}: {arg}")
        if op is not None and op.endswith("-") and missing:
            return arg
        return value or ""

    return _VARIABLE.sub(one, str(value)).replace("$$", "$")


def env_file(path: Path) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            pairs[name.strip()] = value.strip()
    return pairs


def dockerfile_env() -> dict[str, str]:
    """The image's ENV line (DATA_DIR, METRICS_PORT, …): what every container starts with."""
    found = re.search(r"^ENV (.+)$", (ROOT / "Dockerfile").read_text(), re.M)
    return dict(pair.split("=", 1) for pair in found.group(1).split()) if found else {}


async def test_the_compose_topology_walks_a_user_from_login_to_a_digest(tmp_path, tg, bilibili_double, postgres_url):  # noqa: F811
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    # The operator's .env: .env.example with what it says to fill in.
    dot_env = env_file(ROOT / ".env.example")
    for required in ("BOT_TOKEN", "FERNET_KEYS", "POSTGRES_PASSWORD"):
        assert required in dot_env, f".env.example does not mention {required}"
    dot_env.update(BOT_TOKEN=tg.token, FERNET_KEYS=Fernet.generate_key().decode(), POSTGRES_PASSWORD="pw_Test-42")
    local_db = make_url(postgres_url)

    processes: list[tuple[str, subprocess.Popen, int, Path]] = []
    host_ports: set[str] = set()  # published on the host: one service (and one replica) each
    try:
        for name, service in compose["services"].items():
            if name == "postgres":  # the local server stands in for it
                continue
            environment = {
                key: interpolate(value, dot_env) for key, value in (service.get("environment") or {}).items()
            }
            files = service.get("env_file") or []
            for file in [files] if isinstance(files, str) else files:
                assert file == ".env", f"{name} reads {file}, which the README never asks for"
            for replica in range((service.get("deploy") or {}).get("replicas", 1)):
                env = {**dockerfile_env(), **dot_env, **environment}
                listening = [
                    int(env[key])
                    for key in ("METRICS_PORT", "WEBHOOK_PORT")
                    if env.get(key) and (key != "WEBHOOK_PORT" or env.get("WEBHOOK_URL"))
                ]
                assert len(listening) == len(set(listening)), f"{name}: two servers on one port {listening}"
                for published in service.get("ports", []):
                    host_side = str(published).rsplit(":", 1)[0]
                    assert host_side not in host_ports, f"{name}{replica} publishes {host_side} a second time"
                    host_ports.add(host_side)
                    inside = int(str(published).rsplit(":", 1)[1])
                    assert inside in (int(env["METRICS_PORT"]), int(env.get("WEBHOOK_PORT", 8443))), published
                url = make_url(env["DATABASE_URL"])
                assert url.drivername == "postgresql+psycopg" and url.host == "postgres", env["DATABASE_URL"]
                assert url.password == dot_env["POSTGRES_PASSWORD"]
                metrics_port = free_port()  # its own network namespace in compose: here, its own port
                env.update(
                    DATABASE_URL=url.set(
                        host=local_db.host,
                        port=local_db.port,
                        database=local_db.database,
                        username=local_db.username,
                        password=local_db.password,
                    ).render_as_string(hide_password=False),
                    DATA_DIR=str(tmp_path / f"{name}{replica}"),
                    METRICS_PORT=str(metrics_port),
                    WEBHOOK_PORT=str(free_port()),
                    TELEGRAM_BASE_URL=tg.base_url,
                    TELEGRAM_POLL_TIMEOUT="1",
                    BILIBILI_API_URL=bilibili_double.url,
                    BILIBILI_PASSPORT_URL=bilibili_double.url,
                    BILIBILI_WWW_URL=bilibili_double.url,
                    BILIBILI_IMAGE_URL=bilibili_double.url,
                    BILIBILI_MAX_RPS="0",
                    BILIBILI_QR_POLL_INTERVAL="0.2",
                    SCHEDULER_CRON=FAST_CRON,  # the test's only speed-up: the scheduler every 2 s
                    PATH=os.environ["PATH"],
                    HOME=str(tmp_path),
                    PYTHONPATH=str(ROOT),
                )
                command = [sys.executable if part == "python" else part for part in service["command"]]
                log_path = tmp_path / f"{name}{replica}.log"
                with open(log_path, "wb") as log:
                    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
                processes.append((f"{name}{replica}", proc, metrics_port, log_path))
        assert {label[:-1] for label, *_ in processes} >= {"bot", "worker"}

        healthcheck = compose["x-bilipick"]["healthcheck"]["test"]
        assert healthcheck[:2] == ["CMD", "python"]
        for label, proc, port, log_path in processes:
            check = [sys.executable, *[part.replace("9090", str(port)) for part in healthcheck[2:]]]
            for _ in range(120):
                assert proc.poll() is None, f"{label} exited {proc.returncode}:\n{log_path.read_text()[-3000:]}"
                if subprocess.run(check, capture_output=True).returncode == 0:
                    break
                await asyncio.sleep(0.5)
            else:
                raise AssertionError(f"{label} never passed the healthcheck:\n{log_path.read_text()[-3000:]}")

        # One user: /login, the QR scan, first picks; then a digest at a time that just passed.
        mid = 880_001
        bilibili_double.add_generated_user(mid, seed=8, n_history=40)
        user = tg.user(8801)
        mark = tg.mark()
        key = await qr_key_after_login(tg, bilibili_double, user)
        bilibili_double.scan(key)
        bilibili_double.confirm(key, mid)
        await first_picks_ready(tg, user, since=mark, timeout=180)
        await tg.send_text(user, "/timezone UTC")
        # The first digest is the first slot after the user arrived (now, at the latest): the next
        # full minute, once it has passed.
        arrived = datetime.now(UTC)
        slot_at = arrived.replace(second=0, microsecond=0) + timedelta(minutes=1)
        await asyncio.sleep((slot_at - arrived).total_seconds() + 0.5)
        slot = slot_at.strftime("%H:%M")
        mark = tg.mark()
        await tg.send_text(user, f"/digest {slot}")
        await tg.wait_for(lambda m: slot in m.content, chat=user, since=mark, timeout=30)
        picks_before = len(pick_messages(tg, user))

        db = Database(postgres_url)
        try:

            def digest_sent() -> bool:
                with db.engine.connect() as conn:
                    return bool(conn.execute(text("SELECT count(*) FROM digests WHERE status = 'sent'")).scalar())

            for _ in range(360):
                for label, proc, _port, log_path in processes:
                    assert proc.poll() is None, f"{label} exited:\n{log_path.read_text()[-3000:]}"
                if await asyncio.to_thread(digest_sent):
                    break
                await asyncio.sleep(0.5)
            else:
                logs = "\n".join(f"== {label}\n{path.read_text()[-1500:]}" for label, _p, _port, path in processes)
                raise AssertionError(f"no digest within 180 s\n{logs}")
        finally:
            db.dispose()
        assert len(pick_messages(tg, user)) > picks_before, "the digest's picks reached the user"
        for label, _proc, _port, log_path in processes:
            assert "Traceback" not in log_path.read_text(), f"{label}:\n{log_path.read_text()[-3000:]}"
    finally:
        for _label, proc, _port, _log in processes:
            stop_worker(proc)
