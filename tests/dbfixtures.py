"""Database fixtures: a fresh SQLite file per test, and a throwaway Postgres database when the server
on 127.0.0.1:5432 answers (tests skip with the reason otherwise)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from storage.crypto import CredentialVault
from storage.db import Database

POSTGRES_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@pytest.fixture
def sqlite_db(tmp_path) -> Iterator[Database]:
    db = Database(f"sqlite:///{tmp_path / 'bilipick.db'}")
    db.migrate()
    yield db
    db.dispose()


class NoPostgres(Exception):
    """No PostgreSQL server answers at POSTGRES_ADMIN_URL (the message says why)."""


def create_throwaway_database(prefix: str = "bilipick") -> str:
    """A fresh, empty Postgres database; its URL. Raises NoPostgres where no server answers."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import OperationalError

    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as exc:
        raise NoPostgres(f"no PostgreSQL server answers at {POSTGRES_ADMIN_URL}: {exc.orig}") from None
    finally:
        admin.dispose()
    return POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


def drop_database(url: str) -> None:
    from sqlalchemy import create_engine, text

    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh Postgres database for one test, dropped afterwards."""
    try:
        url = create_throwaway_database()
    except NoPostgres as exc:
        pytest.skip(str(exc))
    try:
        yield url
    finally:
        drop_database(url)


@pytest.fixture(params=["sqlite", "postgres"])
def any_db(request, tmp_path) -> Iterator[Database]:
    """The same test on the embedded default and on Postgres."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'bilipick.db'}"
        db = Database(url)
        db.migrate()
        yield db
        db.dispose()
    else:
        url = request.getfixturevalue("postgres_url")
        db = Database(url)
        db.migrate()
        yield db
        db.dispose()


@pytest.fixture
def vault() -> CredentialVault:
    from cryptography.fernet import Fernet

    return CredentialVault([Fernet.generate_key().decode()])
