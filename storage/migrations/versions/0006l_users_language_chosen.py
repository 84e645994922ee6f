"""users.language_chosen: the language picked with /language, kept over Telegram's language_code

Revision ID: 0006l
Revises: 0005t
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = "0006l"
down_revision = "0005t"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("language_chosen", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("language_chosen")
