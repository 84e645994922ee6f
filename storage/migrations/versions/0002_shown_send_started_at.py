"""shown.send_started_at: sends in flight when the process died are not repeated

Revision ID: 0002
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa


revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("shown") as batch:
        batch.add_column(sa.Column("send_started_at", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("shown") as batch:
        batch.drop_column("send_started_at")
