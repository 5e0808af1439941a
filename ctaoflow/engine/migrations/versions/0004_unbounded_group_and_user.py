"""A task's group (a ``by_metadata`` value, any length) and an outbox row's user (an
operator's name, e.g. a long DN) as TEXT: PostgreSQL refused values past 256 and 64
characters, which SQLite stored."""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":  # SQLite ignores a VARCHAR's length
        op.alter_column("tasks", "group", type_=sa.Text(), existing_nullable=True)
        op.alter_column("outbox", "user", type_=sa.Text(), existing_nullable=True)
