"""videos.recheck_at: a video bilibili refused (-403 / -400) is looked at again from this time

Revision ID: 0005f
Revises: 0005b
"""
from alembic import op
import sqlalchemy as sa


revision = "0005f"
down_revision = "0005b"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("videos") as batch:
        batch.add_column(sa.Column("recheck_at", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("videos") as batch:
        batch.drop_column("recheck_at")
