"""Slurm: one job array per submit, one ``squeue`` per poll, jobcomp/filetxt afterwards.

Settings: ``params`` (from the site's Airflow connection) override ``site.options``.

- ``bin_dir``: directory of sbatch, squeue, scancel, scontrol (default: PATH).
- ``jobcomp``: path of the jobcomp/filetxt log, the record of jobs gone from squeue
  (default: JobCompLoc of ``scontrol show config`` if JobCompType is jobcomp/filetxt;
  ``""``: none, exit codes then come from ``scontrol show job`` while Slurm knows the job).
- ``spool``: where the chunk directories go (default: ``.slurm`` in the common parent
  of the jobs' working directories, so it is on the file system the nodes see).
- ``python``: interpreter that runs ``ctaoflow.runner`` on the nodes, with
  ctaoflow installed (default: this interpreter, run from this source tree).
- ``sbatch_args``: extra sbatch arguments, a list (e.g. ``["--account=cta"]``).
- ``max_array_size``: elements per array (default 1000, Slurm's default limit).
- ``timeout``: seconds before a Slurm command counts as failed (default 60).

Each array gets a chunk directory ``<spool>/<chunk name>-<n>/`` with ``manifest.jsonl``
(one ``JobSpec.to_dict()`` per array index), ``job.sh`` and ``out/<index>``, a symlink
to ``<workdir>/slurm.log`` where Slurm writes the element's stdout and stderr. The
array's job name is the chunk name (common prefix of the job names + digest) and its
Slurm working directory is the chunk directory, so ``find`` gets from Slurm's records
back to the manifest and thus to job names. Job ids are ``<array id>_<index>``.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import math
import os
import re
import shlex
import subprocess
import sys
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import ctaoflow
from ctaoflow.backends.base import (
    Backend,
    BackendError,
    JobSpec,
    JobState,
    JobStatus,
    SiteConfig,
)

STATES = {
    "PENDING": JobState.PENDING, "CONFIGURING": JobState.PENDING,
    "REQUEUED": JobState.PENDING, "REQUEUE_HOLD": JobState.PENDING,
    "REQUEUE_FED": JobState.PENDING, "RESV_DEL_HOLD": JobState.PENDING,
    "RUNNING": JobState.RUNNING, "COMPLETING": JobState.RUNNING,
    "SUSPENDED": JobState.RUNNING, "STOPPED": JobState.RUNNING,
    "SIGNALING": JobState.RUNNING, "STAGE_OUT": JobState.RUNNING,
    "RESIZING": JobState.RUNNING,
    "COMPLETED": JobState.DONE,
    "FAILED": JobState.FAILED, "PREEMPTED": JobState.FAILED, "SPECIAL_EXIT": JobState.FAILED,
    "TIMEOUT": JobState.TIMEOUT, "DEADLINE": JobState.TIMEOUT,
    "CANCELLED": JobState.CANCELLED, "REVOKED": JobState.CANCELLED,
    "NODE_FAIL": JobState.NODE_FAIL, "BOOT_FAIL": JobState.NODE_FAIL,
    "OUT_OF_MEMORY": JobState.OUT_OF_MEMORY,
}
UNREACHABLE = ("contact slurm controller", "Socket timed out", "Connection refused")


def parse_exit(value: str) -> int:
    """Slurm's ``ExitCode=N:M`` (status N, signal M) as a shell would report it."""
    status, _, signal = value.partition(":")
    return int(status) if int(signal or 0) == 0 else 128 + int(signal)


def to_status(state: str, reason: str = "", exit_code: str | None = None) -> JobStatus:
    """A JobStatus from Slurm's state name, reason and ``ExitCode`` value."""
    job_state = STATES.get(state.split()[0], JobState.PENDING)
    code = parse_exit(exit_code) if exit_code else 0 if job_state is JobState.DONE else None
    return JobStatus(job_state, code, "" if reason in ("None", "(null)") else reason)


