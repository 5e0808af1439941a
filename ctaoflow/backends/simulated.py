"""The simulated backend: jobs are modelled, not run, for scale benchmarks.

Each job's fate is drawn at submission from a generator seeded by the site's ``seed``
and the job's name, so the same names give the same durations and outcomes on every
run: run time ~ ``duration_s`` x lognormal(``duration_sigma``) (mean ``duration_s``), a
failure with probability ``failure_rate`` (exit code 1 after part of the run time), a
TIMEOUT when the run time exceeds the job's walltime. A job becomes eligible
``queue_wait_s`` after submission and starts when one of ``site.slots`` slots is free,
in submission order; its state at any moment follows from its modelled start and end
times and the clock, so nothing needs to advance it. Cancelling frees its slot and the
queued jobs behind it are rescheduled.

A job's environment may set its own mean run time: ``CTAOFLOW_SIM_DURATION_S`` (a
transformation's ``job.env``) replaces the site's ``duration_s`` for it, so a production
models short merges beside long subrun jobs on the same sites. A job modelled to end
DONE leaves its outputs: the (empty) files its command names directly inside its
workdir are created at submission, so the engine's collection finds them.

The model lives in SQLite (``<state_dir>/<site>.sqlite``, ``state_dir`` defaulting to
``$CTAOFLOW_HOME/simulated``): a new backend object, e.g. in a restarted triggerer,
sees the same jobs, and find() works. Submission and cancellation reschedule the queue
in one transaction (O(active jobs)); poll() is one indexed query.

Tested against: itself (no external system); the tests use an injected clock
(``params['clock']``) and measure a poll of 5,500 ids.
"""

from __future__ import annotations

import contextlib
import functools
import heapq
import json
import random
import re
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from ctaoflow import settings
from ctaoflow.backends.base import Backend, BackendError, JobSpec, JobState, JobStatus

_SCHEMA = """
PRAGMA journal_mode = WAL;
PRAGMA synchronous = NORMAL;
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    submitted REAL NOT NULL,
    run_s REAL NOT NULL,          -- modelled run time (until failure or walltime)
    state TEXT NOT NULL,          -- final state once run_s has passed
    exit_code INTEGER,
    start REAL NOT NULL,
    end REAL NOT NULL,
    cancelled REAL                -- when cancel() stopped it, else NULL
);
CREATE INDEX IF NOT EXISTS jobs_end ON jobs(end);
"""
# a job's state at time ? (twice) for ids in a JSON list; the phase is derived in SQL
_POLL = """
SELECT jobs.id, CASE WHEN cancelled IS NOT NULL THEN 'CANCELLED' WHEN ? < start THEN 'PENDING'
                     WHEN ? < end THEN 'RUNNING' ELSE state END, exit_code
FROM json_each(?) AS wanted JOIN jobs ON jobs.id = wanted.value
"""
_LOST = JobStatus(JobState.LOST, reason="unknown to the simulated site")
DURATION_ENV = "CTAOFLOW_SIM_DURATION_S"  # a job's own mean run time, s


def model_job(job: JobSpec, options: dict[str, Any]) -> tuple[float, JobState, int | None]:
    """A job's modelled run time, final state and exit code; a function of seed and name."""
    rng = random.Random(f"{options.get('seed', 0)}:{job.name}")
    sigma = float(options.get("duration_sigma", 0.5))
    mean = float(job.env.get(DURATION_ENV) or options.get("duration_s", 600.0))
    duration = mean * rng.lognormvariate(-sigma * sigma / 2, sigma)
    failed = rng.random() < float(options.get("failure_rate", 0.0))
    if failed:
        duration *= rng.uniform(0.05, 1.0)
    if duration > job.walltime_s:
        return float(job.walltime_s), JobState.TIMEOUT, None
    return (duration, JobState.FAILED, 1) if failed else (duration, JobState.DONE, 0)


def schedule(queued: list[tuple[int, float, float]], busy_until: list[float], slots: int,
             now: float, wait_s: float) -> list[tuple[float, float, int]]:
    """FIFO start/end times for queued (id, submitted, run_s) given slots busy until times."""
    slots = max(1, slots)
    # more running jobs than slots (the limit was lowered): wait for the surplus to end
    free = sorted(busy_until)[-slots:] + [now] * max(0, slots - len(busy_until))
    heapq.heapify(free)
    placed = []
    for job_id, submitted, run_s in queued:
        start = max(heapq.heappop(free), submitted + wait_s, now)
        heapq.heappush(free, start + run_s)
        placed.append((start, start + run_s, job_id))
    return placed


