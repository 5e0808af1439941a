"""The local backend: a small batch system on this machine, with a slot limit.

Like a real batch system its jobs outlive whoever submitted them. A submission writes
the job's spec into a spool folder; a detached daemon (``python -m
ctaoflow.backends.local ROOT SLOTS``, started on demand, exiting when idle) starts
queued jobs while fewer than SLOTS run. Each job runs in its own session under a
constant ``sh`` wrapper that passes the argument vector through ``"$@"`` untouched
and records the exit code on disk, so a job's status survives the death of the
daemon and of the task that submitted it. A job the daemon cannot start (a NUL byte
in an argument, a workdir it cannot create) fails with the reason in its log; the
queue goes on. At the end of a job and at walltime every process of the job is
killed, those that left its session included (found by an environment marker); logs
keep their head and tail. Spool layout, per job id (= job name): ``spec.json``,
``pid``, ``exit``, ``reason``, ``cancel``, ``timeout``, ``job.log``.
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

LOG_HEAD = LOG_TAIL = 1 << 20  # a job's log keeps its first and last MiB
_LOG_SLACK = 4096  # a log is cut only when that saves more than this
# While the job runs, the daemon cuts only a runaway log, this far beyond what is kept: a
# cut then may lose what the job writes during it; the cut after the job ends loses nothing.
_LOG_RUNAWAY = 64 << 20
# Runs "$@" (the job's argv, never parsed by the shell), caps a long log and records its
# exit code. The log is opened for appending, so the daemon can also cap it while the
# job writes.
_WRAPPER = ('d="$1"; py="$2"; shift 2; "$@" >>"$d/job.log" 2>&1; c=$?; '
            f'if [ "$(wc -c <"$d/job.log")" -gt {LOG_HEAD + LOG_TAIL + _LOG_SLACK} ]; then '
            '"$py" -m ctaoflow.backends.local --cap "$d/job.log"; fi; '
            'echo $c >"$d/exit.part" && mv "$d/exit.part" "$d/exit"')
_IDLE_EXIT_S = 30.0
_TICK_S = 0.05
# Every process of a job inherits this variable (value: the job's folder), so leftovers
# that left its session (setsid, double fork) are still found in /proc and killed.
MARKER = "CTAOFLOW_LOCAL_JOB"
NOT_STARTED = 126  # the exit code of a job the daemon could not start


class LocalBackend(Backend):
    """Jobs as detached processes on this machine, at most ``site.slots`` at once."""

    @property
    def spool(self) -> Path:
        return Path(self.site.options.get("root") or settings.home() / "local-batch")

    @property
    def root(self) -> Path:
        """The spool folder, created with its ``jobs`` and ``queue`` folders."""
        root = self.spool
        (root / "jobs").mkdir(parents=True, exist_ok=True)
        (root / "queue").mkdir(exist_ok=True)
        return root

    def submit(self, jobs: Sequence[JobSpec]) -> dict[str, str]:
        try:
            root = self.root
            for job in jobs:
                folder = root / "jobs" / _safe(job.name)
                if (folder / "spec.json").exists():
                    continue  # already submitted: submission is idempotent by name
                folder.mkdir(exist_ok=True)
                _write_atomic(folder / "spec.json", json.dumps(job.to_dict()))
                try:
                    (root / "queue" / f"{time.time_ns():020d}-{job.name}").touch()
                except OSError:
                    (folder / "spec.json").unlink()  # never a job known but not queued
                    raise
            ensure_daemon(root, self.site.slots)
        except OSError as exc:
            raise BackendError(f"local backend: cannot write its spool {self.spool}: {exc}; "
                               "free space or fix permissions there") from None
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
        reason = (folder / "reason").read_text() if (folder / "reason").exists() else ""
        return JobStatus(JobState.DONE if code == 0 else JobState.FAILED, code, reason)
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
                         start_new_session=True, close_fds=True,
                         # started from a job, it is still not part of that job
                         env={k: v for k, v in os.environ.items() if k != MARKER})


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
            try:
                pid = int((folder / "pid").read_text())
                if (folder / "exit").exists() or not _alive(pid):
                    continue
                spec = json.loads((folder / "spec.json").read_text())
                self.running[folder.name] = (pid, (folder / "pid").stat().st_mtime,
                                             spec.get("walltime_s", 3600))
            except (OSError, ValueError):
                continue  # never started, or not a job folder: nothing to adopt

    def tick(self) -> bool:
        """One scheduling cycle; returns whether anything is queued or running."""
        self._reap()
        self._enforce()
        queue = sorted((self.root / "queue").iterdir())
        for entry in queue:
            if len(self.running) >= self.slots:
                break
            try:
                self._dequeue(entry.name.partition("-")[2])
            finally:  # a bad entry must never block the queue
                entry.unlink(missing_ok=True)
        return bool(self.running) or bool(queue)

    def _dequeue(self, job_id: str) -> None:
        folder = self.root / "jobs" / job_id
        if not job_id or "/" in job_id or not (folder / "spec.json").is_file():
            return  # not a job of this spool
        if (folder / "cancel").exists():
            (folder / "cancelled").touch()
            (folder / "exit").write_text("143\n")
        elif not (folder / "pid").exists():
            try:
                self._start(job_id, folder)
            except Exception as exc:  # noqa: BLE001 - whatever the job, the daemon goes on
                _not_started(folder, f"{type(exc).__name__}: {exc}")

    def _start(self, job_id: str, folder: Path) -> None:
        spec = json.loads((folder / "spec.json").read_text())
        workdir = Path(spec["workdir"])
        workdir.mkdir(parents=True, exist_ok=True)
        env = {**self.env, **spec.get("env", {}), MARKER: str(folder)}
        proc = subprocess.Popen(
            ["sh", "-c", _WRAPPER, "sh", str(folder), sys.executable, *spec["command"]],
            cwd=workdir, env=env, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        _write_atomic(folder / "pid", str(proc.pid))
        self.children[proc.pid] = proc
        self.running[job_id] = (proc.pid, time.time(), spec.get("walltime_s", 3600))

    def _reap(self) -> None:
        """Forget finished jobs, after killing what they left behind and capping the log."""
        for job_id, (pid, _, _) in list(self.running.items()):
            child = self.children.get(pid)
            finished = child.poll() is not None if child else not _alive(pid)
            folder = self.root / "jobs" / job_id
            if finished:
                kill_job(pid, folder)
                self.children.pop(pid, None)
                del self.running[job_id]
            cap_log(folder / "job.log", slack=_LOG_SLACK if finished else _LOG_RUNAWAY)

    def _enforce(self) -> None:
        now = time.time()
        for job_id, (pid, started, walltime) in self.running.items():
            folder = self.root / "jobs" / job_id
            if (folder / "cancel").exists() and not (folder / "cancelled").exists():
                (folder / "cancelled").touch()
                kill_job(pid, folder)
            elif now - started > walltime and not (folder / "timeout").exists():
                (folder / "timeout").touch()
                kill_job(pid, folder)


def _not_started(folder: Path, reason: str) -> None:
    """Fail a job the daemon could not start: the reason in its log and status."""
    reason = f"the local backend could not start this job: {reason}"
    with (folder / "job.log").open("a") as log:
        log.write(f"ctaoflow local backend: {reason}\n")
    _write_atomic(folder / "reason", reason)
    _write_atomic(folder / "exit", f"{NOT_STARTED}\n")


def job_processes(pid: int, folder: Path) -> set[int]:
    """Every live process of the job whose wrapper was ``pid``: what carries the job's
    marker (setsid escapees included), its session and process group (unless ``pid`` now
    belongs to another process), and the descendants of all these."""
    marker = f"{MARKER}={folder}".encode()
    parents: dict[int, int] = {}
    found: set[int] = set()
    by_id: set[int] = set()  # in the session or process group ``pid`` led
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        proc = int(entry.name)
        try:
            fields = (entry / "stat").read_text().rsplit(") ", 1)[1].split()
            parents[proc] = int(fields[1])
            if pid in (int(fields[2]), int(fields[3])):
                by_id.add(proc)
            if marker in (entry / "environ").read_bytes().split(b"\0"):
                found.add(proc)
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile, or not ours to read
    if pid not in parents or pid in found:  # ``pid`` is still the job's, or nobody's
        found |= by_id
    grown = found
    while grown:  # add the descendants of what was found
        grown = {p for p, parent in parents.items() if parent in grown} - found
        found |= grown
    return {p for p in found if _alive(p)}


def kill_job(pid: int, folder: Path) -> None:
    """SIGKILL every process of the job, until none is left (forks during the sweep)."""
    for _ in range(10):
        processes = job_processes(pid, folder)
        if not processes:
            return
        for proc in processes:
            try:
                os.kill(proc, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


def cap_log(path: Path, head: int = LOG_HEAD, tail: int = LOG_TAIL,
            slack: int = _LOG_SLACK) -> None:
    """Cut the middle of a log beyond ``head + tail + slack`` bytes, in place, saying how much.

    The job appends to the same file (``>>``), so it keeps writing after the cut (as
    logrotate's copytruncate; only bytes written between reading the tail and the cut
    may be lost). The daemon and the job's wrapper may both cap: a lock serializes them.
    """
    try:
        if path.stat().st_size <= head + tail + slack:
            return
        with path.open("r+b") as log:
            fcntl.flock(log, fcntl.LOCK_EX)
            size = os.fstat(log.fileno()).st_size
            if size <= head + tail + slack:
                return
            first = log.read(head)
            log.seek(size - tail)
            last = log.read()  # to the end, with what the job wrote meanwhile
            cut_file = path.with_name(path.name + ".cut")
            cut = size - head - tail + (int(cut_file.read_text()) if cut_file.exists() else 0)
            _write_atomic(cut_file, str(cut))
            note = (f"\n[ctaoflow local backend: {cut} bytes cut from the middle of this log; "
                    f"it keeps the first {head} and the last {tail} bytes]\n").encode()
            log.seek(0)
            log.truncate()
            log.write(first + note + last)
    except (OSError, ValueError):
        pass  # the next tick tries again


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
    if sys.argv[1] == "--cap":  # the wrapper, as its job ends
        cap_log(Path(sys.argv[2]))
    else:
        main(*sys.argv[1:3])
