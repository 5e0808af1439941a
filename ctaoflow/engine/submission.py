"""Submission: a chunk's tasks become jobs at chosen sites, sent in bulk.

A job row is committed (Submitting) before its site hears of it; sending asks each site
for jobs of those names first (``find``) and submits only the missing ones, so a step
killed anywhere is re-entered without a duplicate.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from ctaoflow.backends.base import BackendError, JobSpec, JobState, JobStatus, SiteConfig
from ctaoflow.engine import collection, outbox
from ctaoflow.engine.context import Context, batches, chunk_jobs, chunk_tasks, event, task_files
from ctaoflow.engine.failures import DATA, INFRASTRUCTURE
from ctaoflow.engine.jobs import TaskInputs, build_job, job_name
from ctaoflow.engine.ledger import (FileRow, FileStatus, JobRow, JobStatusName, ProductionRow,
                                    SiteRow, TaskRow, TaskStatus, TransformationRow, now)
from ctaoflow.spec.model import Transformation
from ctaoflow.spec.query import Query

InFlight = dict[str, list[str]]  # site -> backend job ids


@dataclass
class ChunkResult:
    """What one round of a chunk left: jobs to wait for, tasks done, for each task
    failed for good its reason and the end of its last job's log, and, when tasks wait
    because every site allowed to them is paused, the end of the first pause."""

    in_flight: InFlight = field(default_factory=dict)
    done: int = 0
    failed: list[str] = field(default_factory=list)
    held_until: dt.datetime | None = None


def submit(ctx: Context, name: str, chunk: int, revive: bool = False) -> ChunkResult:
    """Submit the chunk's tasks that need a job; reconnect to jobs already submitted.

    ``revive`` (the chunk is run again) gives failed tasks whose files are still
    unused a new round of attempts.
    """
    t = ctx.production.transformation(name)
    with ctx.sessions.begin() as session:
        row = ctx.row(session, name)
        if revive:
            _revive(session, row, chunk)
        tasks = session.scalars(chunk_tasks(row, chunk, TaskStatus.CREATED)  # one claim each
                                .with_for_update(skip_locked=True)).all()
        held_until = _plan_jobs(ctx, session, row, t, tasks)
    _send(ctx, name, chunk)
    result = state(ctx, name, chunk)
    result.held_until = held_until
    return result


def label(ctx: Context, name: str, chunk: int) -> str:
    """What a chunk holds, for a person: ``chunk 3: tasks 300-399 @ CSCS, DESY`` (the
    sites of its jobs, once it has some)."""
    with ctx.sessions() as session:
        row = ctx.row(session, name)
        indexes = session.scalars(select(TaskRow.index).where(
            TaskRow.transformation_id == row.id, TaskRow.chunk == chunk)).all()
        sites = sorted(set(session.scalars(
            select(JobRow.site).join(TaskRow, JobRow.task_id == TaskRow.id)
            .where(TaskRow.transformation_id == row.id, TaskRow.chunk == chunk)).all()))
    first, last = (min(indexes), max(indexes)) if indexes else (None, None)
    held = ("no task" if first is None else f"task {first}" if first == last
            else f"tasks {first}-{last}")
    return f"chunk {chunk}: {held}" + (f" @ {', '.join(sites)}" if sites else "")


def state(ctx: Context, name: str, chunk: int) -> ChunkResult:
    """The chunk now: jobs in flight per site, tasks done, tasks failed."""
    with ctx.sessions() as session:
        row = ctx.row(session, name)
        result = ChunkResult()
        for job in session.scalars(chunk_jobs(row, chunk, JobStatusName.SUBMITTED)):
            result.in_flight.setdefault(job.site, []).append(job.backend_id)
        for task in session.scalars(select(TaskRow).where(
                TaskRow.transformation_id == row.id, TaskRow.chunk == chunk)):
            if task.status == TaskStatus.DONE.value:
                result.done += 1
            elif task.status == TaskStatus.FAILED.value:
                last = session.scalars(select(JobRow).where(JobRow.task_id == task.id)
                                       .order_by(JobRow.attempt.desc())).first()
                tail = f"\n  log of {last.name}:\n{last.log_tail[-1500:]}" if last else ""
                result.failed.append(f"task {task.index}: {task.message}{tail}")
        return result


def allowed_sites(ctx: Context, t: Transformation) -> list[SiteConfig]:
    """The active sites the transformation may run at."""
    return [ctx.sites[s] for s in (t.sites or ctx.production.defaults.sites)
            if s in ctx.sites and ctx.sites[s].status == "active"]


def paused_sites(session: Session) -> dict[str, dt.datetime]:
    """Sites paused now, with the end of their pause."""
    return dict(session.execute(select(SiteRow.name, SiteRow.paused_until)
                                .where(SiteRow.paused_until > now())).all())


@dataclass
class Placement:
    """What site choice needs for a batch of tasks, read in bulk once: the allowed and
    paused sites, the sites that failed each task, each task's replica storages."""

    allowed: list[SiteConfig]
    paused: dict[str, dt.datetime]
    failed_at: dict[int, set[str]]
    storages: dict[int, Counter]

    @classmethod
    def read(cls, ctx: Context, session: Session, t: Transformation,
             task_ids: list[int]) -> "Placement":
        allowed = allowed_sites(ctx, t)
        if not allowed:
            raise BackendError(f"transformation {t.name}: no active site among "
                               f"{t.sites or ctx.production.defaults.sites}")
        failed_at: dict[int, set[str]] = defaultdict(set)
        storages: dict[int, Counter] = defaultdict(Counter)
        for ids in batches(task_ids):
            for task_id, site in session.execute(select(JobRow.task_id, JobRow.site).where(
                    JobRow.task_id.in_(ids), JobRow.failure_class.in_([INFRASTRUCTURE, DATA]))):
                failed_at[task_id].add(site)
            for task_id, where in session.execute(select(FileRow.task_id, FileRow.storages)
                                                  .where(FileRow.task_id.in_(ids))):
                storages[task_id].update(where)
        return cls(allowed, paused_sites(session), failed_at, storages)


