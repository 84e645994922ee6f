"""During bilibili's risk pause (-412 / -352: up to 30 minutes) no worker slot sleeps it out (issue 16
§9): a sync job that meets the pause plans the user's sync for when it ends and gives its slot back,
so a digest deferred meanwhile is sent. A real worker subprocess, the doubles, a fresh PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from storage import users
from tests.botenv import pick_bvid, pick_messages
from tests.dbfixtures import postgres_url  # noqa: F401
from tests.distributed import distributed_services, prime_candidates, seed_day, start_worker, stop_worker, worker_env

pytestmark = pytest.mark.postgres

SLOTS = 3  # the worker's concurrency
PAUSE_S = 600  # longer than this test may take: a job that waits it out never finishes here
WAIT_S = 120.0  # worker start-up and a few scheduler runs on a busy machine


def _jobs(svc, task: str) -> list[str]:
    with svc.db.engine.connect() as conn:
        return list(
            conn.execute(
                text("SELECT status::text FROM procrastinate_jobs WHERE task_name = :t"), {"t": task}
            ).scalars()
        )


async def _until(what: str, check, log_path) -> None:
    deadline = time.monotonic() + WAIT_S
    while not await asyncio.to_thread(check):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {WAIT_S:.0f}s\n{log_path.read_text()[-3000:]}")
        await asyncio.sleep(0.5)


def _hhmm(delta: timedelta) -> str:
    return (datetime.now(UTC) + delta).strftime("%H:%M")


async def test_sync_jobs_give_their_slots_back_during_a_risk_pause_and_a_digest_still_goes_out(
    tmp_path,
    bilibili_double,
    tg,
    postgres_url,  # noqa: F811
):
    svc = distributed_services(tmp_path, bilibili_double, postgres_url)
    trigger, *user_ids = seed_day(svc, bilibili_double, tg, 1 + SLOTS)
    await prime_candidates(svc)
    for uid in user_ids:  # not due yet; and no digest comes due before the test says so
        users.update_user(svc.db, uid, next_sync_at=svc.now() + 86_400, digest_time=_hhmm(timedelta(hours=12)))
    users.update_user(svc.db, trigger, digest_time=_hhmm(timedelta(hours=12)))
    bilibili_double.risk_mode = True  # every request from this IP: 412
    started = svc.now()
    env = worker_env(
        svc,
        bilibili_double,
        tg,
        postgres_url,
        BILIBILI_RISK_PAUSE_BASE=str(PAUSE_S),
        BILIBILI_RISK_PAUSE_MAX=str(PAUSE_S),
    )
    log_path = tmp_path / "worker.log"
    worker = start_worker(env, log_path, queues="sync,digest", concurrency=SLOTS)
    try:
        # The first user's sync meets the 412: the worker's risk pause begins.
        await _until("the first sync", lambda: _jobs(svc, "sync_user") == ["succeeded"], log_path)
        # Then a sync comes due for as many users as the worker has slots...
        for uid in user_ids:
            users.update_user(svc.db, uid, next_sync_at=svc.now())
        await _until(
            "every sync job started",
            lambda: len(_jobs(svc, "sync_user")) == 1 + SLOTS and "todo" not in _jobs(svc, "sync_user"),
            log_path,
        )
        # ...and a digest: the scheduler needs a slot to defer it, then the digest needs one.
        users.update_user(svc.db, user_ids[0], digest_time=_hhmm(timedelta(minutes=-1)))
        # (A second digest job may be deferred while the first still sends: it finds the digest sent.)
        await _until(
            "the digest sent",
            lambda: "succeeded" in _jobs(svc, "send_digest") and set(_jobs(svc, "send_digest")) <= {"succeeded"},
            log_path,
        )
        assert _jobs(svc, "sync_user") == ["succeeded"] * (1 + SLOTS), "a sync job is sleeping out the pause"
    finally:
        stop_worker(worker, kill=True)
    sent = [pick_bvid(m) for m in pick_messages(tg, 2)]
    assert sent and len(sent) == len(set(sent)), "the digest reached the chat, once"
    for uid in (trigger, *user_ids):
        planned = users.get_user_by_id(svc.db, uid).next_sync_at
        assert planned >= started + PAUSE_S - 1, "the next sync is planned for when the pause has ended"
    await svc.close()
