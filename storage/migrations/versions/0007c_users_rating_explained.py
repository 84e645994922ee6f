"""users.rating_explained: the user was told what NN/100 means (once)

Revision ID: 0007c
Revises: 0007b
"""
from alembic import op
import sqlalchemy as sa


revision = "0007c"
down_revision = "0007b"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A constant default, not sa.false(): an expression makes alembic rebuild the SQLite table, which
    # would drop users' AUTOINCREMENT (0003). Existing users have not been told yet.
    default = "0" if op.get_bind().dialect.name == "sqlite" else "false"
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("rating_explained", sa.Boolean(), nullable=False, server_default=default))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("rating_explained")
