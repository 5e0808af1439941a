"""Completion: a transformation is Completed when nothing is left and its parents are;
a production when all its transformations are. Counts by status for summaries."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from ctaoflow.engine import outbox
from ctaoflow.engine.context import Context, event
from ctaoflow.engine.intake import parents_complete
from ctaoflow.engine.ledger import (FileRow, FileStatus, JobRow, ProductionRow, TaskRow,
                                    TaskStatus, TransformationRow, TransformationStatus,
                                    session_factory)
from ctaoflow.spec.model import Production

Counts = dict[str, dict[str, int]]


def finalize(ctx: Context, name: str) -> Counts:
    """Complete the transformation when nothing is left; return its counts."""
    t = ctx.production.transformation(name)
    with ctx.sessions.begin() as session:
        row = ctx.row(session, name)
        summary = _counts(session, row)
        pending = sum(summary["files"].get(s.value, 0)
                      for s in (FileStatus.UNUSED, FileStatus.ASSIGNED))
        pending += sum(summary["tasks"].get(s.value, 0)
                       for s in (TaskStatus.CREATED, TaskStatus.SUBMITTED))
        if t.type == "mc_simulation":  # complete when the target of good runs is met
            assert t.runs is not None
            done = summary["tasks"].get(TaskStatus.DONE.value, 0)
            pending += max(0, t.runs.count + row.extra_runs - done)
        if row.status in (TransformationStatus.ACTIVE.value,
                          TransformationStatus.COMPLETED.value):
            complete = not pending and parents_complete(session, row, t)
            status = (TransformationStatus.COMPLETED if complete
                      else TransformationStatus.ACTIVE).value
            if status != row.status:
                event(session, row, "status", f"{row.status} -> {status}")
            row.status = status
        _complete_production(session, row.production_id)
        summary["status"] = {row.status: 1}
        return summary


def summarize(production: Production, sessions: sessionmaker[Session] | None = None,
              ) -> dict[str, Counts]:
    """Files, tasks and jobs by status and the status of each transformation."""
    sessions = sessions or session_factory()
    with sessions() as session:
        rows = {r.name: r for r in session.scalars(
            select(TransformationRow).join(ProductionRow)
            .where(ProductionRow.name == production.production))}
        return {t.name: ({**_counts(session, rows[t.name]), "status": {rows[t.name].status: 1}}
                         if t.name in rows else {"files": {}, "tasks": {}, "jobs": {},
                                                 "status": {"New": 1}})
                for t in production.transformations}


def _complete_production(session: Session, production_id: int) -> None:
    """A production is Completed when all its transformations are."""
    production = session.get(ProductionRow, production_id)
    statuses = set(session.scalars(select(TransformationRow.status)
                                   .where(TransformationRow.production_id == production_id)))
    statuses.discard(TransformationStatus.REMOVED.value)
    if production.status in ("Active", "Completed"):
        status = "Completed" if statuses == {TransformationStatus.COMPLETED.value} else "Active"
        if status != production.status:
            outbox.production(session, production_id, status)
        production.status = status


def _counts(session: Session, row: TransformationRow) -> Counts:
    def by_status(column, *where, join=None):
        query = select(column, func.count())
        if join is not None:
            query = query.join(TaskRow, JobRow.task_id == TaskRow.id)
        return dict(session.execute(query.where(*where).group_by(column)).all())

    return {"files": by_status(FileRow.status, FileRow.transformation_id == row.id),
            "tasks": by_status(TaskRow.status, TaskRow.transformation_id == row.id),
            "jobs": by_status(JobRow.status, TaskRow.transformation_id == row.id, join=True)}
