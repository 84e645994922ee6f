"""Engine and sessions. SQLite (WAL, busy timeout) by default; the same code runs on Postgres."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool
from sqlmodel import Session, create_engine

log = logging.getLogger(__name__)

_MIGRATIONS = Path(__file__).with_name("migrations")
_MIGRATION_LOCK_KEY = 0x42696C6950  # "BiliP": one advisory lock id for schema migrations


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    # WAL lets the bot read while a job writes; busy_timeout waits instead of failing on a lock.
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    # Deleted rows are overwritten with zeros, not left readable in free pages (/forget).
    cur.execute("PRAGMA secure_delete=ON")
    cur.close()


def _sqlite_migration_pragmas(dbapi_conn, _record) -> None:
    # Autocommit at the driver level, so the explicit BEGIN IMMEDIATE below is the only transaction:
    # the whole upgrade commits or rolls back as one (a kill mid-migration leaves the old schema),
    # and a second process waits for the first instead of migrating alongside it.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=120000")
    cur.execute("PRAGMA secure_delete=ON")
    # Rebuilding a referenced table (batch migrations) needs this off; it only works outside a transaction.
    cur.execute("PRAGMA foreign_keys=OFF")
    cur.close()


def _sqlite_begin_immediate(conn) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 10})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True)


class Database:
    """Owns the engine; `session()` is a unit of work that commits or rolls back."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def migrate(self, revision: str = "head") -> None:
        """Create or upgrade the schema to the newest alembic revision, in one transaction that holds
        a lock for its whole length: two processes starting at once (a rolling deploy) run it one
        after the other, and the second finds nothing to do. SQLite: BEGIN IMMEDIATE (the write
        lock, waited for); Postgres: a transaction-scoped advisory lock."""
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(_MIGRATIONS))
        engine = self._migration_engine()
        try:
            with engine.begin() as conn:
                if engine.dialect.name == "postgresql":
                    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY})
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, revision)
                if engine.dialect.name == "sqlite":
                    broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                    if broken:
                        raise RuntimeError(f"migration left {len(broken)} rows with a dangling foreign key")
        finally:
            if engine is not self.engine:
                engine.dispose()

    def _migration_engine(self) -> Engine:
        if self.dialect != "sqlite" or make_url(self.url).database in (None, "", ":memory:"):
            return self.engine  # an in-memory database exists only on the engine's own connection
        engine = create_engine(self.url, connect_args={"check_same_thread": False, "timeout": 120}, poolclass=NullPool)
        event.listen(engine, "connect", _sqlite_migration_pragmas)
        event.listen(engine, "begin", _sqlite_begin_immediate)
        return engine

    @contextmanager
    def session(self) -> Iterator[Session]:
        with Session(self.engine, expire_on_commit=False) as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def scrub_deleted(self) -> bool:
        """After deleting someone's rows (/forget): make the bytes go from disk. SQLite: secure_delete
        (every connection) already zeroed them in the database pages; a TRUNCATE checkpoint copies
        those pages in and empties the WAL, where the old versions still sat. True when it completed
        (False: a long reader kept part of the WAL; the next checkpoint finishes the job).

        Postgres keeps deleted tuples in the table files until VACUUM reclaims them (VACUUM FULL to
        rewrite the files; WAL segments and backups keep them until recycled): run VACUUM from
        maintenance, not per /forget (README, "Deleting a user's data")."""
        if self.dialect != "sqlite":
            return True
        with self.engine.connect() as conn:
            busy, _, _ = conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").one()
        return busy == 0

    def dispose(self) -> None:
        self.engine.dispose()
