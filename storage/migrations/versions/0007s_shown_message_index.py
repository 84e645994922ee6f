"""shown: index (chat_id, message_id), so a /similar replying to a pick finds the pick it replies to

Revision ID: 0007s
Revises: 0007c
"""
from alembic import op


revision = "0007s"
down_revision = "0007c"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_shown_chat_message", "shown", ["chat_id", "message_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_shown_chat_message", table_name="shown")
