"""Indexes for the Productions UI's grouped counts: files by (transformation, status),
jobs by status (the jobs running), events by transformation (the last activity)."""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_files_transformation_status", "files", ["transformation_id", "status"])
    op.create_index("ix_jobs_status", "jobs", ["status"])
    op.create_index("ix_events_transformation_id", "events", ["transformation_id"])
