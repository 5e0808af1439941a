"""What the Productions UI shows, read from the ledger in a few grouped queries.

``production_lines``: every production of the ledger on one line each (status, files by
status, jobs running, files that need a person, last activity), from four GROUP BY
queries whatever the number of productions. The drill-downs, one production at a time:
``transformation_jobs`` (jobs by site and status, failure classes), ``problem_files``
(the files that need a person with their last job), ``task_detail`` (a task's files,
jobs and outputs) and ``chunk_tasks`` (the tasks an Airflow chunk task instance manages).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session, aliased, sessionmaker

from ctaoflow.engine.ledger import (EventRow, FileRow, FileStatus, JobRow, JobStatusName,
                                    ProductionRow, TaskRow, TransformationRow, session_factory)
from ctaoflow.ops.report import redact

NEEDS_A_PERSON = (FileStatus.PROBLEMATIC.value, FileStatus.MAXRESET.value)
RUNNING = (JobStatusName.SUBMITTING.value, JobStatusName.SUBMITTED.value)
FEW = 1000  # transformations counted by their own index ranges rather than a full scan
_NIGHT_NAME = re.compile(r"^(?P<dag>[^.]+)\.(?P<night>\d{8})\.(?P<version>.+)$")  # spec.nights


@dataclass
class ProductionLine:
    """One production of the ledger as the list shows it."""

    name: str  # the ledger's name: the DAG id, or DAG.YYYYMMDD.version for a night
    dag_id: str
    night: str | None
    version: str | None
    status: str
    files: dict[str, int] = field(default_factory=dict)
    running: int = 0
    last_activity: dt.datetime | None = None

    @property
    def total(self) -> int:
        return sum(n for status, n in self.files.items() if status != FileStatus.REMOVED.value)

    @property
    def processed(self) -> int:
        return self.files.get(FileStatus.PROCESSED.value, 0)

    @property
    def needs_a_person(self) -> int:
        return sum(self.files.get(s, 0) for s in NEEDS_A_PERSON)


def dag_of(ledger_name: str) -> tuple[str, str | None, str | None]:
    """(DAG id, night, version) of a ledger production name."""
    found = _NIGHT_NAME.match(ledger_name)
    return (found["dag"], found["night"], found["version"]) if found else (ledger_name, None, None)


def production_lines(sessions: sessionmaker[Session] | None = None,
                     dag_ids: set[str] | None = None) -> list[ProductionLine]:
    """Every production (of ``dag_ids`` when given), by name: one scan of the files'
    (transformation, status) index, whatever the number of productions; only the
    chosen transformations' part of it when they are few (one DAG's nights)."""
    with (sessions or session_factory())() as session:
        lines: dict[int, ProductionLine] = {}
        for pid, name, status in session.execute(
                select(ProductionRow.id, ProductionRow.name, ProductionRow.status)):
            dag_id, night, version = dag_of(name)
            if dag_ids is None or dag_id in dag_ids:
                lines[pid] = ProductionLine(name, dag_id, night, version, status)
        production_of = {tid: pid for tid, pid in session.execute(
            select(TransformationRow.id, TransformationRow.production_id)) if pid in lines}
        counts = (select(FileRow.transformation_id, FileRow.status, func.count())
                  .group_by(FileRow.transformation_id, FileRow.status))
        if len(production_of) <= FEW:  # their index ranges only, not every file
            counts = counts.where(FileRow.transformation_id.in_(production_of))
        for tid, status, n in session.execute(counts):  # the covering index, no join
            if tid in production_of:
                line = lines[production_of[tid]]
                line.files[status] = line.files.get(status, 0) + n
        by_production = TransformationRow.production_id
        for pid, n in session.execute(
                select(by_production, func.count())
                .join(TaskRow, TaskRow.transformation_id == TransformationRow.id)
                .join(JobRow, JobRow.task_id == TaskRow.id)
                .where(JobRow.status.in_(RUNNING)).group_by(by_production)):
            if pid in lines:
                lines[pid].running = n
        for pid, at in session.execute(
                select(by_production, func.max(EventRow.at))
                .join(EventRow, EventRow.transformation_id == TransformationRow.id)
                .group_by(by_production)):
            if pid in lines:
                lines[pid].last_activity = at
    return sorted(lines.values(), key=lambda line: line.name)


def _production_id(session: Session, name: str) -> int | None:
    return session.scalar(select(ProductionRow.id).where(ProductionRow.name == name))


def transformation_jobs(name: str, sessions: sessionmaker[Session] | None = None,
                        ) -> dict[str, dict[str, Any]]:
    """Per transformation of the ledger production ``name``: its status, jobs by site and
    status (``sites``) and failed jobs by failure class (``classes``)."""
    with (sessions or session_factory())() as session:
        pid = _production_id(session, name)
        found: dict[str, dict[str, Any]] = {
            t: {"status": s, "sites": {}, "classes": {}} for t, s in session.execute(
                select(TransformationRow.name, TransformationRow.status)
                .where(TransformationRow.production_id == pid))}
        joined = (select(TransformationRow.name)
                  .join(TaskRow, TaskRow.transformation_id == TransformationRow.id)
                  .join(JobRow, JobRow.task_id == TaskRow.id)
                  .where(TransformationRow.production_id == pid))
        for t, site, status, n in session.execute(
                joined.add_columns(JobRow.site, JobRow.status, func.count())
                .group_by(TransformationRow.name, JobRow.site, JobRow.status)):
            found[t]["sites"].setdefault(site, {})[status] = n
        for t, cls, n in session.execute(
                joined.add_columns(JobRow.failure_class, func.count())
                .where(JobRow.failure_class.is_not(None))
                .group_by(TransformationRow.name, JobRow.failure_class)):
            found[t]["classes"][cls] = n
    return found


def _last_jobs() -> Any:
    """Each task's last job: the highest attempt (a subquery joined on task id)."""
    last = (select(JobRow.task_id, func.max(JobRow.attempt).label("attempt"))
            .group_by(JobRow.task_id).subquery())
    job = aliased(JobRow)
    return last, job


