"""users: the digest's snooze and compact form, the /sync rate limit, and the /reset epoch

- digest_paused_until: a digest whose slot is before this time is not sent (/settings "pause 1/7 days")
- digest_compact: the digest as one text message of N lines instead of N photos
- sync_requested_at: the last /sync (one per SYNC_NOW_COOLDOWN)
- taste_epoch: bumped by /reset; a training pass that read the user before it saves nothing

Revision ID: 0007d
Revises: 0007f
"""
from alembic import op
import sqlalchemy as sa


revision = "0007d"
down_revision = "0007f"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN (no batch): on SQLite a batch rebuild would drop the table's AUTOINCREMENT and
    # let a newcomer take a leaver's id (and model files); constant defaults keep ADD COLUMN native.
    op.add_column("users", sa.Column("digest_paused_until", sa.BigInteger(), nullable=True))
    op.add_column("users", sa.Column("digest_compact", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column("users", sa.Column("sync_requested_at", sa.BigInteger(), nullable=True))
    op.add_column("users", sa.Column("taste_epoch", sa.Integer(), nullable=False, server_default=sa.text("0")))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("taste_epoch")
        batch.drop_column("sync_requested_at")
        batch.drop_column("digest_compact")
        batch.drop_column("digest_paused_until")
