"""distributed mode: telegram_chat_pace (each chat's next free message slot, shared by every process)

Revision ID: 0005t
Revises: 0005f
"""
from alembic import op
import sqlalchemy as sa


revision = "0005t"
down_revision = "0005f"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "telegram_chat_pace",
        sa.Column("chat_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("next_slot", sa.Float(), nullable=False),  # database-clock epoch seconds
        sa.PrimaryKeyConstraint("chat_id"),
    )


def downgrade() -> None:
    op.drop_table("telegram_chat_pace")
