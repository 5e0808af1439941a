"""The schema of commit 0129e06, made by ``create_all`` before Alembic: a ledger of that
version is stamped here, a new ledger is created at head directly."""

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Nothing: a ledger is never built from here (see ``migrations.upgrade``)."""
