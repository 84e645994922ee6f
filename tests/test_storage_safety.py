"""Storage safety: ids never reused, no model for a user who is gone, concurrent processes on one
database, migrations under a lock, and the leaver's bytes gone from disk."""

from __future__ import annotations

from storage import users
from storage.db import Database
from tests.dbfixtures import any_db, postgres_url, sqlite_db, vault  # noqa: F401


def head_revision() -> str:
    """The newest migration, as alembic sees the scripts (so a new migration needs no edit here)."""
    from alembic.script import ScriptDirectory

    from storage.db import _MIGRATIONS

    return ScriptDirectory(str(_MIGRATIONS)).get_current_head()


def test_a_new_user_never_gets_the_id_of_someone_who_left(any_db: Database):
    """SQLite without AUTOINCREMENT hands the freed highest id to the next user, who then loaded the
    leaver's model files (keyed by user id)."""
    users.ensure_user(any_db, 1001, 1001, "en", now=1)
    leaver = users.ensure_user(any_db, 1002, 1002, "en", now=1)
    users.forget_user(any_db, leaver.id)
    newcomer = users.ensure_user(any_db, 1003, 1003, "en", now=2)
    assert newcomer.id != leaver.id


# --- two processes on one database (a rolling deploy) --------------------------------------------

import subprocess  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
from sqlalchemy import inspect, text  # noqa: E402

from storage import picks  # noqa: E402


@pytest.fixture(params=["sqlite", "postgres"])
def fresh_url(request, tmp_path) -> Iterator[str]:
    """An empty database (no schema yet) on the embedded default and on Postgres."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'bilipick.db'}"
    else:
        yield request.getfixturevalue("postgres_url")


def both_at_once(work: Callable[[Database], object], a: Database, b: Database) -> list[object]:
    """`work` on two Database objects (two engines, two connection pools) released together."""
    start, results, errors = threading.Barrier(2), [None, None], []

    def run(i: int, db: Database) -> None:
        start.wait()
        try:
            results[i] = work(db)
        except Exception as exc:  # noqa: BLE001 - reported below with the test's failure
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i, db)) for i, db in enumerate((a, b))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors
    return results


def test_two_processes_migrating_at_once_both_succeed(fresh_url: str):
    a, b = Database(fresh_url), Database(fresh_url)
    try:
        both_at_once(lambda db: db.migrate(), a, b)
        with a.engine.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == [head_revision()]
        assert {"users", "shown", "digests"} <= set(inspect(a.engine).get_table_names())
    finally:
        a.dispose()
        b.dispose()


@pytest.fixture
def two_processes(fresh_url: str) -> Iterator[tuple[Database, Database]]:
    a = Database(fresh_url)
    a.migrate()
    b = Database(fresh_url)
    yield a, b
    a.dispose()
    b.dispose()


def test_only_one_process_gets_the_send_mark_of_a_pick(two_processes):
    a, b = two_processes
    user = users.ensure_user(a, 1, 1, "en", now=1)
    (shown_id,) = picks.record_shown(a, user.id, [picks.ShownPick("BV1", 80, "r")], "digest", 1, 1)
    won = both_at_once(lambda db: picks.mark_send_started(db, shown_id, 100), a, b)
    assert sorted(won) == [False, True], "exactly one process sends the pick"
    assert picks.mark_send_started(a, shown_id, 200) is False  # nor any later resume
    picks.mark_send_started(a, shown_id, None)  # Telegram refused it: a retry may send it again
    assert picks.mark_send_started(b, shown_id, 300) is True


def test_two_processes_resuming_one_digest_attach_one_set_of_picks(two_processes):
    a, b = two_processes
    user = users.ensure_user(a, 1, 1, "en", now=1)
    assert picks.claim_digest(a, user.id, "2026-12-02", now=1)
    digest = picks.get_digest(a, user.id, "2026-12-02")
    mine = {
        id(a): [picks.ShownPick("BVa1", 80, "r"), picks.ShownPick("BVa2", 70, "r")],
        id(b): [picks.ShownPick("BVb1", 90, "r"), picks.ShownPick("BVb2", 60, "r")],
    }
    got = both_at_once(lambda db: picks.record_digest_picks(db, digest.id, user.id, mine[id(db)], 5, 1), a, b)
    assert got[0] == got[1], "both processes send the same picks"
    history = picks.shown_history(a, user.id)
    assert sorted(r.id for r in history) == sorted(got[0]), "the loser left no shown rows behind"
    assert picks.get_digest(a, user.id, "2026-12-02").picks in (f"[{got[0][0]}, {got[0][1]}]",)


# --- kill -9 at a chosen SQL statement, in a real subprocess ---------------------------------------

_KILL_AT = """
import os, signal, sys
from sqlalchemy import event
from sqlalchemy.engine import Engine

