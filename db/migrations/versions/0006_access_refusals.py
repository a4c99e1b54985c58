"""access: when an email was proven, and who the bot kept out

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import db.types

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("email_verified_at", db.types.UTCDateTime(timezone=True), nullable=True))
    op.create_table(
        "access_refusals",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("telegram_user_id", sa.BigInteger(), nullable=False),
        sa.Column("telegram_username", sa.String(length=64), nullable=True),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("first_seen_at", db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", db.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_refusals")),
        sa.UniqueConstraint("telegram_user_id", name=op.f("uq_access_refusals_telegram_user_id")),
    )
    with op.batch_alter_table("access_refusals") as batch:
        batch.create_index("ix_access_refusals_last_seen_at", ["last_seen_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("access_refusals") as batch:
        batch.drop_index("ix_access_refusals_last_seen_at")
    op.drop_table("access_refusals")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("email_verified_at")
