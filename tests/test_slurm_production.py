"""Productions on real Slurm: the demo end to end, failure states, restarts, reconnects."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select

from ctaoflow.demo.inputs import register_demo_inputs
from ctaoflow.engine import summarize
from ctaoflow.engine.ledger import FileRow, JobRow
from tests.engine_driver import engine_for, run_chunk
from tests.slurm_service import use_slurm_site

PROJECT = Path(__file__).parents[1]
pytestmark = pytest.mark.slurm


@pytest.fixture
def slurm_site(slurm_cluster, home: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A sites file with one Slurm site; jobs see this virtualenv's python first."""
    return use_slurm_site(slurm_cluster, home.parent, monkeypatch)


def _spec(command: list[str], walltime: str = "10m", **defaults) -> dict:
    return {"production": "onslurm",
            "defaults": {"sites": ["slurm"], "poll_interval": 1,
                         "resources": {"walltime": walltime, "memory": "100MB"}, **defaults},
            "transformations": [{
                "name": "process", "input": {"query": {"data_level": "DL0"}},
                "grouping": {"plugin": "standard", "group_size": 1},
                "job": {"command": command}, "outputs": [{"name": "{task}.out"}]}]}


def _files(engine) -> dict[str, tuple[str, int]]:
    with engine.sessions() as session:
        return {f.lfn.rsplit("/", 1)[1]: (f.status, f.error_count)
                for f in session.scalars(select(FileRow))}


def test_demo_production_on_slurm(airflow_db, home, slurm_site, tmp_path, monkeypatch) -> None:
    from airflow.utils.cli import get_bagged_dag

    from ctaoflow.spec.validation import load_production

    folder = tmp_path / "productions"
    folder.mkdir()
    spec = (PROJECT / "config/productions/demo.yaml").read_text()
    (folder / "demo.yaml").write_text(spec.replace("sites: [local]", "sites: [slurm]"))
    monkeypatch.setenv("CTAOFLOW_PRODUCTIONS", str(folder))
    engine = engine_for(folder / "demo.yaml")
    register_demo_inputs(engine.catalog, gamma=10, proton=5)
    assert get_bagged_dag(None, "demo").test().state == "success"
    summary = summarize(load_production(folder / "demo.yaml"))
    assert all(s["status"] == {"Completed": 1} for s in summary.values()), summary
    with engine.sessions() as session:
        jobs = session.scalars(select(JobRow)).all()
    assert jobs and all(j.site == "slurm" and "_" in j.backend_id for j in jobs)


def test_exit_code_and_cancellation_end_in_the_right_states(home, slurm_site) -> None:
    script = ('case "$1" in *run001000*) exit 3;; *run001001*) sleep 300;; esac; '
              'echo ok > "$0"')
    engine = engine_for(_spec(["sh", "-c", script, "{output}", "{input}"],
                              max_attempts=1, max_infrastructure_retries=0))
    register_demo_inputs(engine.catalog, gamma=3, proton=0)
    engine.sync()
    (chunk,) = engine.prepare("process")
    result = engine.submit("process", chunk)
    sleeper = next(j for j in engine_jobs(engine) if j.name.endswith(".000001.1"))
    backend = engine.backend_for(engine.sites["slurm"])
    deadline = time.monotonic() + 60
    while backend.poll([sleeper.backend_id])[sleeper.backend_id].state.value != "RUNNING":
        assert time.monotonic() < deadline
        time.sleep(0.5)
    backend.cancel([sleeper.backend_id])
    run_chunk(engine, "process", chunk)
    assert result.in_flight
    by_task = {j.name.rsplit(".", 2)[1]: j for j in engine_jobs(engine)}
    assert (by_task["000000"].state, by_task["000000"].exit_code,
            by_task["000000"].failure_class) == ("FAILED", 3, "application")
    assert (by_task["000001"].state, by_task["000001"].failure_class) == (
        "CANCELLED", "infrastructure")
    assert by_task["000002"].state == "DONE"
    files = _files(engine)
    assert files["gamma_run001002.DL0.json"] == ("Processed", 0)
    assert files["gamma_run001000.DL0.json"] == ("Unused", 1)
    assert files["gamma_run001001.DL0.json"] == ("Unused", 1)


