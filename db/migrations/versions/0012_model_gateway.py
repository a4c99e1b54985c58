"""The model gateway: each instance's credential for it and whose key it uses (its owner's, or
the platform's, when none of its own is stored), usage per instance, day, model and key, and
each user's spending cap.

Revision ID: 0012
Revises: 0011
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("instances") as batch:
        batch.add_column(sa.Column("model_credential_sealed", sa.Text(), nullable=True))
        batch.add_column(sa.Column("model_credential_hash", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("key_source", sa.String(length=16), server_default="own", nullable=False))
        batch.alter_column("api_key_sealed", existing_type=sa.Text(), nullable=True)
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("spend_cap_micro_usd", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("spend_warned_month", sa.String(length=7), nullable=True))
        batch.add_column(sa.Column("spend_stopped_month", sa.String(length=7), nullable=True))
        batch.add_column(sa.Column("included_stopped_month", sa.String(length=7), nullable=True))
    with op.batch_alter_table("onboarding_drafts") as batch:
        batch.add_column(sa.Column("use_platform_key", sa.Boolean(), server_default=sa.false(), nullable=False))
    op.create_table(
        "model_usage",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("instance_id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("provider", sa.String(length=64), nullable=False),
        sa.Column("model", sa.String(length=128), nullable=False),
        sa.Column("key_source", sa.String(length=16), nullable=False),
        sa.Column("input_tokens", sa.BigInteger(), nullable=False),
        sa.Column("output_tokens", sa.BigInteger(), nullable=False),
        sa.Column("cache_read_tokens", sa.BigInteger(), nullable=False),
        sa.Column("cache_write_tokens", sa.BigInteger(), nullable=False),
        sa.Column("requests", sa.Integer(), nullable=False),
        sa.Column("errors", sa.Integer(), nullable=False),
        sa.Column("cost_micro_usd", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_model_usage_user_id_users"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_usage")),
        sa.UniqueConstraint("instance_id", "day", "model", "key_source", name="uq_model_usage_instance_day_model"),
    )
    op.create_index("ix_model_usage_user_id_day", "model_usage", ["user_id", "day"])


def downgrade() -> None:
    op.drop_index("ix_model_usage_user_id_day", table_name="model_usage")
    op.drop_table("model_usage")
    with op.batch_alter_table("onboarding_drafts") as batch:
        batch.drop_column("use_platform_key")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("included_stopped_month")
        batch.drop_column("spend_stopped_month")
        batch.drop_column("spend_warned_month")
        batch.drop_column("spend_cap_micro_usd")
    with op.batch_alter_table("instances") as batch:
        batch.alter_column("api_key_sealed", existing_type=sa.Text(), nullable=False)
        batch.drop_column("key_source")
        batch.drop_column("model_credential_hash")
        batch.drop_column("model_credential_sealed")
