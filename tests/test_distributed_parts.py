"""The pieces of distributed mode one by one, on a fresh PostgreSQL database: the shared Telegram
pace, /healthz and /metrics, the scheduler's deferrals and their queueing locks."""

from __future__ import annotations

import re
import socket

import aiohttp
import pytest
from sqlalchemy import text

from jobs.metrics import MetricsServer
from jobs.queue import Runtime, build_app, prune_finished_jobs, schedule_due_work
from storage.pace import DatabasePace
from tests.dbfixtures import postgres_url  # noqa: F401
from tests.distributed import distributed_services, prime_candidates, seed_day

pytestmark = pytest.mark.postgres


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _next_slot(db) -> float:
    with db.engine.connect() as conn:
        return conn.execute(text("SELECT next_slot FROM telegram_pace WHERE id = 1")).scalar()


def test_processes_share_one_send_pace_and_a_429_pauses_them_all(tmp_path, bilibili_double, postgres_url):  # noqa: F811
    front = distributed_services(tmp_path / "f", bilibili_double, postgres_url)
    worker = distributed_services(tmp_path / "w", bilibili_double, postgres_url)
    a, b = DatabasePace(front.db), DatabasePace(worker.db)
    a.reserve(0.1)
    first = _next_slot(front.db)
    for pace in (a, b) * 10:  # two processes, interleaved
        pace.reserve(0.1)
    # 20 more sends hold 20 consecutive slots: no two processes ever got the same one.
    assert _next_slot(front.db) >= first + 20 * 0.1 - 1e-3  # epoch seconds in a double: ~1 µs resolution
    b.pause_all(60.0)  # Telegram answered 429 retry_after=60 to the worker...
    assert a.reserve(0.1) > 55.0  # ...so the front waits too


def test_processes_share_each_chats_pace_and_a_chats_429_pauses_only_that_chat(tmp_path, bilibili_double, postgres_url):  # noqa: F811
    front = distributed_services(tmp_path / "f", bilibili_double, postgres_url)
    worker = distributed_services(tmp_path / "w", bilibili_double, postgres_url)
    a, b = DatabasePace(front.db), DatabasePace(worker.db)
    assert a.reserve_chat(501, 1.0) == 0.0, "a chat's first message goes at once"
    assert b.reserve_chat(501, 1.0) > 0.9, "the worker's digest waits for the front's reply to that chat"
    assert b.reserve_chat(502, 1.0) == 0.0, "another chat does not"
    a.pause_chat(503, 60.0)  # Telegram answered 429 retry_after=60 to the front, in chat 503
    assert b.reserve_chat(503, 1.0) > 55.0
    assert b.reserve_chat(504, 1.0) == 0.0 and a.reserve(0.001) < 1.0, "nobody else waits"


async def test_healthz_and_metrics_show_queue_depth_and_bilibili_calls(tmp_path, bilibili_double, tg, postgres_url):  # noqa: F811
    svc = distributed_services(tmp_path, bilibili_double, postgres_url)
    seed_day(svc, bilibili_double, tg, 3)
    app = build_app(svc.settings)
    port = _free_port()
    server = MetricsServer(svc, port, "127.0.0.1")
    await server.start()
    try:
        async with app.open_async():
            runtime = Runtime(svc, bot=None, train_shards=4)
            tasks = {t.name: t for t in app.tasks.values()}
            named = {
                "sync": tasks["sync_user"],
                "train": tasks["train_shard"],
                "shared": tasks["rebuild_shared"],
                "twotower": tasks["rebuild_twotower"],
                "refresh": tasks["refresh_candidates"],
                "digest": tasks["send_digest"],
            }
            first = await schedule_due_work(runtime, named)
            again = await schedule_due_work(runtime, named)  # the same work still waits: nothing new
        assert first["sync"] == 3 and first["digest"] == 3
        assert again == {"sync": 0, "train": 0, "digest": 0}
        await svc.bili.popular(1)
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
                assert resp.status == 200
            async with http.get(f"http://127.0.0.1:{port}/metrics") as resp:
                body = await resp.text()
        assert 'bilipick_queue_jobs{queue="sync",status="todo"} 4.0' in body  # 3 syncs + the refresh
        assert 'bilipick_queue_jobs{queue="digest",status="todo"} 3.0' in body
        calls = re.search(r"^bilipick_bilibili_calls_total (\S+)$", body, re.M)
        assert calls and float(calls.group(1)) == svc.bili.calls >= 1
        assert "bilipick_telegram_messages_sent_total" in body and "bilipick_sync_seconds_bucket" in body
    finally:
        await server.stop()
        await svc.close()


