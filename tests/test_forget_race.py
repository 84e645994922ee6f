"""/forget while a sync commit or a model save for the same user is in flight (issue 16 §6).

On PostgreSQL the forget deleted the user's rows, then waited on the user row for the other
transaction, which then committed new rows for the user: the final DELETE of the user failed with a
foreign-key error and the whole forget rolled back, keeping everything. Real transactions on a real
Postgres, no timing: the test waits until the forget is seen blocked on a lock before letting the
other transaction commit.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, insert, select, text

from storage import behaviour, picks, users
from storage.behaviour import BehaviourRow
from storage.db import Database
from storage.models import Behaviour, Feedback, ModelVersion, Shown, SyncCursor, User
from tests.dbfixtures import postgres_url  # noqa: F401

WAIT_LIMIT_S = 60  # only a hung test ever gets near this


@pytest.fixture
def db(postgres_url):  # noqa: F811
    database = Database(postgres_url)
    database.migrate()
    yield database
    database.dispose()


def a_user_with_rows(db: Database) -> int:
    user_id = users.ensure_user(db, 77, 77, "en", now=1_700_000_000).id
    behaviour.save_behaviours(db, user_id, [BehaviourRow("BV1xx411c7mD", "watch", at=1)])
    behaviour.set_cursor(db, user_id, "history", "1", now=1)
    return user_id


def wait_until_someone_waits_on_a_lock(db: Database) -> None:
    stmt = text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'")
    deadline = time.monotonic() + WAIT_LIMIT_S
    while True:
        with db.engine.connect() as conn:  # a new transaction each time: pg_stat_activity is a snapshot
            if conn.execute(stmt).scalar():
                return
        assert time.monotonic() < deadline, "the forget never reached the lock"
        time.sleep(0.01)


def model_save_in_flight(db: Database, user_id: int, go: threading.Event, inside: threading.Event) -> None:
    """The trainer's save: holds the user's row while the model files are written, then records the version."""

    def write_files() -> int:
        inside.set()
        go.wait(WAIT_LIMIT_S)
        return 3

    picks.save_model_version(db, user_id, write_files, n_samples=10, now=2)


def sync_commit_in_flight(db: Database, user_id: int, go: threading.Event, inside: threading.Event) -> None:
    """A sync's commit (as storage.behaviour.save_pull): the user's row locked, rows and cursor inserted."""
    with db.engine.begin() as conn:
        conn.execute(select(User.id).where(User.id == user_id).with_for_update())
        conn.execute(insert(Behaviour).values(user_id=user_id, bvid="BV17x411w7KC", kind="like", at=2))
        conn.execute(insert(SyncCursor).values(user_id=user_id, source="favorite:1", cursor="1", updated_at=2))
        inside.set()
        go.wait(WAIT_LIMIT_S)


@pytest.mark.parametrize("in_flight", [model_save_in_flight, sync_commit_in_flight], ids=["model_save", "sync_commit"])
def test_a_forget_during_a_commit_for_the_same_user_deletes_everything_without_error(db, in_flight):
    user_id = a_user_with_rows(db)
    go, inside = threading.Event(), threading.Event()
    with ThreadPoolExecutor(2) as pool:
        other = pool.submit(in_flight, db, user_id, go, inside)
        assert inside.wait(WAIT_LIMIT_S)
        forgetting = pool.submit(users.forget_user, db, user_id)
        wait_until_someone_waits_on_a_lock(db)  # the forget waits for the commit in flight...
        go.set()  # ...which now commits its rows for the user
        other.result(WAIT_LIMIT_S)
        forgetting.result(WAIT_LIMIT_S)  # no foreign-key error

    with db.session() as s:
        assert s.get(User, user_id) is None
        for model in (Behaviour, Feedback, Shown, SyncCursor, ModelVersion):
            assert s.exec(select(func.count()).select_from(model).where(model.user_id == user_id)).one() == (0,)
