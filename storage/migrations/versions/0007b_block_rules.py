"""block_rules: each user's "never show me this" rules (uploader, tag, keyword, regex, partition, duration)

Revision ID: 0007b
Revises: 0007d
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = "0007b"
down_revision = "0007d"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "block_rules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("label", sa.Text(), nullable=False),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("user_id", "kind", "value", name="uq_block_rule"),
    )
    op.create_index(op.f("ix_block_rules_user_id"), "block_rules", ["user_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_block_rules_user_id"), table_name="block_rules")
    op.drop_table("block_rules")
