"""login links: an `open_instance` link names the instance it opens and the dashboard session
that asked for it (the instance host's session ends with that one)

Revision ID: 0010
Revises: 0009
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("login_links") as batch:
        batch.add_column(sa.Column("instance_id", sa.Uuid(), nullable=True))
        batch.add_column(sa.Column("session_id", sa.Uuid(), nullable=True))
        batch.create_foreign_key(op.f("fk_login_links_instance_id_instances"), "instances", ["instance_id"], ["id"],
                                 ondelete="CASCADE")
        batch.create_foreign_key(op.f("fk_login_links_session_id_api_tokens"), "api_tokens", ["session_id"], ["id"],
                                 ondelete="CASCADE")


def downgrade() -> None:
    with op.batch_alter_table("login_links") as batch:
        batch.drop_constraint(op.f("fk_login_links_session_id_api_tokens"), type_="foreignkey")
        batch.drop_constraint(op.f("fk_login_links_instance_id_instances"), type_="foreignkey")
        batch.drop_column("session_id")
        batch.drop_column("instance_id")