@event.listens_for(Engine, "before_cursor_execute")
def _kill(conn, cursor, statement, *args):
    if statement.lstrip().upper().startswith(KILL_AT):
        os.kill(os.getpid(), signal.SIGKILL)  # kill -9: no cleanup, no rollback, no finally

from storage.db import Database
from storage import picks
"""


def killed_at(statement: str, code: str) -> None:
    """Run `code` in a fresh interpreter that is SIGKILLed just before `statement` executes."""
    root = Path(__file__).parents[1]
    script = f"KILL_AT = {statement.upper()!r}\n" + _KILL_AT + code
    done = subprocess.run([sys.executable, "-c", script], cwd=root, timeout=120)
    assert done.returncode == -9, f"the process was not killed at {statement!r} (exit {done.returncode})"


def test_a_kill_between_recording_digest_picks_and_marking_the_digest_leaves_no_orphans(sqlite_db: Database):
    user = users.ensure_user(sqlite_db, 1, 1, "en", now=1)
    picks.claim_digest(sqlite_db, user.id, "2026-12-02", now=1)
    digest = picks.get_digest(sqlite_db, user.id, "2026-12-02")
    killed_at(
        "UPDATE digests",
        f"""
db = Database({sqlite_db.url!r})
picks.record_digest_picks(db, {digest.id}, {user.id}, [picks.ShownPick("BV1", 80, "r")], 5, 1)
""",
    )
    assert picks.shown_history(sqlite_db, user.id) == [], "no shown row without its digest mark"
    assert picks.get_digest(sqlite_db, user.id, "2026-12-02").picks == "[]"  # the resume chooses again


def test_a_kill_during_a_migration_leaves_a_database_the_next_start_migrates(tmp_path):
    url = f"sqlite:///{tmp_path / 'bilipick.db'}"
    old = Database(url)
    old.migrate("0002")  # yesterday's schema, with people in it (written as that release wrote them:
    # today's models carry columns 0002 lacks)
    with old.engine.begin() as conn:
        for i in range(3):
            conn.execute(
                text(
                    "INSERT INTO users (telegram_id, chat_id, language, timezone, digest_time, digest_paused, "
                    "picks_per_page, blocked, session_dead, created_at) "
                    "VALUES (:t, :t, 'en', 'Asia/Shanghai', '09:00', 0, 5, 0, 0, 1)"
                ),
                {"t": 10 + i},
            )
        kept = list(conn.execute(text("SELECT id FROM users ORDER BY id")).scalars())
        conn.execute(
            text(
                "INSERT INTO shown (user_id, bvid, shown_at, rating, reason, source) "
                "VALUES (:u, 'BV1', 1, 80, 'r', 'recommend')"
            ),
            {"u": kept[0]},
        )
    old.dispose()
    # 0003 rebuilds the users table: killed after copying the rows, before dropping the old table.
    killed_at("DROP TABLE users", f"Database({url!r}).migrate()")
    db = Database(url)
    db.migrate()  # the next start completes it
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == head_revision()
        assert conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall() == []
    assert users.all_user_ids(db) == kept
    assert [r.bvid for r in picks.shown_history(db, kept[0])] == ["BV1"]
    newcomer = users.ensure_user(db, 99, 99, "en", now=2)
    users.forget_user(db, newcomer.id)
    assert users.ensure_user(db, 98, 98, "en", now=2).id > newcomer.id  # and ids are not reused from now on
    db.dispose()


def test_no_model_is_saved_for_a_user_who_is_gone(any_db: Database):
    user = users.ensure_user(any_db, 1, 1, "en", now=1)
    saves: list[int] = []

    def save() -> int:
        saves.append(1)
        return len(saves)

    assert picks.save_model_version(any_db, user.id, save, n_samples=10, now=5) == 1
    users.forget_user(any_db, user.id)
    assert picks.save_model_version(any_db, user.id, save, n_samples=10, now=6) is None
    assert saves == [1], "the files were never written for the leaver"
    with any_db.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM model_versions")).scalar() == 0
