"""File sizes as 64-bit integers (a 2 GiB file overflows PostgreSQL's integer); each
transformation's last catalog listing time, for incremental intake."""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":  # SQLite's INTEGER is 64-bit already
        op.alter_column("files", "size", type_=sa.BigInteger(), existing_nullable=False)
    op.add_column("transformations", sa.Column("intake_at", sa.DateTime(), nullable=True))
