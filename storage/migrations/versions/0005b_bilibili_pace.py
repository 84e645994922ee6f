"""distributed mode: bilibili_pace (bilibili's request pace and risk pause per egress IP, shared by
every process leaving by it)

Revision ID: 0005b
Revises: 0005s
"""
from alembic import op
import sqlalchemy as sa


revision = "0005b"
down_revision = "0005s"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bilibili_pace",
        sa.Column("egress", sa.String(length=64), nullable=False),
        sa.Column("next_slot", sa.Float(), nullable=False),  # database-clock epoch seconds
        sa.Column("paused_until", sa.Float(), nullable=False),  # database-clock epoch seconds
        sa.Column("strikes", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("egress"),
    )


def downgrade() -> None:
    op.drop_table("bilibili_pace")
