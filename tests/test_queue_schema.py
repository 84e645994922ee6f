"""procrastinate's schema follows procrastinate upgrades (issue 16): its migrations are applied at
start, once each, under a lock, and a database made before the record existed is taken as is."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from procrastinate.schema import SchemaManager
from sqlalchemy import text

from jobs.queue import MIGRATION_RECORD, ensure_queue_schema
from storage.db import Database
from tests.dbfixtures import postgres_url  # noqa: F401

pytestmark = pytest.mark.postgres

LAST = sorted(p.name for p in Path(SchemaManager.get_migrations_path()).glob("*.sql"))[-1]
TRIGGER = "procrastinate_trigger_status_events_update_v1"  # what the last migration (re)creates


def _recorded(db: Database) -> list[str]:
    with db.engine.connect() as conn:
        return list(conn.execute(text(f"SELECT name FROM {MIGRATION_RECORD} ORDER BY name")).scalars())


def _has_trigger(db: Database) -> bool:
    with db.engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM pg_trigger WHERE tgname = :t"), {"t": TRIGGER}).scalar() == 1


def test_a_fresh_database_gets_the_schema_and_a_second_start_applies_nothing(postgres_url):  # noqa: F811
    db = Database(postgres_url)
    try:
        assert ensure_queue_schema(db) == []
        every = sorted(p.name for p in Path(SchemaManager.get_migrations_path()).glob("*.sql"))
        assert _recorded(db) == every
        assert ensure_queue_schema(db) == []
        assert _recorded(db) == every
    finally:
        db.dispose()


def test_an_older_procrastinate_schema_is_migrated_at_start(postgres_url):  # noqa: F811
    """As if the database was made by the release before the last migration: the migration's work
    is missing and so is its record. Before the fix the schema, once there, was never touched again."""
    db = Database(postgres_url)
    try:
        ensure_queue_schema(db)
        with db.engine.begin() as conn:
            conn.execute(text(f"DROP TRIGGER {TRIGGER} ON procrastinate_jobs"))
            conn.execute(text(f"DELETE FROM {MIGRATION_RECORD} WHERE name = :n"), {"n": LAST})
        assert not _has_trigger(db)

        assert ensure_queue_schema(db) == [LAST]
        assert _has_trigger(db), "the pending migration ran"
        assert LAST in _recorded(db)
        assert ensure_queue_schema(db) == [], "and only once"
    finally:
        db.dispose()


def test_queue_tables_made_before_the_record_are_taken_as_current(postgres_url):  # noqa: F811
    """Deployments before the record applied the installed release's schema script; re-running its
    migrations would fail (CREATE FUNCTION of what exists), so they are recorded, not run."""
    db = Database(postgres_url)
    try:
        with db.engine.begin() as conn, conn.connection.cursor() as cursor:
            cursor.execute(SchemaManager.get_schema())
        assert ensure_queue_schema(db) == []
        assert LAST in _recorded(db)
    finally:
        db.dispose()


def test_a_new_migration_file_is_applied_once(postgres_url, tmp_path):  # noqa: F811
    db = Database(postgres_url)
    folder = tmp_path / "migrations"
    shutil.copytree(SchemaManager.get_migrations_path(), folder, ignore=shutil.ignore_patterns("__*"))
    try:
        ensure_queue_schema(db)  # today's release
        (folder / "99.00.00_01_probe.sql").write_text(
            "CREATE TABLE IF NOT EXISTS probe_runs (n int); INSERT INTO probe_runs VALUES (1); -- 100% literal\n"
        )
        assert ensure_queue_schema(db, folder) == ["99.00.00_01_probe.sql"]
        assert ensure_queue_schema(db, folder) == []
        with db.engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM probe_runs")).scalar() == 1
    finally:
        db.dispose()
