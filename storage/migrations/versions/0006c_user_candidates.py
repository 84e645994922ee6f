"""user_candidates: each user's own candidates (followed creators' uploads, home feed, related) and their source

Revision ID: 0006c
Revises: 0006l
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = "0006c"
down_revision = "0006l"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "user_candidates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("bvid", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
        sa.Column("seen_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("user_id", "bvid", "source", name="uq_user_candidate"),
    )
    op.create_index(op.f("ix_user_candidates_user_id"), "user_candidates", ["user_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_user_candidates_user_id"), table_name="user_candidates")
    op.drop_table("user_candidates")
