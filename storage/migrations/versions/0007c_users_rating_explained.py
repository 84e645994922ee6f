"""users.rating_explained: the user was told what NN/100 means (once)

Revision ID: 0007c
Revises: 0006c
"""
from alembic import op
import sqlalchemy as sa


revision = "0007c"
down_revision = "0006c"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("rating_explained", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("rating_explained")
