"""Billing: subscriptions as read from Stripe, and the outbox of what billing changes cause.

Revision ID: 0011
Revises: 0010
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import db.types

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("subscriptions") as batch:
        batch.add_column(sa.Column("stripe_price_id", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column("ended_at", db.types.UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("synced_at", db.types.UTCDateTime(timezone=True), nullable=True))
    op.create_table(
        "outbox_effects",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("payload", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_attempt_at", db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("done_at", db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("given_up_at", db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_outbox_effects_user_id_users"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_effects")),
        sa.UniqueConstraint("key", name=op.f("uq_outbox_effects_key")),
    )
    op.create_index("ix_outbox_effects_pending", "outbox_effects", ["done_at", "next_attempt_at"])


def downgrade() -> None:
    op.drop_index("ix_outbox_effects_pending", table_name="outbox_effects")
    op.drop_table("outbox_effects")
    with op.batch_alter_table("subscriptions") as batch:
        batch.drop_column("synced_at")
        batch.drop_column("ended_at")
        batch.drop_column("stripe_price_id")
