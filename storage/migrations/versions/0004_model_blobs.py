"""distributed mode: model_blobs (safetensors models and shared signals every machine reads) and
telegram_pace (the next free Telegram send slot, shared by every process)

Revision ID: 0004
Revises: 0002
"""
from alembic import op
import sqlalchemy as sa


revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "model_blobs",
        sa.Column("key", sa.String(length=80), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("key", "version"),
    )
    op.create_table(
        "telegram_pace",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("next_slot", sa.Float(), nullable=False),  # database-clock epoch seconds
    )
    op.execute("INSERT INTO telegram_pace (id, next_slot) VALUES (1, 0)")


def downgrade() -> None:
    op.drop_table("telegram_pace")
    op.drop_table("model_blobs")
