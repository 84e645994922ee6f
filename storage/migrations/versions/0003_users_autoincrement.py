"""users.id never reused on SQLite (AUTOINCREMENT): model files are keyed by the user id

Revision ID: 0003
Revises: 0002

Postgres: nothing to do, a sequence never hands out an id twice.
SQLite: the table is rebuilt with AUTOINCREMENT (Database.migrate runs this with foreign keys off,
inside one BEGIN IMMEDIATE transaction, so a kill leaves the old table intact).
"""
from alembic import op


revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    with op.batch_alter_table("users", recreate="always", table_kwargs={"sqlite_autoincrement": True}):
        pass


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    with op.batch_alter_table("users", recreate="always", table_kwargs={"sqlite_autoincrement": False}):
        pass
