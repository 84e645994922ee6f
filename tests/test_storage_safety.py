"""Storage safety: ids never reused, no model for a user who is gone, concurrent processes on one
database, migrations under a lock, and the leaver's bytes gone from disk."""

from __future__ import annotations

from storage import users
from storage.db import Database
from tests.dbfixtures import any_db, postgres_url, sqlite_db, vault  # noqa: F401


def test_a_new_user_never_gets_the_id_of_someone_who_left(any_db: Database):
    """SQLite without AUTOINCREMENT hands the freed highest id to the next user, who then loaded the
    leaver's model files (keyed by user id)."""
    users.ensure_user(any_db, 1001, 1001, "en", now=1)
    leaver = users.ensure_user(any_db, 1002, 1002, "en", now=1)
    users.forget_user(any_db, leaver.id)
    newcomer = users.ensure_user(any_db, 1003, 1003, "en", now=2)
    assert newcomer.id != leaver.id
