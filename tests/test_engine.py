"""The engine without Airflow: chaining, intake, failures, crash safety."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path

import pytest
from sqlalchemy import func, select

from ctaoflow.backends import JobSpec
from ctaoflow.backends.local import LocalBackend
from ctaoflow.demo.inputs import register_demo_inputs
from ctaoflow.engine import summarize
from ctaoflow.engine.ledger import FileRow, JobRow, TaskRow
from ctaoflow.spec.query import Query
from tests.engine_driver import DATA, engine_for, run_all, run_chunk

pytestmark = pytest.mark.ledgers  # [sqlite] and [postgres] (tests/conftest.py)


def test_chain_runs_to_completion_with_inherited_metadata(home: Path) -> None:
    engine = engine_for(DATA / "chain.yaml")
    register_demo_inputs(engine.catalog, gamma=12, proton=6)
    run_all(engine)
    summary = summarize(engine.production)
    assert {n: s["status"] for n, s in summary.items()} == {
        n: {"Completed": 1} for n in summary}
    assert summary["process_gamma"]["files"] == {"Processed": 12}
    assert summary["merge_gamma"]["tasks"] == {"Done": 1}  # 3 DL1 files, group 3
    # outputs carry the inputs' shared metadata, their own, and the lineage keys
    dl1 = list(engine.catalog.query(Query.parse({"transformation": "process_gamma"})))
    assert len(dl1) == 3
    assert dl1[0].metadata["particle"] == "gamma" and dl1[0].metadata["data_level"] == "DL1"
    assert dl1[0].metadata["production"] == "chain" and "run" not in dl1[0].metadata
    (model,) = engine.catalog.query(Query.parse({"transformation": "train"}))
    assert json.loads(Path(engine.catalog.local_paths([model.lfn])[model.lfn]).read_text())[
        "trained_on"] == (12 + 6) * 10  # ten events per DL0 file
    (dl2,) = engine.catalog.query(Query.parse({"data_level": "DL2"}))
    assert dl2.metadata["particle"] == "gamma"


def test_second_intake_takes_only_new_files(home: Path) -> None:
    engine = engine_for(DATA / "chain.yaml")
    register_demo_inputs(engine.catalog, gamma=10, proton=0)
    engine.sync()
    assert engine.prepare("process_gamma") == [0]
    run_chunk(engine, "process_gamma", 0)
    register_demo_inputs(engine.catalog, gamma=10, proton=0)  # the same files again: nothing
    assert engine.prepare("process_gamma") == []
    register_demo_inputs(engine.catalog, gamma=5, proton=0, first_run=2000)
    assert engine.prepare("process_gamma") == [1]
    run_chunk(engine, "process_gamma", 1)
    with engine.sessions() as session:
        assert session.scalar(select(func.count()).select_from(TaskRow)) == 3
        assert session.scalar(select(func.count()).select_from(JobRow)) == 3


def _failing_spec(command: list[str], **defaults) -> dict:
    return {"production": "failing", "defaults": defaults,
            "transformations": [{
                "name": "process", "input": {"query": {"data_level": "DL0"}},
                "grouping": {"plugin": "standard", "group_size": 2},
                "job": {"command": command}, "outputs": [{"name": "{task}.out"}]}]}


def _files(engine) -> set[tuple[str, int]]:
    with engine.sessions() as session:
        return {(f.status, f.error_count) for f in session.scalars(select(FileRow))}


def _run_process(engine) -> None:
    for chunk in engine.prepare("process"):
        run_chunk(engine, "process", chunk)


def test_application_failures_reset_files_then_set_them_aside(home: Path) -> None:
    engine = engine_for(_failing_spec(["sh", "-c", "exit 3"], max_attempts=2, max_reassign=2))
    register_demo_inputs(engine.catalog, gamma=2, proton=0)
    engine.sync()
    _run_process(engine)
    assert _files(engine) == {("Unused", 1)}  # back for the next intake, error counted
    with engine.sessions() as session:
        jobs = session.scalars(select(JobRow)).all()
        assert [(j.attempt, j.exit_code, j.failure_class) for j in jobs] == [
            (1, 3, "application"), (2, 3, "application")]
        assert session.get(TaskRow, 1).status == "Failed"
    _run_process(engine)  # regrouped into a new task, which fails again
    assert _files(engine) == {("Problematic", 2)}
    assert engine.prepare("process") == []


def test_infrastructure_failures_retry_elsewhere_then_reach_maxreset(home: Path) -> None:
    engine = engine_for(_failing_spec(["sh", "-c", "kill -9 $$"], max_infrastructure_retries=1,
                                      max_resets=2))
    register_demo_inputs(engine.catalog, gamma=2, proton=0)
    engine.sync()
    _run_process(engine)
    with engine.sessions() as session:
        assert [(j.exit_code, j.failure_class) for j in session.scalars(select(JobRow))] == [
            (137, "infrastructure")] * 2
    assert _files(engine) == {("Unused", 1)}
    _run_process(engine)
    assert _files(engine) == {("MaxReset", 2)}


def test_unreadable_input_is_a_data_failure(home: Path) -> None:
    engine = engine_for(_failing_spec(
        ["python", "-m", "ctaoflow.demo.payload", "merge", "--output", "{output}", "/nonexistent"],
        max_attempts=2))
    register_demo_inputs(engine.catalog, gamma=2, proton=0)
    engine.sync()
    _run_process(engine)
    assert _files(engine) == {("Problematic", 1)}
    with engine.sessions() as session:
        jobs = session.scalars(select(JobRow)).all()  # retried once, then set aside
        assert [j.failure_class for j in jobs] == ["data", "data"]
        assert "cannot read /nonexistent" in jobs[0].log_tail


CRASHING_SUBMITTER = textwrap.dedent("""
    import os, signal, sys
    from ctaoflow.backends.local import LocalBackend
    from tests.engine_driver import DATA, engine_for

    class CrashAfterSubmit(LocalBackend):
        def submit(self, jobs):
            super().submit(jobs)
            os.kill(os.getpid(), signal.SIGKILL)  # dies before the ids reach the ledger

    engine = engine_for(DATA / "chain.yaml")
    engine.backend_for = CrashAfterSubmit
    engine.submit("process_gamma", int(sys.argv[1]))
