"""Operators: the acting operator named in the audit log (and its pages newest first), an
admin's suspension of an instance kept apart from billing's, the setup link that is bound to no
user until it is redeemed, and broadcasts with one delivery per recipient.

Revision ID: 0016
Revises: 0015
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import db.types

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("audit_logs") as batch:
        batch.alter_column("actor", existing_type=sa.String(length=64), type_=sa.String(length=330),
                           existing_nullable=False)
    op.create_index("ix_audit_logs_created_at", "audit_logs", ["created_at"])
    op.create_index("ix_users_created_at", "users", ["created_at"])
    op.create_index("ix_instances_created_at", "instances", ["created_at"])
    with op.batch_alter_table("instances") as batch:
        batch.add_column(sa.Column("admin_suspended_at", db.types.UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("admin_suspended_from", sa.String(length=32), nullable=True))
    with op.batch_alter_table("login_links") as batch:
        batch.alter_column("user_id", existing_type=sa.Uuid(), nullable=True)
    op.create_table(
        "broadcasts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("actor", sa.String(length=320), nullable=False),
        sa.Column("recipients", sa.Integer(), nullable=False),
        sa.Column("created_at", db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", db.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["created_by"], ["users.id"], name=op.f("fk_broadcasts_created_by_users"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_broadcasts")),
    )
    op.create_index("ix_broadcasts_created_at", "broadcasts", ["created_at"])
    op.create_table(
        "broadcast_deliveries",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("broadcast_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("updated_at", db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["broadcast_id"], ["broadcasts.id"],
                                name=op.f("fk_broadcast_deliveries_broadcast_id_broadcasts"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_broadcast_deliveries_user_id_users"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_broadcast_deliveries")),
        sa.UniqueConstraint("broadcast_id", "user_id", name="uq_broadcast_deliveries_broadcast_id_user_id"),
    )
    op.create_index("ix_broadcast_deliveries_state", "broadcast_deliveries", ["broadcast_id", "state"])


def downgrade() -> None:
    op.drop_index("ix_broadcast_deliveries_state", table_name="broadcast_deliveries")
    op.drop_table("broadcast_deliveries")
    op.drop_index("ix_broadcasts_created_at", table_name="broadcasts")
    op.drop_table("broadcasts")
    op.execute("DELETE FROM login_links WHERE user_id IS NULL")
    with op.batch_alter_table("login_links") as batch:
        batch.alter_column("user_id", existing_type=sa.Uuid(), nullable=False)
    with op.batch_alter_table("instances") as batch:
        batch.drop_column("admin_suspended_from")
        batch.drop_column("admin_suspended_at")
    op.drop_index("ix_instances_created_at", table_name="instances")
    op.drop_index("ix_users_created_at", table_name="users")
    op.drop_index("ix_audit_logs_created_at", table_name="audit_logs")
    with op.batch_alter_table("audit_logs") as batch:
        batch.alter_column("actor", existing_type=sa.String(length=330), type_=sa.String(length=64),
                           existing_nullable=False)
