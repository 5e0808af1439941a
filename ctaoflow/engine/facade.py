"""The production engine: intake, tasks, submission, collection and completion.

The Airflow layer calls four steps per transformation: ``prepare`` (new input files
into the ledger, grouped into tasks and chunks), ``submit`` and ``collect`` (one chunk
of jobs, repeated until every task is final) and ``finalize`` (status and summary).
Each step commits the ledger before the side effect it guards: a job row is written
(Submitting) before the batch system hears of it, so a step killed anywhere is
re-entered without a duplicate.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from ctaoflow import settings
from ctaoflow.backends.base import (Backend, BackendError, JobSpec, JobState, JobStatus,
                                    SiteConfig)
from ctaoflow.catalog.base import Catalog, CatalogFile, OutputFile
from ctaoflow.chaining import input_query
from ctaoflow.failures import APPLICATION, DATA, INFRASTRUCTURE, classify
from ctaoflow.grouping import plugin
from ctaoflow.jobs import TaskInputs, build_job, job_name, planned_outputs
from ctaoflow.ledger import (EventRow, SiteRow, FileRow, FileStatus, JobRow,
                             JobStatusName, ProductionRow, TaskRow, TaskStatus,
                             TransformationRow, TransformationStatus, insert_ignore,
                             session_factory)
from ctaoflow.spec import Production, Transformation

BackendFactory = Callable[[SiteConfig], Backend]
InFlight = dict[str, list[str]]  # site -> backend job ids
_BATCH = 5000


@dataclass
class ChunkResult:
    """What one round of a chunk left: jobs to wait for, tasks done, and for each task
    failed for good its reason and the end of its last job's log."""

    in_flight: InFlight = field(default_factory=dict)
    done: int = 0
    failed: list[str] = field(default_factory=list)


