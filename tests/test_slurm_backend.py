"""SlurmBackend against a real single-node Slurm (services/slurm/start.sh)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from ctaoflow.backends import BackendError, JobSpec, JobState, JobStatus
from ctaoflow.backends.slurm import JobCompLog, SlurmBackend, chunk_name
from tests.slurm_service import SlurmCluster

pytestmark = pytest.mark.slurm


def backend(cluster: SlurmCluster, **params: object) -> SlurmBackend:
    return SlurmBackend(cluster.site, {"jobcomp": str(cluster.jobcomp), **params})


def specs(tmp_path: Path, name: str, commands: list[list[str]], cores: int = 1,
          walltime_s: int = 600) -> list[JobSpec]:
    """Jobs ``<name>.<i>.1`` running ``commands`` in ``tmp_path/<i>``."""
    return [JobSpec(f"{name}.{i:04d}.1", tuple(cmd), str(tmp_path / f"{i:04d}"), cores=cores,
                    memory_mb=50, walltime_s=walltime_s) for i, cmd in enumerate(commands)]


def wait_final(slurm: SlurmBackend, ids: list[str], timeout: float = 60) -> dict[str, JobStatus]:
    deadline = time.monotonic() + timeout
    while True:
        states = slurm.poll(ids)
        if all(status.state.final for status in states.values()):
            return states
        assert time.monotonic() < deadline, f"not final after {timeout} s: {states}"
        time.sleep(0.5)


def wait_running(slurm: SlurmBackend, ids: list[str], count: int) -> None:
    for _ in range(60):
        if sum(s.state is JobState.RUNNING for s in slurm.poll(ids).values()) >= count:
            return
        time.sleep(0.5)
    raise AssertionError("jobs did not start")


def controller_boot_time() -> str:
    out = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True,
                         check=True).stdout
    return next(line for line in out.splitlines() if line.startswith("BOOT_TIME"))


def arrays_named(chunk: str) -> set[str]:
    out = subprocess.run(["squeue", "-h", "-t", "all", "-r", f"--name={chunk}", "-o", "%F"],
                         capture_output=True, text=True, check=True).stdout
    return set(out.split())


def test_array_runs_in_workdirs(slurm_cluster: SlurmCluster, tmp_path: Path) -> None:
    slurm = backend(slurm_cluster)
    jobs = specs(tmp_path, "prod.array", [["sh", "-c", f"echo job {i} > result.txt; echo to log {i}"]
                                          for i in range(20)])
    ids = slurm.submit(jobs)
    assert list(ids) == [job.name for job in jobs]
    assert len({job_id.split("_")[0] for job_id in ids.values()}) == 1  # one array
    states = wait_final(slurm, list(ids.values()))
    assert set(states.values()) == {JobStatus(JobState.DONE, 0)}
    for i, job in enumerate(jobs):
        assert (Path(job.workdir) / "result.txt").read_text() == f"job {i}\n"
        assert slurm.log(ids[job.name]) == f"to log {i}\n"
        assert (Path(job.workdir) / "slurm.log").read_text() == f"to log {i}\n"


def test_exit_code(slurm_cluster: SlurmCluster, tmp_path: Path) -> None:
    slurm = backend(slurm_cluster)
    ids = slurm.submit(specs(tmp_path, "prod.fail", [["sh", "-c", "echo oops >&2; exit 3"],
                                                      ["no-such-program"]]))
    states = wait_final(slurm, list(ids.values()))
    assert states[ids["prod.fail.0000.1"]] == JobStatus(JobState.FAILED, 3, "NonZeroExitCode")
    assert states[ids["prod.fail.0001.1"]].exit_code == 127
    assert slurm.log(ids["prod.fail.0000.1"]) == "oops\n"
    assert "no-such-program" in slurm.log(ids["prod.fail.0001.1"])
    # without a readable jobcomp log the exit codes come from scontrol
    assert backend(slurm_cluster, jobcomp="").poll(list(ids.values())) == states


def test_arguments_reach_program_verbatim(slurm_cluster: SlurmCluster, tmp_path: Path) -> None:
    tricky = ["a b", "it's", 'say "hi"', "$(touch pwned)", "`id`", "x; touch pwned2",
              "line1\nline2", "$HOME", "*", "", "back\\slash"]
    script = "import json, os, sys; json.dump([sys.argv[1:], os.environ['TRICKY']], open('args.json', 'w'))"
    job = JobSpec("prod.args.0000.1", (sys.executable, "-c", script, *tricky),
                  str(tmp_path / "job"), env={"TRICKY": "$(x) 'y' \"z\""}, memory_mb=50)
    slurm = backend(slurm_cluster)
    ids = slurm.submit([job])
    assert wait_final(slurm, list(ids.values()))[ids[job.name]].state is JobState.DONE
    argv, env = json.loads((tmp_path / "job" / "args.json").read_text())
    assert argv == tricky and env == "$(x) 'y' \"z\""
    assert not list(tmp_path.rglob("pwned*"))


def test_cancel_running_and_pending(slurm_cluster: SlurmCluster, tmp_path: Path) -> None:
    slurm = backend(slurm_cluster)
    # 16 cores each on 32 advertised CPUs: at most two run, the rest stay pending
    ids = slurm.submit(specs(tmp_path, "prod.cancel", [["sleep", "300"]] * 4, cores=16))
    wait_running(slurm, list(ids.values()), 1)
    slurm.cancel(list(ids.values()))
    states = wait_final(slurm, list(ids.values()), timeout=30)
    assert {s.state for s in states.values()} == {JobState.CANCELLED}
    slurm.cancel(list(ids.values()))  # already finished: no error
    # the permanent record gives the same answer once squeue has forgotten the jobs
    time.sleep(1)
    record = JobCompLog(str(slurm_cluster.jobcomp)).refresh()
    assert {record.status(job_id) for job_id in ids.values()} == {
        JobStatus(JobState.CANCELLED, 0)}


def test_jobcomp_matches_squeue(slurm_cluster: SlurmCluster, tmp_path: Path) -> None:
    slurm = backend(slurm_cluster)
    ids = slurm.submit(specs(tmp_path, "prod.record", [["true"], ["sh", "-c", "exit 5"],
                                                        ["sh", "-c", "kill -9 $$"]]))
    states = wait_final(slurm, list(ids.values()))
    assert [states[i].exit_code for i in ids.values()] == [0, 5, 137]
    record = JobCompLog(str(slurm_cluster.jobcomp)).refresh()
    assert {i: record.status(i) for i in ids.values()} == {
        i: JobStatus(s.state, s.exit_code) for i, s in states.items()}
    assert slurm.poll(["999999_0"]) == {"999999_0": JobStatus(
        JobState.LOST, None, "unknown to squeue and the jobcomp log")}


@pytest.mark.slow
def test_walltime_exceeded_is_timeout(slurm_cluster: SlurmCluster, tmp_path: Path) -> None:
    slurm = backend(slurm_cluster)
    ids = slurm.submit(specs(tmp_path, "prod.timeout", [["sleep", "600"]], walltime_s=20))
    (job_id,) = ids.values()
    limit = subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%l"], capture_output=True,
                           text=True, check=True).stdout.strip()
    assert limit == "1:00"  # whole minutes, rounded up
    status = wait_final(slurm, [job_id], timeout=150)[job_id]
    assert status.state is JobState.TIMEOUT


def test_find_reconnects_without_resubmitting(slurm_cluster: SlurmCluster, tmp_path: Path) -> None:
    jobs = specs(tmp_path, "prod.find", [["sleep", "2"]] * 10)
    names = [job.name for job in jobs]
    earlier = arrays_named(chunk_name(names))  # from earlier runs of this test
    ids = backend(slurm_cluster).submit(jobs)
    # the submitting process died: a new backend object knows nothing but the names
    fresh = backend(slurm_cluster)
    assert fresh.find(names + ["prod.find.9999.1"]) == ids
    assert fresh.find(names[3:5]) == {n: ids[n] for n in names[3:5]}
    states = wait_final(fresh, list(ids.values()))
    assert {s.state for s in states.values()} == {JobState.DONE}
    assert fresh.find(names) == ids  # still found once finished
    assert arrays_named(chunk_name(names)) - earlier == {next(iter(ids.values())).split("_")[0]}


def test_poll_across_slurmctld_restart(slurm_cluster: SlurmCluster, tmp_path: Path,
                                       restart_slurmctld) -> None:
    slurm = backend(slurm_cluster, timeout=5)
    ids = slurm.submit(specs(tmp_path, "prod.restart", [["sleep", "6"]] * 3
                             + [["sh", "-c", "sleep 6; exit 4"]]))
    wait_running(slurm, list(ids.values()), 4)
    booted = controller_boot_time()
    restarting = threading.Thread(target=restart_slurmctld)
    restarting.start()
    errors = []
    while restarting.is_alive():
        try:
            slurm.poll(list(ids.values()))
        except BackendError as exc:  # the caller retries later
            errors.append(str(exc))
        time.sleep(0.2)
    restarting.join()
    assert controller_boot_time() != booted
    assert all(e.startswith("site slurm-local: squeue") for e in errors)
    states = wait_final(slurm, list(ids.values()))
    assert [states[i] for i in ids.values()] == [JobStatus(JobState.DONE, 0)] * 3 + [
        JobStatus(JobState.FAILED, 4, "NonZeroExitCode")]


def test_unreachable_controller_is_one_line_error(slurm_cluster: SlurmCluster,
                                                  tmp_path: Path, monkeypatch) -> None:
    conf = tmp_path / "slurm.conf"
    conf.write_text(slurm_cluster.conf.read_text().replace("SlurmctldPort=6817", "SlurmctldPort=6999")
                    + "MessageTimeout=2\n")
    monkeypatch.setenv("SLURM_CONF", str(conf))
    with pytest.raises(BackendError) as error:
        backend(slurm_cluster).poll(["1_0"])
    assert str(error.value).startswith("site slurm-local: squeue failed: ")
    assert str(error.value).endswith("; is slurmctld running?") and "\n" not in str(error.value)


def test_one_squeue_call_per_poll(slurm_cluster: SlurmCluster, tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "squeue.calls"
    for tool in ("sbatch", "squeue", "scancel", "scontrol"):
        real = subprocess.run(["which", tool], capture_output=True, text=True, check=True).stdout.strip()
        (bin_dir / tool).write_text(f'#!/bin/sh\necho "$*" >> {calls}.{tool}\nexec {real} "$@"\n')
        (bin_dir / tool).chmod(0o755)
    slurm = backend(slurm_cluster, bin_dir=str(bin_dir))
    ids: dict[str, str] = {}
    for part in range(3):  # three arrays
        ids.update(slurm.submit(specs(tmp_path / str(part), f"prod.count{part}",
                                      [["sh", "-c", f"exit {i % 2}"] for i in range(40)])))
    count = lambda tool: len(Path(f"{calls}.{tool}").read_text().splitlines())
    assert count("sbatch") == 3
    slurm.poll(list(ids.values())[:1])
    assert count("squeue") == 1
    states = wait_final(slurm, list(ids.values()))
    polls = count("squeue")
    slurm.poll(list(ids.values()))
    assert count("squeue") == polls + 1
    assert sum(s.state is JobState.FAILED for s in states.values()) == 60
    slurm.cancel(list(ids.values()))
    assert count("scancel") == 1
