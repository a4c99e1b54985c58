"""Gateways' memory and CPU samples: a day of them per instance for its chart, and each one's
latest in a table of its own (one row per instance, cheap to read).

Revision ID: 0015
Revises: 0014
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import db.types

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "resource_samples",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("instance_id", sa.Uuid(), nullable=False),
        sa.Column("taken_at", db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("memory_bytes", sa.BigInteger(), nullable=False),
        sa.Column("cpu_percent", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(["instance_id"], ["instances.id"], name=op.f("fk_resource_samples_instance_id_instances"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_resource_samples")),
    )
    with op.batch_alter_table("resource_samples") as batch:
        batch.create_index("ix_resource_samples_instance_id_taken_at", ["instance_id", "taken_at"])
        batch.create_index("ix_resource_samples_taken_at", ["taken_at"])
    op.create_table(
        "latest_resource_samples",
        sa.Column("instance_id", sa.Uuid(), nullable=False),
        sa.Column("taken_at", db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("memory_bytes", sa.BigInteger(), nullable=False),
        sa.Column("cpu_seconds", sa.Float(), nullable=False),
        sa.Column("cpu_percent", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(["instance_id"], ["instances.id"],
                                name=op.f("fk_latest_resource_samples_instance_id_instances"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("instance_id", name=op.f("pk_latest_resource_samples")),
    )


def downgrade() -> None:
    op.drop_table("latest_resource_samples")
    with op.batch_alter_table("resource_samples") as batch:
        batch.drop_index("ix_resource_samples_taken_at")
        batch.drop_index("ix_resource_samples_instance_id_taken_at")
    op.drop_table("resource_samples")