def engine_jobs(engine) -> list[JobRow]:
    with engine.sessions() as session:
        return session.scalars(select(JobRow).order_by(JobRow.id)).all()


@pytest.mark.slow
def test_a_job_past_its_walltime_times_out(home, slurm_site) -> None:
    engine = engine_for(_spec(["sleep", "300"], walltime="1m", max_infrastructure_retries=0))
    register_demo_inputs(engine.catalog, gamma=1, proton=0)
    engine.sync()
    (chunk,) = engine.prepare("process")
    run_chunk(engine, "process", chunk, timeout=240)
    (job,) = engine_jobs(engine)
    assert (job.state, job.failure_class) == ("TIMEOUT", "infrastructure")
    assert set(_files(engine).values()) == {("Unused", 1)}


def test_slurmctld_restart_while_chunks_wait(airflow_db, home, slurm_site, restart_slurmctld,
                                            tmp_path, monkeypatch) -> None:
    from airflow.utils.cli import get_bagged_dag

    folder = tmp_path / "productions"
    folder.mkdir()
    (folder / "p.yaml").write_text(yaml.safe_dump(
        _spec(["sh", "-c", 'sleep 8; echo ok > "$0"', "{output}"], chunk_size=2)))
    monkeypatch.setenv("CTAOFLOW_PRODUCTIONS", str(folder))
    engine = engine_for(folder / "p.yaml")
    register_demo_inputs(engine.catalog, gamma=4, proton=0)
    restarted = threading.Event()

    def restart_once_jobs_wait() -> None:  # dag.test() needs the main thread
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if any(j.status == "Submitted" for j in engine_jobs(engine)):
                restart_slurmctld()
                restarted.set()
                return
            time.sleep(0.2)

    watcher = threading.Thread(target=restart_once_jobs_wait)
    watcher.start()
    state = get_bagged_dag(None, "onslurm").test().state
    watcher.join()
    assert restarted.is_set() and state == "success"
    jobs = engine_jobs(engine)
    done = [j.task_id for j in jobs if j.status == "Done"]
    # a job caught by the restart may fail and be retried; none is lost or done twice
    assert len(done) == len(set(done)) == 4, [(j.status, j.attempt, j.reason) for j in jobs]


CRASHING_SUBMITTER = textwrap.dedent("""
    import os, signal, sys
    from ctaoflow.backends.slurm import SlurmBackend
    from tests.engine_driver import engine_for

    class CrashAfterSubmit(SlurmBackend):
        def submit(self, jobs):
            super().submit(jobs)
            os.kill(os.getpid(), signal.SIGKILL)  # before the array id reaches the ledger

    engine = engine_for(sys.argv[1])
    engine.backend_for = lambda site: CrashAfterSubmit(site)
    engine.submit("process", 0)
""")


def test_killed_after_submit_reconnects_to_the_running_array(home, slurm_site) -> None:
    spec_file = home.parent / "p.yaml"
    spec_file.write_text(yaml.safe_dump(_spec(["sh", "-c", 'sleep 3; echo ok > "$0"',
                                               "{output}"])))
    engine = engine_for(spec_file)
    register_demo_inputs(engine.catalog, gamma=3, proton=0)
    engine.sync()
    assert engine.prepare("process") == [0]
    crashed = subprocess.run([sys.executable, "-c", CRASHING_SUBMITTER, str(spec_file)],
                             env=os.environ, cwd=PROJECT)
    assert crashed.returncode == -9
    run_chunk(engine, "process", 0)
    jobs = engine_jobs(engine)
    assert [(j.status, j.attempt) for j in jobs] == [("Done", 1)] * 3
    assert len({j.backend_id.split("_")[0] for j in jobs}) == 1  # one array, not two
    spool = Path(jobs[0].workdir).parent / ".slurm"
    assert len(list(spool.iterdir())) == 1
