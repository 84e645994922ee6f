"""Kill -9 between a sync's pull and its commit (issue 11 §2), then sync again: nothing lost, nothing
duplicated, nothing half-stored. The sync runs in its own process against the bilibili double over
HTTP and is killed with SIGKILL (tests/crash_sync.py); the database is a real SQLite file."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest
from sqlmodel import select

from jobs.pull import FIRST_HISTORY_PAGES, HISTORY_BACKFILL
from jobs.schedule import after_sync
from jobs.sync import BACKFILL_COMMIT_PAGES, sync_user
from storage import behaviour, users
from storage.models import SyncCursor
from tests.doubles.bilibili import HISTORY
from tests.harness import link_user, make_services

ROOT = Path(__file__).resolve().parent.parent
MID = 3501


def state(svc, user_id: int) -> tuple[list[tuple[str, str, int]], dict[str, str]]:
    rows = sorted((b.bvid, b.kind, b.at) for b in behaviour.user_behaviours(svc.db, user_id))
    with svc.db.session() as s:
        cursors = {c.source: c.cursor for c in s.exec(select(SyncCursor).where(SyncCursor.user_id == user_id))}
    return rows, cursors


def on_bilibili(double) -> set[tuple[str, str]]:
    user = double.users[MID]
    rows = {(b, "watch") for b in user.history}
    rows |= {(e.bvid, "favorite") for f in user.folders for e in f.items if e.attr == 0}
    return rows | {(b, "coin") for b, _, _ in user.coins} | {(b, "like") for b in user.likes[:20]}


async def killed_sync(svc, double, user_id: int, point: str) -> None:
    env = {**os.environ, "FERNET_KEYS": svc.settings.storage.fernet_keys.get_secret_value()}
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.crash_sync",
        str(svc.settings.storage.data_dir),
        double.url,
        str(user_id),
        point,
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(child.communicate(), 120)
    assert child.returncode == -signal.SIGKILL, stderr.decode()[-2000:]


@pytest.mark.parametrize("point", ["after_pull", "in_commit"])
@pytest.mark.parametrize("sync", ["first", "incremental"])
async def test_a_sync_killed_before_its_commit_loses_and_doubles_nothing(tmp_path, bilibili_double, point, sync):
    double = bilibili_double
    source = double.add_generated_user(MID, seed=35, n_history=90)
    svc = make_services(tmp_path, double)
    try:
        user_id = link_user(svc, double, 1, MID)
        if sync == "incremental":
            assert (await sync_user(svc, user_id)).ok
            fresh = [b for b in double.popular_order if b not in source.history][:3]
            double.add_watch(MID, fresh[0], like=True)
            double.add_watch(MID, fresh[1], fav=True)
            double.add_watch(MID, fresh[2], coins=2)
        before = state(svc, user_id)

        await killed_sync(svc, double, user_id, point)

        assert state(svc, user_id) == before, "nothing of the killed sync is half-stored"
        assert user_id in {u.id for u in users.users_due_sync(svc.db, svc.now())}, "the sync is still due"
        report = await sync_user(svc, user_id)
        assert report.ok, report.error
        after_sync(svc, user_id, report)
        rows = behaviour.user_behaviours(svc.db, user_id)
        assert {(b.bvid, b.kind) for b in rows} == on_bilibili(double), "nothing lost"
        assert len(rows) == len({(b.bvid, b.kind) for b in rows}), "nothing duplicated"
        again = await sync_user(svc, user_id)
        assert again.ok and again.new_items == 0, "and the cursors now cover it all"
    finally:
        await svc.close()


async def test_a_first_sync_killed_while_reading_older_history_resumes_where_it_stopped(tmp_path, bilibili_double):
    """Issue 13: the older history of a first sync is committed page batch by page batch; after a
    kill -9 the next sync reads on from the last stored batch, not from the newest page again."""
    double = bilibili_double
    pages = FIRST_HISTORY_PAGES + 2 * BACKFILL_COMMIT_PAGES
    double.add_long_history_user(MID, "heavy", watches=30 * pages, seed=36)
    svc = make_services(tmp_path, double)
    try:
        user_id = link_user(svc, double, 1, MID)
        await killed_sync(svc, double, user_id, "in_backfill")
        stored, cursors = state(svc, user_id)
        first_part = FIRST_HISTORY_PAGES + BACKFILL_COMMIT_PAGES
        assert sum(kind == "watch" for _, kind, _ in stored) == 30 * first_part, "the batches before the kill"
        assert HISTORY_BACKFILL in cursors

        double.reset_calls()
        report = await sync_user(svc, user_id)
        assert report.ok, report.error
        pages_left = pages - first_part
        assert double.calls[HISTORY] == 1 + pages_left + 1, "the newest page, what was left, the empty last page"
        rows = behaviour.user_behaviours(svc.db, user_id)
        assert {(b.bvid, b.kind) for b in rows} == on_bilibili(double), "nothing lost"
        assert HISTORY_BACKFILL not in state(svc, user_id)[1], "the whole history is read"
    finally:
        await svc.close()