class SimulatedBackend(Backend):
    """Modelled jobs with a slot limit, persistent in SQLite, deterministic from a seed."""

    @property
    def clock(self) -> Callable[[], float]:
        return self.params.get("clock") or time.time

    @property
    def path(self) -> Path:
        folder = Path(self.site.options.get("state_dir") or settings.home() / "simulated")
        folder.mkdir(parents=True, exist_ok=True)
        return folder / f"{re.sub(r'[^A-Za-z0-9_.-]', '_', self.site.name)}.sqlite"

    @contextlib.contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        """A connection to the state file; SQLite errors become one-line BackendErrors."""
        try:
            connection = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            with contextlib.closing(connection) as db:
                db.executescript(_SCHEMA)
                yield db
        except sqlite3.Error as exc:
            raise BackendError(f"site {self.site.name}: simulated state {self.path}: "
                               f"{exc}") from exc

    def _reschedule(self, db: sqlite3.Connection, now: float) -> None:
        """Place the jobs that have not started yet, in submission order."""
        busy = [end for (end,) in db.execute(
            "SELECT end FROM jobs WHERE end > ? AND start <= ? AND cancelled IS NULL", (now, now))]
        queued = db.execute("SELECT id, submitted, run_s, start FROM jobs WHERE end > ? AND "
                            "start > ? AND cancelled IS NULL ORDER BY id", (now, now)).fetchall()
        placed = schedule([row[:3] for row in queued], busy, self.site.slots, now,
                          float(self.site.options.get("queue_wait_s", 0.0)))
        moved = [place for place, row in zip(placed, queued, strict=True) if place[0] != row[3]]
        db.executemany("UPDATE jobs SET start = ?, end = ? WHERE id = ?", moved)

    def submit(self, jobs: Sequence[JobSpec]) -> dict[str, str]:
        now = self.clock()
        rows = []
        for job in jobs:
            run_s, state, exit_code = model_job(job, self.site.options)
            # start/end = +inf until scheduled: queued, never "started"
            rows.append((job.name, now, run_s, state.value, exit_code, float("inf"), float("inf")))
            if state is JobState.DONE:
                _leave_outputs(job)
        with self._db() as db:
            db.execute("BEGIN IMMEDIATE")
            db.executemany("INSERT OR IGNORE INTO jobs (name, submitted, run_s, state, exit_code, "
                           "start, end) VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
            self._reschedule(db, now)
            db.execute("COMMIT")
            return self._ids(db, [job.name for job in jobs])

    @staticmethod
    def _ids(db: sqlite3.Connection, names: Sequence[str]) -> dict[str, str]:
        found = dict(db.execute("SELECT name, id FROM jobs WHERE name IN "
                                "(SELECT value FROM json_each(?))", (json.dumps(list(names)),)))
        return {name: str(found[name]) for name in names if name in found}

    def find(self, names: Sequence[str]) -> dict[str, str]:
        with self._db() as db:
            return self._ids(db, names)

    def poll(self, job_ids: Sequence[str]) -> dict[str, JobStatus]:
        now = self.clock()
        numbers = json.dumps([int(job_id) for job_id in job_ids if job_id.isdigit()])
        with self._db() as db:
            rows = db.execute(_POLL, (now, now, numbers)).fetchall()
        found = {str(job_id): _status(phase, exit_code) for job_id, phase, exit_code in rows}
        return {job_id: found.get(job_id, _LOST) for job_id in job_ids}

    def cancel(self, job_ids: Sequence[str]) -> None:
        now = self.clock()
        numbers = json.dumps([int(job_id) for job_id in job_ids if job_id.isdigit()])
        with self._db() as db:
            db.execute("BEGIN IMMEDIATE")
            db.execute("UPDATE jobs SET cancelled = ?, end = MIN(end, ?) WHERE cancelled IS NULL "
                       "AND end > ? AND id IN (SELECT value FROM json_each(?))",
                       (now, now, now, numbers))
            self._reschedule(db, now)
            db.execute("COMMIT")

    def log(self, job_id: str, tail_bytes: int = 20000) -> str:
        with self._db() as db:
            row = db.execute("SELECT name, start, end, run_s FROM jobs WHERE id = ?",
                             (int(job_id) if job_id.isdigit() else -1,)).fetchone()
        if row is None:
            return ""
        status = self.poll([job_id])[job_id]
        text = (f"simulated job {row[0]} on site {self.site.name}: {status.state.value} "
                f"(start {row[1]:.1f}, end {row[2]:.1f}, modelled run {row[3]:.1f} s, "
                f"exit code {status.exit_code})\n")
        return text[-tail_bytes:]


def _leave_outputs(job: JobSpec) -> None:
    """Create the files the job's command names directly inside its workdir: what a job
    that ends DONE leaves (the engine collects only declared outputs that exist)."""
    workdir = Path(job.workdir)
    outputs = [Path(arg) for arg in job.command if Path(arg).parent == workdir]
    try:
        if outputs:
            workdir.mkdir(parents=True, exist_ok=True)
        for path in outputs:
            path.touch()
    except OSError as exc:
        raise BackendError(f"simulated job {job.name}: cannot leave its outputs: {exc}") from exc


@functools.cache
def _status(phase: str, exit_code: int | None) -> JobStatus:
    """Shared, immutable statuses: a poll of thousands of jobs builds only a handful."""
    reason = {"TIMEOUT": "walltime exceeded", "CANCELLED": "cancelled"}.get(phase, "")
    final = phase not in ("PENDING", "RUNNING", "CANCELLED")
    return JobStatus(JobState(phase), exit_code if final else None, reason)