class Engine:
    """Runs one production against a catalog, a set of sites and a ledger."""

    def __init__(self, production: Production, catalog: Catalog,
                 sites: dict[str, SiteConfig], backend_for: BackendFactory,
                 ledger_url: str | None = None, workroot: str | Path | None = None) -> None:
        self.production = production
        self.catalog = catalog
        self.sites = sites
        self.backend_for = backend_for
        self.sessions = session_factory(ledger_url)
        self.workroot = Path(workroot or settings.home() / "work")

    # -- ledger rows ---------------------------------------------------------------
    def sync(self) -> None:
        """Record the production and its transformations (idempotent)."""
        spec = json.dumps(self.production.model_dump(mode="json", by_alias=True), sort_keys=True)
        digest = hashlib.sha256(spec.encode()).hexdigest()
        with self.sessions.begin() as session:
            row = session.scalar(select(ProductionRow).filter_by(name=self.production.production))
            if row is None:
                row = ProductionRow(name=self.production.production, spec_hash=digest)
                session.add(row)
                session.flush()
            row.spec_hash = digest
            known = set(session.scalars(select(TransformationRow.name)
                                        .filter_by(production_id=row.id)))
            for t in self.production.transformations:
                if t.name not in known:
                    session.add(TransformationRow(production_id=row.id, name=t.name, type=t.type))

    def _row(self, session: Session, name: str) -> TransformationRow:
        row = session.scalar(
            select(TransformationRow).join(ProductionRow)
            .where(ProductionRow.name == self.production.production,
                   TransformationRow.name == name))
        if row is None:
            self.sync()
            return self._row(session, name)
        return row

    def _event(self, session: Session, row: TransformationRow | None, kind: str,
               message: str) -> None:
        session.add(EventRow(transformation_id=row.id if row else None, kind=kind,
                             message=message))

    # -- prepare -------------------------------------------------------------------
    def prepare(self, name: str) -> list[int]:
        """Take in new input files, group them into tasks; return chunks with work."""
        t = self.production.transformation(name)
        with self.sessions.begin() as session:
            row = self._row(session, name)
            if row.status == TransformationStatus.STOPPED.value:
                return []
            if t.type == "mc_simulation":
                new_tasks = self._mc_tasks(session, row, t)
            else:
                self._intake(session, row, t)
                new_tasks = self._group(session, row, t)
            if new_tasks:
                self._event(session, row, "tasks", f"{len(new_tasks)} new tasks")
            return list(session.scalars(
                select(TaskRow.chunk).distinct()
                .where(TaskRow.transformation_id == row.id,
                       TaskRow.status.in_([TaskStatus.CREATED.value, TaskStatus.SUBMITTED.value]))
                .order_by(TaskRow.chunk)))

    def _intake(self, session: Session, row: TransformationRow, t: Transformation) -> int:
        """Add catalog files matching the input query that the ledger does not know."""
        before = session.scalar(select(func.count()).where(FileRow.transformation_id == row.id))
        own = {"production": self.production.production, "transformation": t.name}
        candidates = (f for f in self.catalog.query(input_query(self.production, t))
                      if any(f.metadata.get(k) != v for k, v in own.items()))  # never its own outputs
        for batch in _batches(candidates, _BATCH):
            insert_ignore(session, FileRow.__table__, (
                {"transformation_id": row.id, "lfn": f.lfn, "size": f.size,
                 "storages": list(f.storages), "meta": f.metadata,
                 "status": FileStatus.UNUSED.value, "error_count": 0} for f in batch))
        after = session.scalar(select(func.count()).where(FileRow.transformation_id == row.id))
        if after > before:
            self._event(session, row, "intake", f"{after - before} new input files")
        return after - before

    def _group(self, session: Session, row: TransformationRow, t: Transformation) -> list[TaskRow]:
        flush = self._flushable(session, row, t)
        next_index = self._next_index(session, row)
        unused = session.execute(
            select(FileRow.id, FileRow.lfn, FileRow.size, FileRow.storages, FileRow.meta)
            .where(FileRow.transformation_id == row.id,
                   FileRow.status == FileStatus.UNUSED.value)
            .order_by(FileRow.lfn).execution_options(yield_per=_BATCH))
        waiting: dict[str, int] = {}  # ledger ids of the files read but not grouped yet

        def files() -> Iterator[CatalogFile]:
            for r in unused:
                waiting[r.lfn] = r.id
                yield CatalogFile(r.lfn, r.size, r.meta, tuple(r.storages))

        tasks, assignments = [], []
        for group in plugin(t.grouping)(files(), flush):
            value = group[0].metadata.get(t.grouping.key) if t.grouping.key else None
            tasks.append(TaskRow(transformation_id=row.id, index=next_index + len(tasks),
                                 group=None if value is None else str(value)))
            assignments.append([waiting.pop(f.lfn) for f in group])
        if tasks:
            self._assign_chunks(row, tasks)
            session.add_all(tasks)
            session.flush()
            rows = ({"id": file_id, "status": FileStatus.ASSIGNED.value, "task_id": task.id}
                    for task, ids in zip(tasks, assignments) for file_id in ids)
            for batch in _batches(rows, _BATCH):  # bulk UPDATE by primary key (executemany)
                session.execute(update(FileRow), batch)
        if flush and row.status == TransformationStatus.FLUSH.value:
            row.status, row.flush_count = TransformationStatus.ACTIVE.value, row.flush_count + 1
        return tasks

    def _mc_tasks(self, session: Session, row: TransformationRow,
                  t: Transformation) -> list[TaskRow]:
        """New MC runs until the target number of good or open jobs is reached.

        Failed runs are replaced by new run numbers, until as many runs have failed as
        the target (then the production needs a person).
        """
        assert t.runs is not None
        target = t.runs.count + row.extra_runs
        existing = session.execute(select(TaskRow.status, TaskRow.run)
                                   .where(TaskRow.transformation_id == row.id)).all()
        failed = sum(status == TaskStatus.FAILED.value for status, _ in existing)
        missing = target - (len(existing) - failed)
        if missing <= 0 or failed >= target:
            return []
        first = max((run for _, run in existing), default=t.runs.start - 1) + 1
        next_index = self._next_index(session, row)
        tasks = [TaskRow(transformation_id=row.id, index=next_index + i, run=first + i)
                 for i in range(missing)]
        self._assign_chunks(row, tasks)
        session.add_all(tasks)
        return tasks

    def _next_index(self, session: Session, row: TransformationRow) -> int:
        last = session.scalar(select(func.max(TaskRow.index)).where(TaskRow.transformation_id == row.id))
        return 0 if last is None else last + 1

    def _assign_chunks(self, row: TransformationRow, tasks: list[TaskRow]) -> None:
        size = max(self.production.defaults.chunk_size, math.ceil(len(tasks) / 1000))
        for i, task in enumerate(tasks):
            task.chunk = row.next_chunk + i // size
        row.next_chunk += math.ceil(len(tasks) / size)

    def _flushable(self, session: Session, row: TransformationRow, t: Transformation) -> bool:
        """Partial groups are emitted when every parent is complete or by hand.

        A transformation without parents reads a catalog snapshot: each run flushes it.
        """
        if row.status == TransformationStatus.FLUSH.value:
            return True
        parents = t.all_parents
        if not parents:
            return True
        statuses = session.scalars(
            select(TransformationRow.status)
            .where(TransformationRow.production_id == row.production_id,
                   TransformationRow.name.in_(parents))).all()
        return len(statuses) == len(parents) and all(
            s == TransformationStatus.COMPLETED.value for s in statuses)

    # -- submit ------------------------------------------------------------------
    def submit(self, name: str, chunk: int, revive: bool = False) -> ChunkResult:
        """Submit the chunk's tasks that need a job; reconnect to jobs already submitted.

        ``revive`` (the chunk is run again) gives failed tasks whose files are still
        unused a new round of attempts.
        """
        t = self.production.transformation(name)
        with self.sessions.begin() as session:
            row = self._row(session, name)
            if revive:
                self._revive(session, row, chunk)
            tasks = session.scalars(self._chunk_tasks(row, chunk, TaskStatus.CREATED)).all()
            self._plan_jobs(session, row, t, tasks)
        self._send(name, chunk)
        return self.state(name, chunk)

    def _chunk_tasks(self, row: TransformationRow, chunk: int, status: TaskStatus):
        return (select(TaskRow).where(TaskRow.transformation_id == row.id,
                                      TaskRow.chunk == chunk, TaskRow.status == status.value)
                .order_by(TaskRow.index))

    def _revive(self, session: Session, row: TransformationRow, chunk: int) -> None:
        for task in session.scalars(self._chunk_tasks(row, chunk, TaskStatus.FAILED)).all():
            files = session.scalars(select(FileRow).where(FileRow.task_id == task.id)).all()
            if all(f.status == FileStatus.UNUSED.value for f in files):
                task.status, task.attempts = TaskStatus.CREATED.value, 0
                for f in files:
                    f.status = FileStatus.ASSIGNED.value
                self._event(session, row, "revive", f"task {task.index}: failed task run again")

    def _plan_jobs(self, session: Session, row: TransformationRow, t: Transformation,
                   tasks: Sequence[TaskRow]) -> None:
        """Commit one Submitting job row per task: the intent precedes the submission."""
        if not tasks:
            return
        files = self._task_files(session, [task.id for task in tasks])
        paths = self.catalog.local_paths([lfn for fs in files.values() for lfn in fs])
        side = self._side_inputs(session, row, t)
        uid = session.get(ProductionRow, row.production_id).uid
        load = Counter(session.scalars(select(JobRow.site).where(JobRow.status.in_(
            [JobStatusName.SUBMITTING.value, JobStatusName.SUBMITTED.value]))))
        for task in tasks:
            task.attempts += 1
            site = self._choose_site(session, t, task, files[task.id], load)
            load[site.name] += 1
            workdir = str(self.workroot / self.production.production / t.name
                          / f"{task.index:06d}.{task.attempts}")
            inputs = TaskInputs(task.index, files[task.id], task.run, task.group)
            try:
                name = job_name(self.production, uid, t, task.index, task.attempts)
                spec = build_job(self.production, t, inputs, name, workdir, paths, side)
            except (ValueError, KeyError) as exc:
                self._give_up(session, row, task, DATA, f"cannot build the job: {exc}")
                continue
            task.status = TaskStatus.SUBMITTED.value
            session.add(JobRow(task_id=task.id, attempt=task.attempts, name=spec.name,
                               site=site.name, workdir=workdir, spec=spec.to_dict()))

    def _send(self, name: str, chunk: int) -> None:
        """Hand Submitting jobs to their sites: reconnect by name first, then submit."""
        with self.sessions() as session:
            row = self._row(session, name)
            jobs = session.scalars(self._chunk_jobs(row, chunk, JobStatusName.SUBMITTING)).all()
            by_site: dict[str, list[JobRow]] = defaultdict(list)
            for job in jobs:
                by_site[job.site].append(job)
            for site, site_jobs in by_site.items():
                backend = self.backend_for(self.sites[site])
                try:
                    known = backend.find([j.name for j in site_jobs])
                    fresh = [j for j in site_jobs if j.name not in known]
                    ids = {**known, **(backend.submit([_spec(j) for j in fresh]) if fresh else {})}
                except BackendError as exc:
                    for job in site_jobs:
                        self._job_finished(session, row, job, JobStatus(JobState.LOST, None, str(exc)))
                    session.commit()
                    continue
                now = _now()
                for job in site_jobs:
                    job.backend_id, job.status, job.submitted_at = (
                        ids[job.name], JobStatusName.SUBMITTED.value, now)
                if fresh:
                    self._event(session, row, "submit", f"{len(fresh)} jobs submitted to {site}")
                session.commit()

    def _chunk_jobs(self, row: TransformationRow, chunk: int, status: JobStatusName):
        return (select(JobRow).join(TaskRow, JobRow.task_id == TaskRow.id)
                .where(TaskRow.transformation_id == row.id, TaskRow.chunk == chunk,
                       JobRow.status == status.value).order_by(JobRow.id))

    def state(self, name: str, chunk: int) -> ChunkResult:
        """The chunk now: jobs in flight per site, tasks done, tasks failed."""
        with self.sessions() as session:
            row = self._row(session, name)
            result = ChunkResult()
            for job in session.scalars(self._chunk_jobs(row, chunk, JobStatusName.SUBMITTED)):
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

    # -- collect -------------------------------------------------------------------
    def collect(self, name: str, chunk: int, statuses: dict[str, dict[str, JobStatus]]) -> None:
        """Record final job states: register outputs of done jobs, retry or fail others."""
        t = self.production.transformation(name)
        with self.sessions() as session:
            row = self._row(session, name)
            done: list[tuple[JobRow, list[OutputFile]]] = []
            paused: set[str] = set()  # sites this collection paused
            for job in session.scalars(self._chunk_jobs(row, chunk, JobStatusName.SUBMITTED)).all():
                status = statuses.get(job.site, {}).get(job.backend_id)
                if status is None or not status.state.final:
                    continue
                if status.state is JobState.DONE:
                    outputs = self._outputs_of(session, t, job)
                    missing = [o.lfn for o in outputs if not Path(o.path).exists()]
                    if not missing:
                        done.append((job, outputs))
                        continue
                    status = JobStatus(JobState.FAILED, 0, f"declared output missing: {missing[0]}")
                job.log_tail = self._log_tail(job)
                if site := self._job_finished(session, row, job, status):
                    paused.add(site)
            session.commit()
            for site in sorted(paused):
                self._move_queued(session, row, site)
            if done:
                storage = t.storage or self.production.defaults.storage
                dataset = f"{self.production.output_base}/{t.name}"
                self.catalog.register([o for _, outs in done for o in outs], storage, dataset)
                for job, outputs in done:
                    self._job_finished(session, row, job, JobStatus(JobState.DONE, 0),
                                       [o.lfn for o in outputs])
                self._event(session, row, "done", f"{len(done)} jobs done, outputs registered")
                session.commit()

    def _log_tail(self, job: JobRow, size: int = 4000) -> str:
        """The end of a failed job's log, kept in the ledger for classification and reports."""
        try:
            return self.backend_for(self.sites[job.site]).log(job.backend_id, size)[-size:]
        except (BackendError, OSError, KeyError) as exc:
            return f"(log unavailable: {exc})"

    def _outputs_of(self, session: Session, t: Transformation, job: JobRow) -> list[OutputFile]:
        task = session.get(TaskRow, job.task_id)
        files = self._task_files(session, [task.id])[task.id]
        return planned_outputs(self.production, t, TaskInputs(task.index, files, task.run,
                                                              task.group), job.workdir)

    def _job_finished(self, session: Session, row: TransformationRow, job: JobRow,
                      status: JobStatus, outputs: list[str] | None = None) -> str | None:
        """Record a final job state and decide its task's fate; returns the job's site
        when this failure paused it."""
        t = self.production.transformation(row.name)
        task = session.get(TaskRow, job.task_id)
        job.state, job.exit_code, job.finished_at = status.state.value, status.exit_code, _now()
        job.reason = status.reason
        if status.state is JobState.DONE:
            job.status, task.status, task.outputs = (JobStatusName.DONE.value,
                                                     TaskStatus.DONE.value, outputs or [])
            session.execute(update(FileRow).where(FileRow.task_id == task.id)
                            .values(status=FileStatus.PROCESSED.value))
            return None
        job.status = (JobStatusName.KILLED if status.state is JobState.CANCELLED
                      else JobStatusName.FAILED).value
        job.failure_class, decided_by = classify(status, job.log_tail, t.type)
        detail = f"{status.state.value} exit {status.exit_code} ({decided_by})"
        if status.reason:
            detail += f": {status.reason}"
        self._event(session, row, "failed", f"job {job.name} at {job.site}: "
                                            f"{job.failure_class} {detail}")
        failures = Counter(session.scalars(select(JobRow.failure_class).where(
            JobRow.task_id == task.id, JobRow.failure_class.is_not(None))))
        defaults = self.production.defaults
        if job.failure_class == INFRASTRUCTURE:
            retry = failures[INFRASTRUCTURE] <= defaults.max_infrastructure_retries
        else:  # application, or data (an unreadable replica: retried elsewhere)
            retry = failures[job.failure_class] < (t.max_attempts or defaults.max_attempts)
        if retry:
            task.status = TaskStatus.CREATED.value  # resubmitted by the next round
        else:
            self._give_up(session, row, task, job.failure_class, detail)
        return job.site if self._maybe_pause(session, job.site) else None

    def _give_up(self, session: Session, row: TransformationRow, task: TaskRow,
                 failure_class: str, message: str) -> None:
        """The task failed for good; its files are reset (error counted) or set aside.

        Application failures reset the files up to ``max_reassign`` times, then they go
        Problematic; data failures go Problematic; infrastructure failures
        reset them up to ``max_resets`` times, then MaxReset.
        """
        defaults = self.production.defaults
        task.status, task.message = TaskStatus.FAILED.value, f"{failure_class}: {message}"
        for f in session.scalars(select(FileRow).where(FileRow.task_id == task.id)):
            f.error_count += 1
            if failure_class == DATA or (failure_class == APPLICATION
                                         and f.error_count >= defaults.max_reassign):
                f.status = FileStatus.PROBLEMATIC.value
            elif f.error_count >= defaults.max_resets:
                f.status = FileStatus.MAXRESET.value
            else:
                f.status = FileStatus.UNUSED.value
        self._event(session, row, "task_failed", f"task {task.index}: {task.message}")

    def _maybe_pause(self, session: Session, site: str, streak: int = 5,
                     pause: dt.timedelta = dt.timedelta(minutes=30)) -> bool:
        """Pause a site whose last ``streak`` finished jobs all failed for its own reasons;
        True when this call paused it."""
        last = session.scalars(select(JobRow.failure_class).where(
            JobRow.site == site, JobRow.finished_at.is_not(None))
            .order_by(JobRow.finished_at.desc(), JobRow.id.desc()).limit(streak)).all()
        if len(last) == streak and all(c == INFRASTRUCTURE for c in last):
            row = session.get(SiteRow, site) or SiteRow(name=site)
            if not row.paused_until or row.paused_until < _now():
                row.paused_until = _now() + pause
                row.reason = f"{streak} infrastructure failures in a row"
                session.add(row)
                self._event(session, None, "site_paused", f"{site}: {row.reason}")
                return True
        return False

    def _move_queued(self, session: Session, row: TransformationRow, site: str) -> None:
        """Cancel this production's jobs still queued at a just-paused site (one poll, one
        cancel): their chunks see them CANCELLED, an infrastructure failure, and retry
        them at once elsewhere. The pause is committed first; jobs already running stay."""
        if site not in self.sites:
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
            backend = self.backend_for(self.sites[site])
            queued = [i for i, s in backend.poll(ids).items() if s.state is JobState.PENDING]
            backend.cancel(queued)
        except BackendError as exc:  # they run where they are
            self._event(session, row, "move_failed", f"{site}: {exc}")
        else:
            self._event(session, row, "moved", f"{len(queued)} queued job(s) cancelled at "
                                               f"paused site {site}, to run elsewhere")
        session.commit()

    # -- finalize ------------------------------------------------------------------
    def finalize(self, name: str) -> dict[str, dict[str, int]]:
        """Complete the transformation when nothing is left; return its counts."""
        t = self.production.transformation(name)
        with self.sessions.begin() as session:
            row = self._row(session, name)
            summary = _counts(session, row)
            pending = sum(summary["files"].get(s.value, 0)
                          for s in (FileStatus.UNUSED, FileStatus.ASSIGNED))
            pending += sum(summary["tasks"].get(s.value, 0)
                           for s in (TaskStatus.CREATED, TaskStatus.SUBMITTED))
            if t.type == "mc_simulation":  # complete when the target of good runs is met
                assert t.runs is not None
                done = summary["tasks"].get(TaskStatus.DONE.value, 0)
                pending += max(0, t.runs.count + row.extra_runs - done)
            parents_done = self._flushable(session, row, t) or not t.all_parents
            if row.status in (TransformationStatus.ACTIVE.value, TransformationStatus.COMPLETED.value):
                complete = not pending and parents_done
                status = (TransformationStatus.COMPLETED if complete
                          else TransformationStatus.ACTIVE).value
                if status != row.status:
                    self._event(session, row, "status", f"{row.status} -> {status}")
                row.status = status
            self._complete_production(session, row.production_id)
            summary["status"] = {row.status: 1}
            return summary

    def _complete_production(self, session: Session, production_id: int) -> None:
        """A production is Completed when all its transformations are."""
        production = session.get(ProductionRow, production_id)
        statuses = set(session.scalars(select(TransformationRow.status)
                                       .where(TransformationRow.production_id == production_id)))
        if production.status in ("Active", "Completed"):
            production.status = ("Completed" if statuses == {TransformationStatus.COMPLETED.value}
                                 else "Active")

    def summary(self) -> dict[str, dict[str, dict[str, int]]]:
        """Files, tasks and jobs by status, per transformation."""
        return summarize(self.production, self.sessions)

    # -- helpers -------------------------------------------------------------------
    def _task_files(self, session: Session, task_ids: list[int]) -> dict[int, dict[str, dict]]:
        files: dict[int, dict[str, dict]] = {task_id: {} for task_id in task_ids}
        for start in range(0, len(task_ids), _BATCH):
            for task_id, lfn, meta in session.execute(
                    select(FileRow.task_id, FileRow.lfn, FileRow.meta)
                    .where(FileRow.task_id.in_(task_ids[start:start + _BATCH]))):
                files[task_id][lfn] = meta
        return files

    def _side_inputs(self, session: Session, row: TransformationRow,
                     t: Transformation) -> dict[str, list[str]]:
        side: dict[str, list[str]] = {}
        for placeholder, source in t.job.side_inputs.items():
            lfns = sorted(lfn for outputs in session.scalars(
                select(TaskRow.outputs).join(TransformationRow)
                .where(TransformationRow.production_id == row.production_id,
                       TransformationRow.name == source,
                       TaskRow.status == TaskStatus.DONE.value)) for lfn in outputs)
            paths = self.catalog.local_paths(lfns)
            side[placeholder] = [paths[lfn] for lfn in lfns if lfn in paths]
        return side

    def _choose_site(self, session: Session, t: Transformation, task: TaskRow,
                     files: dict[str, dict], load: Counter) -> SiteConfig:
        """A site with a free slot first, then where the task's replicas are, away from
        sites that failed it or are paused, then the least loaded."""
        allowed = [self.sites[s] for s in (t.sites or self.production.defaults.sites)
                   if s in self.sites and self.sites[s].status == "active"]
        if not allowed:
            raise BackendError(f"transformation {t.name}: no active site among "
                               f"{t.sites or self.production.defaults.sites}")
        failed_at = set(session.scalars(select(JobRow.site).where(
            JobRow.task_id == task.id, JobRow.failure_class.in_([INFRASTRUCTURE, DATA]))))
        paused = set(session.scalars(select(SiteRow.name).where(SiteRow.paused_until > _now())))
        candidates = ([s for s in allowed if s.name not in failed_at | paused]
                      or [s for s in allowed if s.name not in paused] or allowed)
        storages = Counter(st for st in session.scalars(
            select(FileRow.storages).where(FileRow.task_id == task.id)) for st in st)
        return min(candidates, key=lambda s: (load[s.name] >= s.slots,
                                              -sum(storages[x] for x in s.storages),
                                              load[s.name] / max(s.slots, 1), s.name))


def summarize(production: Production, sessions: sessionmaker[Session] | None = None,
              ) -> dict[str, dict[str, dict[str, int]]]:
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


def _counts(session: Session, row: TransformationRow) -> dict[str, dict[str, int]]:
    def by_status(column, *where, join=None):
        query = select(column, func.count())
        if join is not None:
            query = query.join(TaskRow, JobRow.task_id == TaskRow.id)
        return dict(session.execute(query.where(*where).group_by(column)).all())

    return {"files": by_status(FileRow.status, FileRow.transformation_id == row.id),
            "tasks": by_status(TaskRow.status, TaskRow.transformation_id == row.id),
            "jobs": by_status(JobRow.status, TaskRow.transformation_id == row.id, join=True)}


def _spec(job: JobRow) -> JobSpec:
    data = dict(job.spec)
    return JobSpec(**{**data, "command": tuple(data["command"])})


def _batches(items: Iterable, size: int) -> Iterator[list]:
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
