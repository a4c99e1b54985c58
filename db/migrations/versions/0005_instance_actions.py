"""instance actions: the action holding the lease, cancel requests, resources given, hibernated

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import db.types

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen here: a migration states the schema of its day, not whatever the models say later.
BEFORE = ("awaiting_payment", "provisioning", "running", "stopped", "error", "suspended", "deleting")
AFTER = ("awaiting_payment", "provisioning", "running", "stopped", "hibernated", "error", "suspended", "deleting")


def _known(statuses: tuple[str, ...]) -> str:
    return "status IN (" + ", ".join(f"'{s}'" for s in statuses) + ")"


def upgrade() -> None:
    with op.batch_alter_table("instances") as batch:
        batch.add_column(sa.Column("action", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("cancel_requested_at", db.types.UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("memory_mb", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("cpus", sa.Float(), nullable=True))
        batch.drop_constraint(op.f("ck_instances_status_known"), type_="check")
        batch.create_check_constraint("status_known", _known(AFTER))


def downgrade() -> None:
    with op.batch_alter_table("instances") as batch:
        batch.drop_constraint(op.f("ck_instances_status_known"), type_="check")
        batch.create_check_constraint("status_known", _known(BEFORE))
        for column in ("cpus", "memory_mb", "cancel_requested_at"):
            batch.drop_column(column)
        batch.drop_column("action")