""")


def test_killed_after_submission_reconnects_without_a_duplicate(home: Path) -> None:
    engine = engine_for(DATA / "chain.yaml")
    register_demo_inputs(engine.catalog, gamma=10, proton=0)
    engine.sync()
    (chunk,) = engine.prepare("process_gamma")
    crashed = subprocess.run([sys.executable, "-c", CRASHING_SUBMITTER, str(chunk)],
                             env=os.environ, cwd=Path(__file__).parents[1])
    assert crashed.returncode == -9
    with engine.sessions() as session:
        assert [j.status for j in session.scalars(select(JobRow))] == ["Submitting"] * 2
    sent: list[str] = []

    class SubmitSpy(LocalBackend):
        def submit(self, jobs: Sequence[JobSpec]) -> dict[str, str]:
            sent.extend(job.name for job in jobs)
            return super().submit(jobs)

    engine.backend_for = SubmitSpy
    run_chunk(engine, "process_gamma", chunk)
    assert sent == []  # found by name at the site, not submitted a second time
    with engine.sessions() as session:
        jobs = session.scalars(select(JobRow)).all()
        assert [(j.status, j.attempt) for j in jobs] == [("Done", 1)] * 2
        assert [j.backend_id for j in jobs] == [j.name for j in jobs]  # the ids the site held
    spool = Path(os.environ["CTAOFLOW_HOME"]) / "local-batch" / "jobs"
    assert sorted(p.name for p in spool.iterdir()) == [j.name for j in jobs]


@pytest.mark.parametrize("value", ["../../etc/passwd", "a/b", ".."])
def test_hostile_metadata_cannot_make_an_output_path(home: Path, value: str) -> None:
    spec = _failing_spec(["sh", "-c", "echo > \"$0\"", "{output}"])
    t = spec["transformations"][0]
    t["outputs"] = [{"name": "{particle}"}]
    engine = engine_for(spec)
    from ctaoflow.catalog.base import OutputFile
    src = home / "in.dat"
    src.parent.mkdir(parents=True, exist_ok=True)
    src.write_text("x")
    engine.catalog.register([OutputFile("/ctao/x/in.dat", str(src),
                                        {"data_level": "DL0", "particle": value})], "LOCAL-DISK", "d")
    engine.sync()
    engine.prepare("process")
    result = engine.submit("process", 0)
    assert not result.in_flight
    assert "is not a file name" in result.failed[0]