def problem_files(name: str, transformation: str | None = None,
                  sessions: sessionmaker[Session] | None = None,
                  limit: int = 1000) -> list[dict[str, Any]]:
    """The files that need a person (Problematic, MaxReset) with their error count and the
    last job of the task that set them aside: its site, failure class and exit code."""
    last, job = _last_jobs()
    query = (select(TransformationRow.name, FileRow.lfn, FileRow.status, FileRow.error_count,
                    TaskRow.index, job.name, job.site, job.failure_class, job.exit_code)
             .join(FileRow, FileRow.transformation_id == TransformationRow.id)
             .join(ProductionRow, ProductionRow.id == TransformationRow.production_id)
             .outerjoin(TaskRow, TaskRow.id == FileRow.task_id)
             .outerjoin(last, last.c.task_id == FileRow.task_id)
             .outerjoin(job, and_(job.task_id == last.c.task_id, job.attempt == last.c.attempt))
             .where(ProductionRow.name == name, FileRow.status.in_(NEEDS_A_PERSON))
             .order_by(TransformationRow.name, FileRow.lfn).limit(limit))
    if transformation:
        query = query.where(TransformationRow.name == transformation)
    keys = ("transformation", "lfn", "status", "errors", "task", "job", "site", "class",
            "exit_code")
    with (sessions or session_factory())() as session:
        return [dict(zip(keys, row)) for row in session.execute(query)]


def _task(session: Session, name: str, transformation: str, index: int) -> TaskRow | None:
    return session.scalar(select(TaskRow).join(TransformationRow).join(ProductionRow).where(
        ProductionRow.name == name, TransformationRow.name == transformation,
        TaskRow.index == index))


def task_detail(name: str, transformation: str, index: int,
                sessions: sessionmaker[Session] | None = None) -> dict[str, Any] | None:
    """One task: its status, chunk, files, every job (batch id, site, exit code, log tail,
    secrets masked) and its registered outputs; None when there is no such task."""
    with (sessions or session_factory())() as session:
        task = _task(session, name, transformation, index)
        if task is None:
            return None
        files = session.execute(select(FileRow.lfn, FileRow.status, FileRow.error_count)
                                .where(FileRow.task_id == task.id)
                                .order_by(FileRow.lfn)).all()
        jobs = session.scalars(select(JobRow).where(JobRow.task_id == task.id)
                               .order_by(JobRow.attempt)).all()
        return {
            "transformation": transformation, "index": task.index, "chunk": task.chunk,
            "status": task.status, "attempts": task.attempts, "run": task.run,
            "group": task.group, "message": task.message, "outputs": list(task.outputs),
            "files": [{"lfn": lfn, "status": s, "errors": e} for lfn, s, e in files],
            "jobs": [{"name": j.name, "attempt": j.attempt, "site": j.site,
                      "batch_id": j.backend_id, "status": j.status, "state": j.state,
                      "exit_code": j.exit_code, "class": j.failure_class,
                      "reason": redact(j.reason), "log": redact(j.log_tail),
                      "submitted_at": j.submitted_at, "finished_at": j.finished_at}
                     for j in jobs]}


def chunk_tasks(name: str, transformation: str, chunk: int,
                sessions: sessionmaker[Session] | None = None) -> list[dict[str, Any]]:
    """The tasks of one chunk (one Airflow chunk task instance) with their last job."""
    last, job = _last_jobs()
    with (sessions or session_factory())() as session:
        rows = session.execute(
            select(TaskRow.index, TaskRow.status, TaskRow.attempts, job.name, job.site,
                   job.backend_id, job.status, job.exit_code)
            .select_from(TaskRow)
            .join(TransformationRow, TransformationRow.id == TaskRow.transformation_id)
            .join(ProductionRow, ProductionRow.id == TransformationRow.production_id)
            .outerjoin(last, last.c.task_id == TaskRow.id)
            .outerjoin(job, and_(job.task_id == last.c.task_id, job.attempt == last.c.attempt))
            .where(ProductionRow.name == name, TransformationRow.name == transformation,
                   TaskRow.chunk == chunk).order_by(TaskRow.index)).all()
    keys = ("task", "status", "attempts", "job", "site", "batch_id", "job_status", "exit_code")
    return [dict(zip(keys, row)) for row in rows]

