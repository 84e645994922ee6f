"""behaviours.views: how many times the user watched a video (a repeat watch moved the row's time on)

Revision ID: 0007v
Revises: 0007t
"""
from alembic import op
import sqlalchemy as sa


revision = "0007v"
down_revision = "0007t"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("behaviours") as batch:
        batch.add_column(sa.Column("views", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("behaviours") as batch:
        batch.drop_column("views")
