"""The local backend: a small batch system on this machine, with a slot limit.

Like a real batch system its jobs outlive whoever submitted them. A submission writes
the job's spec into a spool folder; a detached daemon (``python -m
ctaoflow.backends.local ROOT SLOTS``, started on demand, exiting when idle) starts
queued jobs while fewer than SLOTS run. Each job runs in its own session under a
constant ``sh`` wrapper that passes the argument vector through ``"$@"`` untouched
and records the exit code on disk, so a job's status survives the death of the
daemon and of the task that submitted it. Spool layout, per job id (= job name):
``spec.json``, ``pid``, ``exit``, ``cancel``, ``timeout``, ``job.log``.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Sequence

from ctaoflow import settings
from ctaoflow.backends.base import Backend, BackendError, JobSpec, JobState, JobStatus

# Runs "$@" (the job's argv, never parsed by the shell) and records its exit code.
_WRAPPER = ('d="$1"; shift; "$@" >"$d/job.log" 2>&1; '
            'echo $? >"$d/exit.part" && mv "$d/exit.part" "$d/exit"')
_IDLE_EXIT_S = 30.0
_TICK_S = 0.05


class LocalBackend(Backend):
    """Jobs as detached processes on this machine, at most ``site.slots`` at once."""

    @property
    def root(self) -> Path:
        root = Path(self.site.options.get("root") or settings.home() / "local-batch")
        (root / "jobs").mkdir(parents=True, exist_ok=True)
        (root / "queue").mkdir(exist_ok=True)
        return root

    def submit(self, jobs: Sequence[JobSpec]) -> dict[str, str]:
        root = self.root
        for job in jobs:
            folder = root / "jobs" / _safe(job.name)
            if (folder / "spec.json").exists():
                continue  # already submitted: submission is idempotent by name
            folder.mkdir(exist_ok=True)
            _write_atomic(folder / "spec.json", json.dumps(job.to_dict()))
            (root / "queue" / f"{time.time_ns():020d}-{job.name}").touch()
        ensure_daemon(root, self.site.slots)
        return {job.name: job.name for job in jobs}

    def find(self, names: Sequence[str]) -> dict[str, str]:
        jobs = self.root / "jobs"
        return {n: n for n in names if (jobs / _safe(n) / "spec.json").exists()}

    def poll(self, job_ids: Sequence[str]) -> dict[str, JobStatus]:
        jobs = self.root / "jobs"
        return {job_id: _status(jobs / _safe(job_id)) for job_id in job_ids}

    def cancel(self, job_ids: Sequence[str]) -> None:
        jobs = self.root / "jobs"
        for job_id in job_ids:
            folder = jobs / _safe(job_id)
            if folder.exists() and not (folder / "exit").exists():
                (folder / "cancel").touch()
        ensure_daemon(self.root, self.site.slots)

    def job_names(self, prefix: str) -> list[str]:
        return [p.name for p in (self.root / "jobs").iterdir() if p.name.startswith(prefix)]

    def log(self, job_id: str, tail_bytes: int = 20000) -> str:
        path = self.root / "jobs" / _safe(job_id) / "job.log"
        if not path.exists():
            return ""
        with path.open("rb") as handle:
            handle.seek(max(0, path.stat().st_size - tail_bytes))
            return handle.read().decode(errors="replace")


def _safe(name: str) -> str:
    if not name or "/" in name or name.startswith("."):
        raise BackendError(f"local backend: bad job name {name!r}")
    return name


def _write_atomic(path: Path, text: str) -> None:
    partial = path.with_name(path.name + ".part")
    partial.write_text(text)
    os.replace(partial, path)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is dead for our purposes
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (OSError, IndexError):
        return False


def _status(folder: Path) -> JobStatus:
    try:
        code = int((folder / "exit").read_text())
    except FileNotFoundError:
        code = None
    if (folder / "timeout").exists():
        return JobStatus(JobState.TIMEOUT, code, "walltime exceeded")
    if (folder / "cancelled").exists():
        return JobStatus(JobState.CANCELLED, code, "cancelled")
    if code is not None:
        return JobStatus(JobState.DONE if code == 0 else JobState.FAILED, code)
    if not (folder / "spec.json").exists():
        return JobStatus(JobState.LOST, None, "unknown to the local backend")
    try:
        pid = int((folder / "pid").read_text())
    except FileNotFoundError:
        return JobStatus(JobState.PENDING)
    if (folder / "exit").exists():  # finished between our two looks
        return _status(folder)
    if _alive(pid):
        return JobStatus(JobState.RUNNING)
    return JobStatus(JobState.NODE_FAIL, None, "job process vanished without an exit code")


def ensure_daemon(root: Path, slots: int) -> None:
    """Start the spool daemon unless one holds the lock."""
    with open(root / "daemon.lock", "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return  # a daemon is running
        fcntl.flock(lock, fcntl.LOCK_UN)
    with open(root / "daemon.log", "ab") as log:
        subprocess.Popen([sys.executable, "-m", "ctaoflow.backends.local", str(root), str(slots)],
                         stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                         start_new_session=True, close_fds=True)


class Daemon:
    """Starts queued jobs within the slot limit; enforces walltime and cancellation."""

    def __init__(self, root: Path, slots: int) -> None:
        self.root, self.slots = root, slots
        self.running: dict[str, tuple[int, float, int]] = {}  # id -> pid, start, walltime
        self.children: dict[int, subprocess.Popen] = {}
        # the local site's software environment is ctaoflow's own: its bin first on PATH
        bin_dir = os.path.dirname(sys.executable)
        self.env = {**os.environ, "PATH": f"{bin_dir}:{os.environ.get('PATH', '')}"}
        self._adopt()

    def _adopt(self) -> None:
        """Take over jobs left running by a previous daemon."""
        for folder in (self.root / "jobs").iterdir():
            pid_file = folder / "pid"
            if pid_file.exists() and not (folder / "exit").exists():
                pid = int(pid_file.read_text())
                if _alive(pid):
                    spec = json.loads((folder / "spec.json").read_text())
                    self.running[folder.name] = (pid, pid_file.stat().st_mtime,
                                                 spec.get("walltime_s", 3600))

    def tick(self) -> bool:
        """One scheduling cycle; returns whether anything is queued or running."""
        self._reap()
        self._enforce()
        queue = sorted((self.root / "queue").iterdir())
        for entry in queue:
            if len(self.running) >= self.slots:
                break
            job_id = entry.name.split("-", 1)[1]
            folder = self.root / "jobs" / job_id
            if (folder / "cancel").exists():
                (folder / "cancelled").touch()
                (folder / "exit").write_text("143\n")
            elif not (folder / "pid").exists():
                self._start(job_id, folder)
            entry.unlink()
        return bool(self.running) or bool(queue)

    def _start(self, job_id: str, folder: Path) -> None:
        spec = json.loads((folder / "spec.json").read_text())
        workdir = Path(spec["workdir"])
        workdir.mkdir(parents=True, exist_ok=True)
        proc = subprocess.Popen(
            ["sh", "-c", _WRAPPER, "sh", str(folder), *spec["command"]],
            cwd=workdir, env={**self.env, **spec.get("env", {})}, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        _write_atomic(folder / "pid", str(proc.pid))
        self.children[proc.pid] = proc
        self.running[job_id] = (proc.pid, time.time(), spec.get("walltime_s", 3600))

    def _reap(self) -> None:
        for job_id, (pid, _, _) in list(self.running.items()):
            child = self.children.get(pid)
            finished = child.poll() is not None if child else not _alive(pid)
            if finished:
                self.children.pop(pid, None)
                del self.running[job_id]

    def _enforce(self) -> None:
        now = time.time()
        for job_id, (pid, started, walltime) in self.running.items():
            folder = self.root / "jobs" / job_id
            if (folder / "cancel").exists() and not (folder / "cancelled").exists():
                (folder / "cancelled").touch()
                _kill_group(pid)
            elif now - started > walltime and not (folder / "timeout").exists():
                (folder / "timeout").touch()
                _kill_group(pid)


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def main(root: str, slots: str) -> None:
    """Run the daemon until idle; a submission racing its exit finds the lock free."""
    base = Path(root)
    with open(base / "daemon.lock", "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return
        daemon, idle_since = Daemon(base, int(slots)), time.monotonic()
        while True:
            if daemon.tick():
                idle_since = time.monotonic()
            elif time.monotonic() - idle_since > _IDLE_EXIT_S:
                fcntl.flock(lock, fcntl.LOCK_UN)
                if not any((base / "queue").iterdir()):
                    return
                try:  # work arrived while we were leaving
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    return
            time.sleep(_TICK_S)


if __name__ == "__main__":
    main(*sys.argv[1:3])
