"""videos.title_tokens: the title's words (jieba), segmented once when the metadata is saved

Revision ID: 0007t
Revises: 0007s
"""
from alembic import op
import sqlalchemy as sa


revision = "0007t"
down_revision = "0007s"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # rows saved before keep "[]": the recommender segments their titles itself until they are saved again
    with op.batch_alter_table("videos") as batch:
        batch.add_column(sa.Column("title_tokens", sa.Text(), nullable=False, server_default="[]"))


def downgrade() -> None:
    with op.batch_alter_table("videos") as batch:
        batch.drop_column("title_tokens")
