"""login links: a purpose each (login, verify_email, reset_password, link_telegram) and the
email a verify_email link proves

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("login_links") as batch:
        # the links made before this were all dashboard logins
        batch.add_column(sa.Column("purpose", sa.String(length=32), server_default="login", nullable=False))
        batch.add_column(sa.Column("email", sa.String(length=320), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("login_links") as batch:
        batch.drop_column("email")
        batch.drop_column("purpose")