def chunk_name(names: Sequence[str]) -> str:
    """Deterministic array name: the job names' common prefix, ':' and a digest."""
    prefix = re.sub(r"[^._-]*$", "", os.path.commonprefix(list(names))).rstrip("._-")
    prefix = re.sub(r"[^A-Za-z0-9._-]", "_", prefix)[:100]
    digest = hashlib.sha1("\n".join(names).encode()).hexdigest()[:10]
    return f"{prefix}:{digest}"


def compact_ids(job_ids: Iterable[str]) -> list[str]:
    """``["7_1", "7_2", "8_0"]`` -> ``["7_[1,2]", "8_[0]"]`` for scancel."""
    arrays: dict[str, list[str]] = {}
    for job_id in job_ids:
        array_id, _, index = job_id.partition("_")
        arrays.setdefault(array_id, []).append(index)
    return [f"{a}_[{','.join(i)}]" if all(i) else a for a, i in arrays.items()]


def tail(path: Path, size: int) -> str:
    """The last ``size`` bytes of a file ('' if it does not exist)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(max(0, handle.seek(0, os.SEEK_END) - size))
            return handle.read().decode(errors="replace")
    except FileNotFoundError:
        return ""


class JobCompLog:
    """The jobcomp/filetxt log, read incrementally and indexed by job id.

    ``jobs`` maps ``<array id>_<index>`` (array elements) or ``<job id>`` (plain jobs
    and the never-started remainder of an array) to (state, ExitCode); ``arrays`` maps
    an array id to (job name, working directory).
    """

    LINE = re.compile(
        r"JobId=(?P<id>\d+) .*? Name=(?P<name>.*?) JobState=(?P<state>\S+) .*?"
        r" WorkDir=(?P<workdir>.*?) ReservationName=.*?"
        r"(?: ArrayJobId=(?P<array>\d+) ArrayTaskId=(?P<task>\d+))?"
        r" DerivedExitCode=\S+ ExitCode=(?P<exit>\S+)")
    _shared: ClassVar[dict[str, JobCompLog]] = {}

    def __init__(self, path: str) -> None:
        self.path = path
        self.inode = -1
        self.offset = 0
        self.jobs: dict[str, tuple[str, str]] = {}
        self.arrays: dict[str, tuple[str, str]] = {}
        self.lock = threading.Lock()

    @classmethod
    def shared(cls, path: str) -> JobCompLog:
        """One index per file and process, so new backend objects reuse what was read."""
        return cls._shared.setdefault(path, cls(path))

    def refresh(self) -> JobCompLog:
        """Read the lines appended since the last call (from the start after a rotation)."""
        with self.lock:
            try:
                stat = os.stat(self.path)
            except FileNotFoundError:
                return self
            if stat.st_ino != self.inode or stat.st_size < self.offset:
                self.inode, self.offset = stat.st_ino, 0
                self.jobs.clear()
                self.arrays.clear()
            if stat.st_size > self.offset:
                with open(self.path, "rb") as handle:
                    handle.seek(self.offset)
                    data = handle.read()
                end = data.rfind(b"\n") + 1
                self.offset += end
                for line in data[:end].decode(errors="replace").splitlines():
                    self._add(line)
        return self

    def _add(self, line: str) -> None:
        match = self.LINE.match(line)
        if not match:
            return
        array = match["array"] or match["id"]
        key = f"{array}_{match['task']}" if match["task"] else match["id"]
        self.jobs[key] = (match["state"], match["exit"])
        self.arrays.setdefault(array, (match["name"], match["workdir"]))

    def status(self, job_id: str) -> JobStatus | None:
        """Final status of an array element, or of the array's never-started remainder."""
        record = self.jobs.get(job_id) or self.jobs.get(job_id.partition("_")[0])
        return to_status(record[0], "", record[1]) if record else None


