"""/sync in distributed mode: the front sends the status message and defers the sync; a worker runs
it and edits that message in place (PostgreSQL, a worker subprocess, both doubles)."""

from __future__ import annotations

import asyncio
import time

import pytest

from storage import behaviour, users
from tests.dbfixtures import postgres_url  # noqa: F401
from tests.distributed import distributed_services, running_front, start_worker, stop_worker, worker_env
from tests.harness import link_user
from tests.test_distributed import _worker_registered

pytestmark = pytest.mark.postgres


async def test_a_worker_runs_the_sync_and_edits_the_fronts_status_message(tmp_path, bilibili_double, tg, postgres_url):  # noqa: F811
    svc = distributed_services(tmp_path, bilibili_double, postgres_url)
    bilibili_double.add_generated_user(7601, seed=31, n_history=40)
    uid = link_user(svc, bilibili_double, 33001, 7601)
    users.update_user(svc.db, uid, next_sync_at=svc.now() + 10**6)  # only /sync syncs them
    kim = tg.user(33001, language_code="en")
    worker_log = tmp_path / "worker.log"
    worker = start_worker(worker_env(svc, bilibili_double, tg, postgres_url), worker_log)
    try:
        deadline = time.monotonic() + 120
        while not await _worker_registered(svc):
            assert worker.poll() is None and time.monotonic() < deadline, worker_log.read_text()[-3000:]
            await asyncio.sleep(0.2)
        async with running_front(svc, tg):
            mark, front_calls = tg.mark(), svc.bili.calls
            await tg.send_text(kim, "/sync")
            status = await tg.wait_for(lambda m: "Syncing" in m.content, chat=kim, since=mark, timeout=30)
            await tg.wait_for(
                lambda m: m.message_id == status.message_id and "Synced now" in m.content,
                chat=kim,
                since=mark,
                timeout=120,
            )
            assert svc.bili.calls == front_calls, "the front asked bilibili nothing"
            again = mark = tg.mark()
            await tg.send_text(kim, "/sync")
            await tg.wait_for(lambda m: "next /sync is possible" in m.content, chat=kim, since=again, timeout=30)
    finally:
        stop_worker(worker)
    assert "sync now user=" in worker_log.read_text()
    assert behaviour.behaviour_counts(svc.db, uid).get("watch", 0) > 0
    assert [m.message_id for m in tg.sent_to(kim) if "Sync" in m.content] == [status.message_id]
    await svc.close()
