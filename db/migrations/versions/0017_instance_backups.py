"""Instance backups: one row per encrypted archive of an instance's OpenClaw state, with its
sealed data key and where it is stored.

Revision ID: 0017
Revises: 0016
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import db.types

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "instance_backups",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("instance_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("openclaw_version", sa.String(length=32), nullable=False),
        sa.Column("data_key_sealed", sa.Text(), nullable=False),
        sa.Column("local_path", sa.String(length=512), nullable=True),
        sa.Column("s3_key", sa.String(length=512), nullable=True),
        sa.Column("created_at", db.types.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('manual', 'scheduled', 'pre-upgrade', 'pre-restore')",
                           name=op.f("ck_instance_backups_kind_known")),
        sa.ForeignKeyConstraint(["instance_id"], ["instances.id"],
                                name=op.f("fk_instance_backups_instance_id_instances"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_instance_backups_user_id_users"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_instance_backups")),
    )
    op.create_index("ix_instance_backups_instance_id_created_at", "instance_backups", ["instance_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_instance_backups_instance_id_created_at", table_name="instance_backups")
    op.drop_table("instance_backups")
