"""Operator actions on a production's ledger: reset, flush, stop, start, extend.

Each is one transaction and leaves an event. Called by the CLI; the UI plugin can call
the same functions.
"""

from __future__ import annotations

import getpass
import os

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from ctaoflow.engine import outbox
from ctaoflow.engine.context import event
from ctaoflow.engine.ledger import (FileRow, FileStatus, JobRow, ProductionRow,
                             TransformationRow, TransformationStatus, session_factory)
from ctaoflow.spec.model import Production


MAX_RUN = 2**31 - 1  # run numbers and counts are 32-bit integers in the ledger


class OperationError(ValueError):
    """An operation that cannot apply; the message is one line with the fix."""


def _rows(session: Session, production: Production,
          transformation: str | None = None) -> list[TransformationRow]:
    rows = session.scalars(select(TransformationRow).join(ProductionRow)
                           .where(ProductionRow.name == production.production,
                                  TransformationRow.status
                                  != TransformationStatus.REMOVED.value)).all()
    if not rows:
        raise OperationError(f"production {production.production!r} has not run yet: "
                             "nothing in the ledger")
    if transformation is None:
        return list(rows)
    chosen = [r for r in rows if r.name == transformation]
    if not chosen:
        raise OperationError(f"no transformation {transformation!r} in production "
                             f"{production.production!r}; one of: "
                             f"{', '.join(r.name for r in rows)}")
    return chosen


def _event(session: Session, row: TransformationRow, kind: str, message: str) -> None:
    event(session, row, kind, message, user=_user())  # with its monitoring document


def _user() -> str:
    """Who acts: ``$CTAOFLOW_USER`` (set by a UI or service acting for someone), else the
    login name."""
    try:
        return os.environ.get("CTAOFLOW_USER") or getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def reset(production: Production, transformation: str | None = None, site: str | None = None,
          failure_class: str | None = None,
          statuses: tuple[str, ...] = (FileStatus.PROBLEMATIC.value, FileStatus.MAXRESET.value),
          sessions: sessionmaker | None = None) -> int:
    """Put files back to Unused with a fresh error budget; returns how many.

    ``site`` and ``failure_class`` select files by the last job of the task that set
    them aside. The next ``prepare`` groups them into new tasks.
    """
    with (sessions or session_factory()).begin() as session:
        count = 0
        for row in _rows(session, production, transformation):
            before = count
            files = session.scalars(select(FileRow).where(
                FileRow.transformation_id == row.id, FileRow.status.in_(statuses))).all()
            for f in files:
                if site or failure_class:
                    last = session.scalars(select(JobRow).where(JobRow.task_id == f.task_id)
                                           .order_by(JobRow.attempt.desc())).first()
                    if last is None or (site and last.site != site) or (
                            failure_class and last.failure_class != failure_class):
                        continue
                f.status, f.task_id, f.error_count = FileStatus.UNUSED.value, None, 0
                count += 1
            if count:
                _event(session, row, "reset", f"{count} files reset to Unused by hand")
                outbox.files(session, row.id, [(None, FileStatus.UNUSED.value, count - before)])
            if row.status == TransformationStatus.COMPLETED.value and count:
                row.status = TransformationStatus.ACTIVE.value
        return count


def flush(production: Production, transformation: str,
          sessions: sessionmaker | None = None) -> None:
    """The next ``prepare`` emits partial groups (the tail) whatever the parents say."""
    with (sessions or session_factory()).begin() as session:
        (row,) = _rows(session, production, transformation)
        if row.status == TransformationStatus.STOPPED.value:
            raise OperationError(f"{transformation} is stopped; start the production first")
        row.status = TransformationStatus.FLUSH.value
        _event(session, row, "flush", "flushed by hand")


def stop(production: Production, sessions: sessionmaker | None = None) -> None:
    """Stop every transformation: ``prepare`` submits nothing until ``start``."""
    _set_status(production, TransformationStatus.STOPPED, "Stopped", sessions)


def start(production: Production, sessions: sessionmaker | None = None) -> None:
    """Make a stopped production active again."""
    _set_status(production, TransformationStatus.ACTIVE, "Active", sessions)


def _set_status(production: Production, status: TransformationStatus, label: str,
                sessions: sessionmaker | None) -> None:
    with (sessions or session_factory()).begin() as session:
        rows = _rows(session, production)
        for row in rows:
            if row.status != status.value:
                _event(session, row, "status", f"{row.status} -> {status.value} by hand")
                row.status = status.value
        production_row = session.get(ProductionRow, rows[0].production_id)
        if production_row.status != label:
            outbox.production(session, production_row.id, label)
        production_row.status = label


def run_count(text: str) -> int:
    """A number of runs as typed by a person: a whole positive number, else one line."""
    try:
        runs = int(text.strip().replace("_", ""), 10)
    except ValueError:
        raise OperationError(f"extend by {text[:40]!r} runs: give a whole positive number of "
                             "runs, e.g. 1000") from None
    if runs < 1:
        raise OperationError(f"extend by {runs} runs: give a positive number")
    return runs


def extend(production: Production, transformation: str, runs: int,
           sessions: sessionmaker | None = None) -> int:
    """Add ``runs`` MC runs to an MC simulation; returns its new target."""
    spec = production.transformation(transformation) if transformation in {
        t.name for t in production.transformations} else None
    if spec is not None and spec.type != "mc_simulation":
        raise OperationError(f"{transformation} is a {spec.type} transformation; "
                             "only mc_simulation can be extended")
    if runs < 1:
        raise OperationError(f"extend by {runs} runs: give a positive number")
    with (sessions or session_factory()).begin() as session:
        (row,) = _rows(session, production, transformation)
        assert spec is not None and spec.runs is not None
        # failed runs are replaced by new numbers: up to start + 2 * target
        room = (MAX_RUN - spec.runs.start) // 2 - spec.runs.count - row.extra_runs
        if runs > room:
            raise OperationError(f"extend {transformation} by {runs} runs: beyond the run "
                                 f"numbers the ledger holds; give at most {max(room, 0)}")
        row.extra_runs += runs
        if row.status == TransformationStatus.COMPLETED.value:
            row.status = TransformationStatus.ACTIVE.value
        _event(session, row, "extend", f"{runs} more runs")
        return spec.runs.count + row.extra_runs
