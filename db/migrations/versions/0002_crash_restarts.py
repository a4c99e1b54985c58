"""crash restarts: failure streak, next attempt, restart count, readiness timestamps

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import db.types

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("instances") as batch:
        batch.add_column(sa.Column("failure_streak", sa.Integer(), server_default="0", nullable=False))
        batch.add_column(sa.Column("next_attempt_at", db.types.UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("restart_count", sa.Integer(), server_default="0", nullable=False))
        batch.add_column(sa.Column("running_since", db.types.UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("not_ready_since", db.types.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("instances") as batch:
        for column in ("not_ready_since", "running_since", "restart_count", "next_attempt_at", "failure_streak"):
            batch.drop_column(column)
