"""videos: the fields view / view/detail / the lists carry beyond the basics (2025 partition, paywall,
honours, co-creators, bilibili's title segmentation, list reason, copyright, portrait)

Revision ID: 0007f
Revises: 0006c
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = "0007f"
down_revision = "0006c"
branch_labels = None
depends_on = None

_COLUMNS = (
    ("tid_v2", lambda: sa.Column("tid_v2", sa.Integer(), nullable=False, server_default="0")),
    ("tname_v2", lambda: sa.Column("tname_v2", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False,
                                   server_default="")),
    ("copyright", lambda: sa.Column("copyright", sa.Integer(), nullable=False, server_default="0")),
    ("vertical", lambda: sa.Column("vertical", sa.Boolean(), nullable=False, server_default=sa.false())),
    ("paid", lambda: sa.Column("paid", sa.Boolean(), nullable=False, server_default=sa.false())),
    ("upower_exclusive", lambda: sa.Column("upower_exclusive", sa.Boolean(), nullable=False,
                                           server_default=sa.false())),
    ("honors", lambda: sa.Column("honors", sa.Integer(), nullable=False, server_default="0")),
    ("top_rank", lambda: sa.Column("top_rank", sa.Integer(), nullable=False, server_default="0")),
    ("staff", lambda: sa.Column("staff", sa.Text(), nullable=False, server_default="[]")),
    ("participle", lambda: sa.Column("participle", sa.Text(), nullable=False, server_default="[]")),
    ("rcmd_reason", lambda: sa.Column("rcmd_reason", sa.Text(), nullable=False, server_default="")),
)


def upgrade() -> None:
    with op.batch_alter_table("videos") as batch:
        for _, column in _COLUMNS:
            batch.add_column(column())


def downgrade() -> None:
    with op.batch_alter_table("videos") as batch:
        for name, _ in reversed(_COLUMNS):
            batch.drop_column(name)
