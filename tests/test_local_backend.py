"""The local backend: a real detached batch system on this machine."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from ctaoflow.backends import JobSpec, JobState, SiteConfig, make_backend


def wait_final(backend, ids, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        statuses = backend.poll(ids)
        if all(s.state.final for s in statuses.values()):
            return statuses
        time.sleep(0.1)
    raise AssertionError(f"jobs not final after {timeout} s: {statuses}")


def site(tmp_path: Path, slots: int = 4) -> SiteConfig:
    return SiteConfig(name="local", backend="local", slots=slots,
                      options={"root": str(tmp_path / "spool")})


def test_exit_codes_logs_and_verbatim_arguments(tmp_path: Path) -> None:
    backend = make_backend(site(tmp_path))
    hostile = "a b; rm -rf / $(touch pwned) `id` 'q' \"dq\"\nline2"
    jobs = [JobSpec(name="t.ok", command=("printf", "%s", hostile), workdir=str(tmp_path / "w1")),
            JobSpec(name="t.fail", command=("sh", "-c", "echo boom >&2; exit 3"),
                    workdir=str(tmp_path / "w2"))]
    ids = backend.submit(jobs)
    statuses = wait_final(backend, list(ids.values()))
    assert statuses["t.ok"].state is JobState.DONE and statuses["t.ok"].exit_code == 0
    assert statuses["t.fail"].state is JobState.FAILED and statuses["t.fail"].exit_code == 3
    assert backend.log("t.ok") == hostile
    assert backend.log("t.fail") == "boom\n"
    assert not (tmp_path / "w1" / "pwned").exists()


def test_slot_limit_is_respected(tmp_path: Path) -> None:
    backend = make_backend(site(tmp_path, slots=2))
    marker = tmp_path / "running"
    marker.mkdir()
    script = ('touch "$0/$$"; n=$(ls "$0" | wc -l); echo $n >> "$0.max"; sleep 0.3; rm "$0/$$"')
    jobs = [JobSpec(name=f"s.{i}", command=("sh", "-c", script, str(marker)),
                    workdir=str(tmp_path / f"w{i}")) for i in range(6)]
    wait_final(backend, list(backend.submit(jobs).values()))
    assert max(int(x) for x in (tmp_path / "running.max").read_text().split()) <= 2


def test_jobs_outlive_the_daemon_and_resubmission_is_idempotent(tmp_path: Path) -> None:
    backend = make_backend(site(tmp_path))
    job = JobSpec(name="d.1", command=("sh", "-c", "sleep 1; echo done > out"),
                  workdir=str(tmp_path / "w"))
    backend.submit([job])
    root = tmp_path / "spool"
    deadline = time.monotonic() + 10
    while not (root / "jobs" / "d.1" / "pid").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    daemon_pids = [int(p) for p in os.popen("pgrep -f 'ctaoflow.backends.local " + str(root) + "'").read().split()]
    assert daemon_pids
    for pid in daemon_pids:
        os.kill(pid, signal.SIGKILL)
    backend.submit([job])  # a restarted submitter: same name, no second job
    assert backend.find(["d.1", "d.2"]) == {"d.1": "d.1"}
    statuses = wait_final(backend, ["d.1"])
    assert statuses["d.1"].state is JobState.DONE
    assert (tmp_path / "w" / "out").read_text() == "done\n"
    assert len(list((root / "jobs").iterdir())) == 1


def test_cancel_and_walltime(tmp_path: Path) -> None:
    backend = make_backend(site(tmp_path, slots=1))
    jobs = [JobSpec(name="c.long", command=("sleep", "30"), workdir=str(tmp_path / "a"),
                    walltime_s=1),
            JobSpec(name="c.queued", command=("sleep", "30"), workdir=str(tmp_path / "b"))]
    backend.submit(jobs)
    backend.cancel(["c.queued"])
    statuses = wait_final(backend, ["c.long", "c.queued"])
    assert statuses["c.long"].state is JobState.TIMEOUT
    assert statuses["c.queued"].state is JobState.CANCELLED
    assert backend.poll(["never.submitted"])["never.submitted"].state is JobState.LOST