def test_concurrent_upserts_of_the_same_videos_do_not_deadlock(postgres_url):  # noqa: F811
    """Two workers' syncs save overlapping videos in different orders (the scale bench hit
    'deadlock detected', which failed a sync after it had stored the behaviour)."""
    import random
    from concurrent.futures import ThreadPoolExecutor

    from storage.db import Database
    from storage.models import Video
    from storage.upsert import upsert

    db = Database(postgres_url)
    db.migrate()
    rows = [
        dict(
            bvid=f"BV{i:08d}",
            aid=i,
            title="t",
            cover="",
            owner_mid=1,
            owner_name="o",
            duration=1,
            tid=1,
            tname="x",
            pubdate=0,
            fetched_at=0,
        )
        for i in range(1000)
    ]

    def save(seed: int) -> None:
        mine = rows[:]
        random.Random(seed).shuffle(mine)
        for _ in range(20):
            with db.session() as s:  # one statement per transaction, as catalogue.save_videos
                upsert(s, Video, mine, ["bvid"], update=["title", "fetched_at"])

    try:
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(save, range(4)))  # raised OperationalError (deadlock) before the fix
    finally:
        db.dispose()


async def test_a_retried_sync_asks_for_the_retrain_its_failed_attempt_never_did(
    tmp_path, bilibili_double, tg, postgres_url
):  # noqa: F811
    from jobs.queue import sync_due_user
    from jobs.sync import sync_user
    from storage import users

    svc = distributed_services(tmp_path, bilibili_double, postgres_url)
    (uid,) = seed_day(svc, bilibili_double, tg, 1)
    await sync_user(svc, uid)  # a first attempt stores the behaviour, then fails before planning
    users.update_user(svc.db, uid, train_due_at=None)
    await sync_due_user(svc, None, uid, retried=True)  # the retry finds nothing new...
    assert users.get_user_by_id(svc.db, uid).train_due_at is not None  # ...and still asks for training
    await svc.close()


def _scheduler_tasks(app) -> dict:
    tasks = {t.name: t for t in app.tasks.values()}
    return {
        "sync": tasks["sync_user"],
        "train": tasks["train_shard"],
        "shared": tasks["rebuild_shared"],
        "twotower": tasks["rebuild_twotower"],
        "refresh": tasks["refresh_candidates"],
        "digest": tasks["send_digest"],
    }


def _jobs(db, where: str = "TRUE", **params) -> list[tuple]:
    with db.engine.connect() as conn:
        return conn.execute(
            text(f"SELECT id, task_name, status::text FROM procrastinate_jobs WHERE {where}"), params
        ).all()


async def test_the_job_table_keeps_no_succeeded_job_and_failed_ones_only_for_a_while(
    tmp_path,
    bilibili_double,
    tg,
    postgres_url,  # noqa: F811
):
    from procrastinate.jobs import Status

    svc = distributed_services(tmp_path, bilibili_double, postgres_url)
    user_ids = seed_day(svc, bilibili_double, tg, 2)
    app = build_app(svc.settings)
    async with app.open_async():
        runtime = Runtime(svc, bot=None, train_shards=4)
        deferred = await schedule_due_work(runtime, _scheduler_tasks(app))
        assert deferred["sync"] == 2
        # The syncs, the candidate refresh and the training they ask for, then the queue is empty.
        for _ in range(3):
            await schedule_due_work(runtime, _scheduler_tasks(app))
            await app.run_worker_async(
                queues=["sync", "train"],
                wait=False,
                install_signal_handlers=False,
                additional_context={"runtime": runtime},
            )
        ran = _jobs(svc.db, "queue_name IN ('sync', 'train')")
        assert ran == [], f"jobs that finished stay in the table: {ran}"
        assert svc.models.latest_version(str(user_ids[0])) is not None, "the jobs did run"

        # A failed job 15 days old goes; one failed an hour ago stays for a look.
        refresh = _scheduler_tasks(app)["refresh"]
        old, recent = [await refresh.configure(queueing_lock=f"t{i}").defer_async() for i in range(2)]
        for job_id in (old, recent):
            await app.job_manager.finish_job_by_id_async(job_id, Status.FAILED, delete_job=False)
        with svc.db.engine.begin() as conn:
            conn.execute(
                text("UPDATE procrastinate_events SET at = now() - interval '15 days' WHERE job_id = :j"), {"j": old}
            )
            conn.execute(
                text("UPDATE procrastinate_events SET at = now() - interval '1 hour' WHERE job_id = :j"), {"j": recent}
            )
        await prune_finished_jobs(app, svc.settings.work.failed_jobs_keep_days)
        assert [j[0] for j in _jobs(svc.db, "status = 'failed'")] == [recent]
    await svc.close()


async def test_an_idle_scheduler_run_with_fresh_candidates_defers_no_refresh(
    tmp_path,
    bilibili_double,
    tg,
    postgres_url,  # noqa: F811
):
    svc = distributed_services(tmp_path, bilibili_double, postgres_url)
    await prime_candidates(svc)
    app = build_app(svc.settings)
    async with app.open_async():
        runtime = Runtime(svc, bot=None, train_shards=4)
        for _ in range(3):
            await schedule_due_work(runtime, _scheduler_tasks(app))
    assert _jobs(svc.db) == [], "nothing is due: no job at all"
    await svc.close()