def choose_site(placement: Placement, task_id: int, load: Counter) -> SiteConfig | None:
    """A site with a free slot first, then where the task's replicas are, away from
    sites that failed it, then the least loaded; never a paused site (None when every
    allowed site is paused: the task waits)."""
    open_sites = [s for s in placement.allowed if s.name not in placement.paused]
    failed_at = placement.failed_at.get(task_id, set())
    candidates = [s for s in open_sites if s.name not in failed_at] or open_sites
    if not candidates:
        return None
    storages = placement.storages.get(task_id, Counter())
    return min(candidates, key=lambda s: (load[s.name] >= s.slots,
                                          -sum(storages[x] for x in s.storages),
                                          load[s.name] / max(s.slots, 1), s.name))


def _revive(session: Session, row: TransformationRow, chunk: int) -> None:
    for task in session.scalars(chunk_tasks(row, chunk, TaskStatus.FAILED)).all():
        files = session.scalars(select(FileRow).where(FileRow.task_id == task.id)).all()
        if all(f.status == FileStatus.UNUSED.value for f in files):
            task.status, task.attempts = TaskStatus.CREATED.value, 0
            for f in files:
                f.status = FileStatus.ASSIGNED.value
            outbox.files(session, row.id, [(task.id, FileStatus.ASSIGNED.value, len(files))])
            event(session, row, "revive", f"task {task.index}: failed task run again")


