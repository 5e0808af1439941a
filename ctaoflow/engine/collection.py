"""Collection: final job states into the ledger.

Done jobs have their outputs registered in one bulk catalog call; failed jobs are
classified (infrastructure, data, application) and retried or given up; a site whose
recent jobs all failed for its own reasons is paused and the production's jobs queued
there are cancelled, so their chunks retry them elsewhere.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ctaoflow.backends.base import BackendError, JobState, JobStatus
from ctaoflow.catalog.base import OutputFile
from ctaoflow.engine import outbox
from ctaoflow.engine.context import Context, chunk_jobs, event, task_files
from ctaoflow.engine.failures import APPLICATION, DATA, INFRASTRUCTURE, classify
from ctaoflow.engine.jobs import TaskInputs, planned_outputs
from ctaoflow.engine.ledger import (FileRow, FileStatus, JobRow, JobStatusName, SiteRow,
                                    TaskRow, TaskStatus, TransformationRow, now)
from ctaoflow.spec.model import Transformation

PAUSE_STREAK = 5  # infrastructure failures in a row that pause a site
PAUSE = dt.timedelta(minutes=30)


def collect(ctx: Context, name: str, chunk: int,
            statuses: dict[str, dict[str, JobStatus]]) -> None:
    """Record final job states: register outputs of done jobs, retry or fail others."""
    t = ctx.production.transformation(name)
    with ctx.sessions() as session:
        row = ctx.row(session, name)
        done: list[tuple[JobRow, list[OutputFile]]] = []
        paused: set[str] = set()  # sites this collection paused
        for job in session.scalars(chunk_jobs(row, chunk, JobStatusName.SUBMITTED)).all():
            status = statuses.get(job.site, {}).get(job.backend_id)
            if status is None or not status.state.final:
                continue
            if status.state is JobState.DONE:
                outputs = _outputs_of(ctx, session, t, job)
                missing = [o.lfn for o in outputs if not Path(o.path).exists()]
                if not missing:
                    done.append((job, outputs))
                    continue
                status = JobStatus(JobState.FAILED, 0, f"declared output missing: {missing[0]}")
            job.log_tail = _log_tail(ctx, job)
            if site := job_finished(ctx, session, row, job, status):
                paused.add(site)
        session.commit()
        for site in sorted(paused):
            _move_queued(ctx, session, row, site)
        if done:
            storage = t.storage or ctx.production.defaults.storage
            dataset = f"{ctx.production.output_base}/{t.name}"
            ctx.catalog.register([o for _, outs in done for o in outs], storage, dataset)
            for job, outputs in done:
                job_finished(ctx, session, row, job, JobStatus(JobState.DONE, 0),
                             [o.lfn for o in outputs])
            event(session, row, "done", f"{len(done)} jobs done, outputs registered")
            session.commit()


def job_finished(ctx: Context, session: Session, row: TransformationRow, job: JobRow,
                 status: JobStatus, outputs: list[str] | None = None) -> str | None:
    """Record a final job state and decide its task's fate; returns the job's site
    when this failure paused it."""
    t = ctx.production.transformation(row.name)
    task = session.get(TaskRow, job.task_id)
    job.state, job.exit_code, job.finished_at = status.state.value, status.exit_code, now()
    job.reason = status.reason
    if status.state is JobState.DONE:
        job.status, task.status, task.outputs = (JobStatusName.DONE.value,
                                                 TaskStatus.DONE.value, outputs or [])
        processed = session.execute(update(FileRow).where(FileRow.task_id == task.id)
                                    .values(status=FileStatus.PROCESSED.value)).rowcount
        outbox.jobs(session, [job])
        outbox.files(session, row.id, [(task.id, FileStatus.PROCESSED.value, processed)])
        return None
    job.status = (JobStatusName.KILLED if status.state is JobState.CANCELLED
                  else JobStatusName.FAILED).value
    job.failure_class, decided_by = classify(status, job.log_tail, t.type)
    outbox.jobs(session, [job])
    detail = f"{status.state.value} exit {status.exit_code} ({decided_by})"
    if status.reason:
        detail += f": {status.reason}"
    event(session, row, "failed", f"job {job.name} at {job.site}: "
                                  f"{job.failure_class} {detail}")
    failures = Counter(session.scalars(select(JobRow.failure_class).where(
        JobRow.task_id == task.id, JobRow.failure_class.is_not(None))))
    defaults = ctx.production.defaults
    if job.failure_class == INFRASTRUCTURE:
        retry = failures[INFRASTRUCTURE] <= defaults.max_infrastructure_retries
    else:  # application, or data (an unreadable replica: retried elsewhere)
        retry = failures[job.failure_class] < (t.max_attempts or defaults.max_attempts)
    if retry:
        task.status = TaskStatus.CREATED.value  # resubmitted by the next round
    else:
        give_up(ctx, session, row, task, job.failure_class, detail)
    return job.site if _maybe_pause(session, job.site) else None


def give_up(ctx: Context, session: Session, row: TransformationRow, task: TaskRow,
            failure_class: str, message: str) -> None:
    """The task failed for good; its files are reset (error counted) or set aside.

    Application failures reset the files up to ``max_reassign`` times, then they go
    Problematic; data failures go Problematic; infrastructure failures
    reset them up to ``max_resets`` times, then MaxReset.
    """
    defaults = ctx.production.defaults
    task.status, task.message = TaskStatus.FAILED.value, f"{failure_class}: {message}"
    files = session.scalars(select(FileRow).where(FileRow.task_id == task.id)).all()
    for f in files:
        f.error_count += 1
        if failure_class == DATA or (failure_class == APPLICATION
                                     and f.error_count >= defaults.max_reassign):
            f.status = FileStatus.PROBLEMATIC.value
        elif f.error_count >= defaults.max_resets:
            f.status = FileStatus.MAXRESET.value
        else:
            f.status = FileStatus.UNUSED.value
    outbox.files(session, row.id, [(task.id, status, count) for status, count
                                   in Counter(f.status for f in files).items()])
    event(session, row, "task_failed", f"task {task.index}: {task.message}")


def _log_tail(ctx: Context, job: JobRow, size: int = 4000) -> str:
    """The end of a failed job's log, kept in the ledger for classification and reports."""
    try:
        return ctx.backend(job.site).log(job.backend_id, size)[-size:]
    except (BackendError, OSError, KeyError) as exc:
        return f"(log unavailable: {exc})"


