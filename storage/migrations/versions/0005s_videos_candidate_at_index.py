"""an index on videos.candidate_at: /recommend and every training pass read this week's candidates,
which scanned the whole catalogue (162 ms a /recommend at ~2 million videos)

Revision ID: 0005s
Revises: 0004
"""
from alembic import op


revision = "0005s"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_videos_candidate_at", "videos", ["candidate_at"])


def downgrade() -> None:
    op.drop_index("ix_videos_candidate_at", table_name="videos")