def _plan_jobs(ctx: Context, session: Session, row: TransformationRow, t: Transformation,
               tasks: Sequence[TaskRow]) -> dt.datetime | None:
    """Commit one Submitting job row per task: the intent precedes the submission.

    Returns the end of the first pause when tasks wait for a paused site."""
    if not tasks:
        return None
    files = task_files(session, [task.id for task in tasks])
    paths = ctx.catalog.local_paths([lfn for fs in files.values() for lfn in fs])
    side = _side_inputs(ctx, session, row, t)
    uid = session.get(ProductionRow, row.production_id).uid
    load = Counter(session.scalars(select(JobRow.site).where(JobRow.status.in_(
        [JobStatusName.SUBMITTING.value, JobStatusName.SUBMITTED.value]))))
    placement = Placement.read(ctx, session, t, [task.id for task in tasks])
    held = 0
    for task in tasks:
        site = choose_site(placement, task.id, load)
        if site is None:
            held += 1
            continue
        load[site.name] += 1
        task.attempts += 1
        workdir = str(ctx.workroot / ctx.production.production / t.name
                      / f"{task.index:06d}.{task.attempts}")
        inputs = TaskInputs(task.index, files[task.id], task.run, task.group)
        try:
            name = job_name(ctx.production, uid, t, task.index, task.attempts)
            spec = build_job(ctx.production, t, inputs, name, workdir, paths, side)
        except (ValueError, KeyError) as exc:
            collection.give_up(ctx, session, row, task, DATA, f"cannot build the job: {exc}")
            continue
        task.status = TaskStatus.SUBMITTED.value
        session.add(JobRow(task_id=task.id, attempt=task.attempts, name=spec.name,
                           site=site.name, workdir=workdir, spec=spec.to_dict()))
    if not held:
        return None
    return min(placement.paused[s.name] for s in placement.allowed if s.name in placement.paused)


def _send(ctx: Context, name: str, chunk: int) -> None:
    """Hand Submitting jobs to their sites: reconnect by name first, then submit."""
    with ctx.sessions() as session:
        row = ctx.row(session, name)
        sites = sorted(set(job.site for job in session.scalars(
            chunk_jobs(row, chunk, JobStatusName.SUBMITTING)).all()))
        session.commit()
        for site in sites:  # each site's jobs claimed (locked) by one sender until sent
            site_jobs = session.scalars(chunk_jobs(row, chunk, JobStatusName.SUBMITTING)
                                        .where(JobRow.site == site)
                                        .with_for_update(skip_locked=True, of=JobRow)).all()
            if not site_jobs:
                continue
            backend = ctx.backend(site)
            try:
                known = backend.find([j.name for j in site_jobs])
                fresh = [j for j in site_jobs if j.name not in known]
                ids = {**known, **(backend.submit([_spec(j) for j in fresh]) if fresh else {})}
            except BackendError as exc:
                for job in site_jobs:
                    collection.job_finished(ctx, session, row, job,
                                            JobStatus(JobState.LOST, None, str(exc)))
                session.commit()
                continue
            submitted_at = now()
            for job in site_jobs:
                job.backend_id, job.status, job.submitted_at = (
                    ids[job.name], JobStatusName.SUBMITTED.value, submitted_at)
            outbox.jobs(session, site_jobs)
            if fresh:
                event(session, row, "submit", f"{len(fresh)} jobs submitted to {site}")
            session.commit()


def _side_inputs(ctx: Context, session: Session, row: TransformationRow,
                 t: Transformation) -> dict[str, list[str]]:
    """Local paths of each side input, by placeholder: the outputs of a transformation of
    this production, or the catalog files of a query (in LFN order)."""
    side: dict[str, list[str]] = {}
    for placeholder, source in t.job.side_inputs.items():
        if isinstance(source, str):
            lfns = sorted(lfn for outputs in session.scalars(
                select(TaskRow.outputs).join(TransformationRow)
                .where(TransformationRow.production_id == row.production_id,
                       TransformationRow.name == source,
                       TaskRow.status == TaskStatus.DONE.value)) for lfn in outputs)
        else:
            lfns = [f.lfn for f in ctx.catalog.query(Query.parse(source))]
        paths = ctx.catalog.local_paths(lfns)
        side[placeholder] = [paths[lfn] for lfn in lfns if lfn in paths]
    return side


def _spec(job: JobRow) -> JobSpec:
    data = dict(job.spec)
    return JobSpec(**{**data, "command": tuple(data["command"])})