def _outputs_of(ctx: Context, session: Session, t: Transformation,
                job: JobRow) -> list[OutputFile]:
    task = session.get(TaskRow, job.task_id)
    files = task_files(session, [task.id])[task.id]
    return planned_outputs(ctx.production, t, TaskInputs(task.index, files, task.run,
                                                         task.group), job.workdir)


def _maybe_pause(session: Session, site: str) -> bool:
    """Pause a site whose last ``PAUSE_STREAK`` finished jobs all failed for its own
    reasons; True when this call paused it."""
    last = session.scalars(select(JobRow.failure_class).where(
        JobRow.site == site, JobRow.finished_at.is_not(None))
        .order_by(JobRow.finished_at.desc(), JobRow.id.desc()).limit(PAUSE_STREAK)).all()
    if len(last) == PAUSE_STREAK and all(c == INFRASTRUCTURE for c in last):
        row = session.get(SiteRow, site) or SiteRow(name=site)
        if not row.paused_until or row.paused_until < now():
            row.paused_until = now() + PAUSE
            row.reason = f"{PAUSE_STREAK} infrastructure failures in a row"
            session.add(row)
            event(session, None, "site_paused", f"{site}: {row.reason}")
            return True
    return False


def _move_queued(ctx: Context, session: Session, row: TransformationRow, site: str) -> None:
    """Cancel this production's jobs still queued at a just-paused site (one poll, one
    cancel): their chunks see them CANCELLED, an infrastructure failure, and retry
    them at once elsewhere. The pause is committed first; jobs already running stay."""
    if site not in ctx.sites:
        return
    ours = (select(TransformationRow.id)
            .where(TransformationRow.production_id == row.production_id))
    ids = list(session.scalars(select(JobRow.backend_id).join(
        TaskRow, JobRow.task_id == TaskRow.id).where(
        JobRow.site == site, JobRow.status == JobStatusName.SUBMITTED.value,
        TaskRow.transformation_id.in_(ours))))
    if not ids:
        return
    try:
        backend = ctx.backend(site)
        queued = [i for i, s in backend.poll(ids).items() if s.state is JobState.PENDING]
        backend.cancel(queued)
    except BackendError as exc:  # they run where they are
        event(session, row, "move_failed", f"{site}: {exc}")
    else:
        event(session, row, "moved", f"{len(queued)} queued job(s) cancelled at "
                                     f"paused site {site}, to run elsewhere")
    session.commit()
