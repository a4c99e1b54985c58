"""Instance backups uploaded to a bucket: why one is not there yet (an upload not finished, or
the bucket's refusal), so the schedule tries it again.

Revision ID: 0018
Revises: 0017
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("instance_backups") as batch:
        batch.add_column(sa.Column("s3_error", sa.String(length=500), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("instance_backups") as batch:
        batch.drop_column("s3_error")