class SlurmBackend(Backend):
    """Jobs as Slurm job arrays; see the module docstring for settings and layout."""

    def __init__(self, site: SiteConfig, params: dict[str, Any] | None = None) -> None:
        super().__init__(site, params)
        self.settings = {**site.options, **self.params}
        self.timeout = float(self.settings.get("timeout", 60))
        self._chunks: dict[str, Path] = {}  # array id -> chunk directory
        self._jobcomp: str | None = self.settings.get("jobcomp")
        self._jobcomp_known = "jobcomp" in self.settings

    # ------------------------------------------------------------------ commands
    def _run(self, tool: str, args: Sequence[str], tolerate: str | None = None) -> str:
        """stdout of a Slurm command; BackendError (one line) if it fails."""
        binary = os.path.join(self.settings["bin_dir"], tool) if "bin_dir" in self.settings else tool
        try:
            proc = subprocess.run([binary, *args], capture_output=True, text=True,
                                  timeout=self.timeout, check=False)
        except FileNotFoundError:
            raise BackendError(f"site {self.site.name}: {binary} not found; "
                               "install slurm-client or set bin_dir") from None
        except subprocess.TimeoutExpired:
            raise BackendError(f"site {self.site.name}: {tool} timed out after "
                               f"{self.timeout:g} s; is slurmctld running?") from None
        errors = [line for line in proc.stderr.splitlines() if line.strip()]
        if proc.returncode == 0 or (tolerate and errors and all(tolerate in e for e in errors)):
            return proc.stdout
        message = errors[-1].strip() if errors else f"exit status {proc.returncode}"
        hint = "; is slurmctld running?" if any(u in message for u in UNREACHABLE) else ""
        raise BackendError(f"site {self.site.name}: {tool} failed: {message}{hint}")

    # ------------------------------------------------------------------ submit
    def submit(self, jobs: Sequence[JobSpec]) -> dict[str, str]:
        """One array per group of equal resources (normally one), at most max_array_size."""
        groups: dict[tuple[int, int, int], list[JobSpec]] = {}
        for job in jobs:
            groups.setdefault((job.cores, job.memory_mb, job.walltime_s), []).append(job)
        limit = int(self.settings.get("max_array_size", 1000))
        ids: dict[str, str] = {}
        for group in groups.values():
            for start in range(0, len(group), limit):
                ids.update(self._submit_array(group[start:start + limit]))
        return ids

    def _submit_array(self, jobs: list[JobSpec]) -> dict[str, str]:
        chunk = chunk_name([job.name for job in jobs])
        directory = self._write_chunk(chunk, jobs)
        first = jobs[0]
        args = ["--parsable", f"--array=0-{len(jobs) - 1}", f"--job-name={chunk}",
                f"--chdir={directory}", f"--output={directory}/out/%a",
                f"--cpus-per-task={first.cores}", f"--mem={first.memory_mb}M",
                f"--time={max(1, math.ceil(first.walltime_s / 60))}"]
        if self.site.queue:
            args.append(f"--partition={self.site.queue}")
        args += [*self.settings.get("sbatch_args", []), str(directory / "job.sh")]
        array_id = self._run("sbatch", args).strip().split(";")[0]
        if not array_id.isdigit():
            raise BackendError(f"site {self.site.name}: sbatch answered {array_id!r}")
        self._chunks[array_id] = directory
        return {job.name: f"{array_id}_{index}" for index, job in enumerate(jobs)}

    def _spool(self, jobs: list[JobSpec]) -> Path:
        if "spool" in self.settings:
            return Path(self.settings["spool"]).absolute()
        parents = [os.path.dirname(os.path.abspath(job.workdir)) for job in jobs]
        return Path(os.path.commonpath(parents)) / ".slurm"

    def _write_chunk(self, chunk: str, jobs: list[JobSpec]) -> Path:
        """Chunk directory with manifest (written atomically), batch script, log links."""
        spool = self._spool(jobs)
        spool.mkdir(parents=True, exist_ok=True)
        number = 0
        while True:
            directory = spool / f"{chunk}-{number}"
            try:
                directory.mkdir()
                break
            except FileExistsError:
                number += 1
        (directory / "out").mkdir()
        lines = []
        for index, job in enumerate(jobs):
            workdir = os.path.abspath(job.workdir)
            os.makedirs(workdir, exist_ok=True)
            (directory / "out" / str(index)).symlink_to(os.path.join(workdir, "slurm.log"))
            lines.append(json.dumps({**job.to_dict(), "workdir": workdir}) + "\n")
        manifest = directory / "manifest.jsonl"
        partial = directory / "manifest.jsonl.part"
        partial.write_text("".join(lines), encoding="utf-8")
        os.replace(partial, manifest)
        self._write_script(directory / "job.sh", manifest)
        return directory

    def _write_script(self, path: Path, manifest: Path) -> None:
        python = self.settings.get("python")
        run = (f"exec {shlex.quote(python or sys.executable)} -m ctaoflow.runner "
               f'{shlex.quote(str(manifest))} "$SLURM_ARRAY_TASK_ID"')
        if not python:  # this interpreter: import ctaoflow from this source tree
            source = Path(ctaoflow.__file__).resolve().parents[1]
            run = f"cd {shlex.quote(str(source))} && {run}"
        path.write_text(f"#!/bin/sh\n# ctaoflow: element $SLURM_ARRAY_TASK_ID of {manifest.name}\n"
                        f"{run}\n", encoding="utf-8")

    # ------------------------------------------------------------------ find
    def find(self, names: Sequence[str]) -> dict[str, str]:
        """Ids of named jobs in arrays that squeue or the jobcomp log still know."""
        wanted = set(names)
        ordered = sorted(wanted)
        found: dict[str, str] = {}
        for array_id, (job_name, workdir) in sorted(self._arrays().items(), key=lambda a: int(a[0])):
            prefix, colon, _ = job_name.rpartition(":")
            if not colon or not self._has_prefix(ordered, prefix):
                continue
            manifest = Path(workdir) / "manifest.jsonl"
            if not manifest.is_file():
                continue
            self._chunks[array_id] = Path(workdir)
            with open(manifest, encoding="utf-8") as handle:
                for index, line in enumerate(handle):
                    name = json.loads(line)["name"]
                    if name in wanted:
                        found[name] = f"{array_id}_{index}"  # the newest array wins
        return {name: found[name] for name in names if name in found}

    @staticmethod
    def _has_prefix(sorted_names: list[str], prefix: str) -> bool:
        index = bisect.bisect_left(sorted_names, prefix)
        return index < len(sorted_names) and sorted_names[index].startswith(prefix)

    def _arrays(self) -> dict[str, tuple[str, str]]:
        """Array id -> (job name, working directory) of this user's arrays."""
        arrays = dict(self._jobcomp_log().arrays) if self._jobcomp_path() else {}
        for line in self._run("squeue", ["-h", "-t", "all", "--me", "-o", "%F|%j|%Z"]).splitlines():
            array_id, job_name, workdir = line.split("|", 2)
            arrays[array_id] = (job_name, workdir)
        return arrays

    # ------------------------------------------------------------------ poll
    def poll(self, job_ids: Sequence[str]) -> dict[str, JobStatus]:
        """One squeue call; the jobcomp log for exit codes and jobs squeue forgot."""
        if not job_ids:
            return {}
        arrays = sorted({job_id.partition("_")[0] for job_id in job_ids}, key=int)
        out = self._run("squeue", ["-h", "-t", "all", "-r", "-j", ",".join(arrays),
                                   "-o", "%i %T %r"], tolerate="Invalid job id")
        current = {}
        for line in out.splitlines():
            job_id, state, reason = (line.split(" ", 2) + [""])[:3]
            current[job_id] = to_status(state, reason)
        result: dict[str, JobStatus] = {}
        for job_id in job_ids:
            status = current.get(job_id)
            if status and (not status.state.final or status.exit_code is not None):
                result[job_id] = status
        unresolved = [job_id for job_id in job_ids if job_id not in result]
        if unresolved:  # finished without exit code in squeue, or gone from squeue
            result.update(self._final(unresolved, current))
        return {job_id: result[job_id] for job_id in job_ids}

    def _final(self, job_ids: list[str], current: dict[str, JobStatus]) -> dict[str, JobStatus]:
        """From the jobcomp log, else from the controller while it still knows the job."""
        log = self._jobcomp_log() if self._jobcomp_path() else None
        result: dict[str, JobStatus] = {}
        for job_id in job_ids:
            record = log.status(job_id) if log else None
            status = current.get(job_id)
            if record:
                result[job_id] = JobStatus(record.state, record.exit_code,
                                           status.reason if status else "")
            elif not status:
                result[job_id] = JobStatus(JobState.LOST, None,
                                           "unknown to squeue and the jobcomp log")
        asked = [job_id for job_id in job_ids if job_id not in result]
        if asked:
            result.update(self._scontrol_statuses(asked, current))
        return result

    def _scontrol_statuses(self, job_ids: list[str],
                           current: dict[str, JobStatus]) -> dict[str, JobStatus]:
        """Exit codes from ``scontrol -o show job``, one call per array."""
        codes: dict[str, int] = {}
        for array_id in sorted({job_id.partition("_")[0] for job_id in job_ids}):
            out = self._run("scontrol", ["-o", "show", "job", array_id], tolerate="Invalid job id")
            for match in re.finditer(r"ArrayJobId=(\d+) ArrayTaskId=(\d+) .*? ExitCode=(\S+)", out):
                codes[f"{match[1]}_{match[2]}"] = parse_exit(match[3])
        return {job_id: JobStatus(current[job_id].state, codes.get(job_id), current[job_id].reason)
                for job_id in job_ids}

    def _jobcomp_path(self) -> str | None:
        """The jobcomp/filetxt log if readable here (asks ``scontrol show config`` once)."""
        if not self._jobcomp_known:
            config = dict(re.findall(r"^(JobComp\w+)\s*=\s*(.*?)\s*$",
                                     self._run("scontrol", ["show", "config"]), re.MULTILINE))
            if config.get("JobCompType") == "jobcomp/filetxt":
                self._jobcomp = config.get("JobCompLoc")
            self._jobcomp_known = True
        return self._jobcomp if self._jobcomp and os.access(self._jobcomp, os.R_OK) else None

    def _jobcomp_log(self) -> JobCompLog:
        return JobCompLog.shared(str(self._jobcomp_path())).refresh()

    # ------------------------------------------------------------------ cancel, log
    def cancel(self, job_ids: Sequence[str]) -> None:
        """One scancel call; jobs already finished or forgotten are not an error."""
        if job_ids:
            self._run("scancel", compact_ids(job_ids), tolerate="Invalid job id")

    def log(self, job_id: str, tail_bytes: int = 20000) -> str:
        """End of the element's stdout+stderr (``<workdir>/slurm.log``)."""
        array_id, _, index = job_id.partition("_")
        return tail(self._chunk_dir(array_id) / "out" / index, tail_bytes)

    def _chunk_dir(self, array_id: str) -> Path:
        if array_id not in self._chunks:
            out = self._run("squeue", ["-h", "-t", "all", "-j", array_id, "-o", "%Z"],
                            tolerate="Invalid job id").split("\n")[0].strip()
            if not out and self._jobcomp_path():
                out = self._jobcomp_log().arrays.get(array_id, ("", ""))[1]
            if not out:
                raise BackendError(f"site {self.site.name}: no record of job array {array_id}")
            self._chunks[array_id] = Path(out)
        return self._chunks[array_id]
