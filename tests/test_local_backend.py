"""The local backend: a real detached batch system on this machine."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from ctaoflow.backends import BackendError, JobSpec, JobState, SiteConfig, make_backend


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


def gone(pid: int, timeout: float = 30.0) -> bool:
    """Whether process ``pid`` is dead (or a zombie) within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] == "Z":
                return True
        except (OSError, IndexError):
            return True
        time.sleep(0.05)
    return False


def read_pid(path: Path, timeout: float = 30.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = path.read_text().strip() if path.exists() else ""
        if text:
            return int(text)
        time.sleep(0.05)
    raise AssertionError(f"{path} never written")


def test_a_job_that_cannot_start_fails_and_the_queue_goes_on(tmp_path: Path) -> None:
    backend = make_backend(site(tmp_path, slots=1))
    (tmp_path / "a-file").write_text("")
    bad = [JobSpec(name="b.nul", command=("echo", "a\0b"), workdir=str(tmp_path / "w1")),
           JobSpec(name="b.envnul", command=("true",), workdir=str(tmp_path / "w2"),
                   env={"X": "a\0b"}),
           JobSpec(name="b.workdir", command=("true",), workdir=str(tmp_path / "a-file" / "w"))]
    later = JobSpec(name="b.later", command=("sh", "-c", "echo fine"), workdir=str(tmp_path / "w4"))
    backend.submit(bad)
    backend.submit([later])
    statuses = wait_final(backend, [job.name for job in [*bad, later]])
    assert statuses["b.later"].state is JobState.DONE and backend.log("b.later") == "fine\n"
    for job in bad:
        status = statuses[job.name]
        assert status.state is JobState.FAILED and status.exit_code == 126, status
        assert "could not start this job" in status.reason
        assert status.reason in backend.log(job.name)
    assert "null byte" in statuses["b.nul"].reason
    assert not list((tmp_path / "spool" / "queue").iterdir())


def test_leftover_processes_die_with_their_job(tmp_path: Path) -> None:
    """A background child and a setsid'd, double-forked one do not outlive the job."""
    backend = make_backend(site(tmp_path))
    script = ('sleep 300 & echo $! > "$0/child"; '
              'setsid sh -c \'sleep 300 & echo $! > "$0/escaped"\' "$0"; exit 0')
    backend.submit([JobSpec(name="l.1", command=("sh", "-c", script, str(tmp_path)),
                            workdir=str(tmp_path / "w"))])
    assert wait_final(backend, ["l.1"])["l.1"].state is JobState.DONE
    assert gone(read_pid(tmp_path / "child")) and gone(read_pid(tmp_path / "escaped"))


def test_walltime_kills_the_whole_job_even_a_setsid_child(tmp_path: Path) -> None:
    backend = make_backend(site(tmp_path))
    script = ('setsid sh -c \'echo $$ > "$0/escaped"; exec sleep 300\' "$0" & '
              'sleep 300 & echo $! > "$0/child"; wait')
    backend.submit([JobSpec(name="w.1", command=("sh", "-c", script, str(tmp_path)),
                            workdir=str(tmp_path / "w"), walltime_s=1)])
    escaped, child = read_pid(tmp_path / "escaped"), read_pid(tmp_path / "child")
    assert wait_final(backend, ["w.1"])["w.1"].state is JobState.TIMEOUT
    assert gone(escaped) and gone(child)


def test_job_logs_keep_head_and_tail(tmp_path: Path) -> None:
    """A 6 MiB log keeps its first and last MiB, and says what was cut."""
    backend = make_backend(site(tmp_path))
    lines = 6 * 2**20 // 16
    script = f"import sys\nfor i in range({lines}): sys.stdout.write('line %010d\\n' % i)"
    backend.submit([JobSpec(name="g.1", command=("python", "-c", script),
                            workdir=str(tmp_path / "w"))])
    assert wait_final(backend, ["g.1"])["g.1"].state is JobState.DONE
    log = (tmp_path / "spool" / "jobs" / "g.1" / "job.log").read_bytes()
    assert len(log) < 2 * 2**20 + 8192  # the two MiB kept, the note, a partial line
    assert log.startswith(b"line 0000000000\n")
    assert log.endswith(b"line %010d\n" % (lines - 1))
    assert b"bytes cut from the middle of this log" in log


def test_a_full_spool_is_one_line_and_leaves_no_half_job(tmp_path: Path) -> None:
    mount = tmp_path / "spool"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)],
                      capture_output=True, check=False).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        backend = make_backend(site(tmp_path))
        fd = os.open(mount / "filler", os.O_WRONLY | os.O_CREAT)
        with pytest.raises(OSError):
            while True:
                os.write(fd, b"\0" * 1024)
        os.close(fd)
        job = JobSpec(name="f.1", command=("true",), workdir=str(tmp_path / "w"),
                      env={"BIG": "x" * 8192})
        with pytest.raises(BackendError, match="cannot write its spool.*No space left") as raised:
            backend.submit([job])
        assert "\n" not in str(raised.value) and str(mount) in str(raised.value)
        assert backend.find(["f.1"]) == {}
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)
