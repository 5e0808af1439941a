"""The Airflow layer through real Airflow: DagBag parsing, ``dag.test()``, import errors.

``dag.test()`` runs Airflow's scheduling loop in-process and the triggers inline; the
tests marked ``airflow`` run a real scheduler and triggerer instead.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from ctaoflow import settings
from ctaoflow.catalog.embedded import EmbeddedCatalog
from ctaoflow.demo.inputs import register_demo_inputs
from ctaoflow.engine import summarize
from ctaoflow.ops import report
from ctaoflow.engine.ledger import FileRow, JobRow, SiteRow, TransformationRow, session_factory
from ctaoflow.spec.query import Query
from ctaoflow.spec.validation import load_production
from tests.engine_driver import DATA, engine_for, run_all

pytestmark = pytest.mark.ledgers  # [sqlite] and [postgres] (tests/conftest.py)

PROJECT = Path(__file__).parents[1]


def bagged(dag_id: str):
    from airflow.utils.cli import get_bagged_dag

    return get_bagged_dag(None, dag_id)


@pytest.fixture
def productions(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """Point dags/productions.py at a folder of chosen YAML files."""
    folder = tmp_path / "productions"
    folder.mkdir()

    def use(*paths: Path) -> Path:
        for path in paths:
            shutil.copy(path, folder / path.name)
        monkeypatch.setenv("CTAOFLOW_PRODUCTIONS", str(folder))
        return folder
    return use


def test_demo_production_end_to_end(airflow_db, home, productions) -> None:
    productions(PROJECT / "config" / "productions" / "demo.yaml")
    catalog = EmbeddedCatalog(settings.home() / "catalog")
    register_demo_inputs(catalog, gamma=20, proton=10)
    run = bagged("demo").test()
    assert run.state == "success"
    summary = summarize(load_production(PROJECT / "config" / "productions" / "demo.yaml"))
    assert all(s["status"] == {"Completed": 1} for s in summary.values()), summary
    assert summary["process_gamma"]["jobs"] == {"Done": 4}
    (model,) = catalog.query(Query.parse({"transformation": "train_classifier"}))
    assert model.metadata["campaign"] == "demo" and model.metadata["data_level"] == "model"
    dl2 = list(catalog.query(Query.parse({"production": "demo", "data_level": "DL2"})))
    assert len(dl2) == summary["apply_gamma"]["jobs"]["Done"]
    assert all(f.metadata["particle"] == "gamma" and f.metadata["merged"] == 1 for f in dl2)

    # a second run takes in only the newly registered inputs
    register_demo_inputs(catalog, gamma=5, proton=0, first_run=3000)
    assert bagged("demo").test().state == "success"
    again = summarize(load_production(PROJECT / "config" / "productions" / "demo.yaml"))
    assert again["process_gamma"]["jobs"] == {"Done": 5}
    assert again["process_gamma"]["files"] == {"Processed": 25}
    assert again["process_proton"]["jobs"] == {"Done": 2}
    # the training ran: its new merged file is held, never trained on alone
    assert again["train_classifier"]["tasks"] == {"Done": 1}
    assert again["train_classifier"]["files"] == {"Processed": 2, "Unused": 1}
    text = report.as_text(report.build(load_production(PROJECT / "config/productions/demo.yaml")))
    assert "train_classifier: 1 new input file(s): the all group already ran" in text


def test_failing_jobs_fail_their_chunk_and_release_files(airflow_db, home, productions) -> None:
    productions(DATA / "failing.yaml")
    register_demo_inputs(EmbeddedCatalog(settings.home() / "catalog"), gamma=5, proton=5)
    run = bagged("failing").test()
    states = {(ti.task_id, ti.map_index): ti.state for ti in run.get_task_instances()}
    assert states[("process.run", 0)] == "failed"  # the gamma chunk
    assert states[("process.run", 1)] == "success"
    assert states[("process.finalize", -1)] == "success"
    assert states[("watcher", -1)] == "failed" and run.state == "failed"
    # chunk task instances are named for what they hold, the failed one as well
    names = {ti.map_index: ti.rendered_map_index for ti in run.get_task_instances()
             if ti.task_id == "process.run"}
    assert names == {0: "chunk 0: task 0 @ local", 1: "chunk 1: task 1 @ local"}
    with session_factory()() as session:
        files = session.scalars(select(FileRow)).all()
        gamma = [f for f in files if f.meta["particle"] == "gamma"]
        assert {(f.status, f.error_count) for f in gamma} == {("Unused", 1)}
        assert {f.status for f in files if f.meta["particle"] == "proton"} == {"Processed"}
        assert len(session.scalars(select(JobRow).where(JobRow.exit_code == 3)).all()) == 2


def test_a_chunk_waits_for_its_paused_site_then_runs(airflow_db, home, productions) -> None:
    productions(DATA / "failing.yaml")
    register_demo_inputs(EmbeddedCatalog(settings.home() / "catalog"), gamma=0, proton=5)
    until = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) + dt.timedelta(seconds=15)
    with session_factory().begin() as session:
        session.add(SiteRow(name="local", paused_until=until, reason="test"))
    run = bagged("failing").test()
    assert run.state == "success"
    with session_factory()() as session:
        jobs = session.scalars(select(JobRow)).all()
    assert len(jobs) == 1 and jobs[0].status == "Done" and jobs[0].submitted_at >= until


KILLED_RUN = textwrap.dedent("""
    from airflow.utils.cli import get_bagged_dag
    get_bagged_dag(None, "chain").test()
""")


def test_killed_worker_mid_chunk_resumes_without_duplicates(airflow_db, home, productions) -> None:
    productions(DATA / "chain.yaml")
    register_demo_inputs(EmbeddedCatalog(settings.home() / "catalog"), gamma=10, proton=5)
    sessions = session_factory()
    worker = subprocess.Popen([sys.executable, "-c", KILLED_RUN], env=os.environ, cwd=PROJECT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with sessions() as session:
            if session.scalars(select(JobRow).where(JobRow.status == "Submitted")).first():
                break
        time.sleep(0.05)
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait()
    with sessions() as session:
        before = {j.name: j.backend_id for j in session.scalars(select(JobRow))}
    assert before, "the worker was killed before submitting anything"
    assert bagged("chain").test().state == "success"
    with sessions() as session:
        jobs = session.scalars(select(JobRow)).all()
    assert {j.name: j.backend_id for j in jobs if j.name in before} == before
    assert all(j.attempt == 1 and j.status == "Done" for j in jobs)
    names = [j.name for j in jobs]
    assert len(names) == len(set(names))
    summary = summarize(load_production(DATA / "chain.yaml"))
    assert all(s["status"] == {"Completed": 1} for s in summary.values()), summary


def test_a_broken_yaml_is_an_import_error_and_spares_the_others(airflow_db, productions,
                                                                tmp_path: Path) -> None:
    from airflow.dag_processing.dagbag import DagBag

    folder = productions(DATA / "chain.yaml")
    (folder / "broken.yaml").write_text(
        (DATA / "chain.yaml").read_text().replace("production: chain", "production: broken")
        .replace("group_size: 3", "group_sise: 3"))
    bag = DagBag(dag_folder=str(PROJECT / "dags"))
    assert "chain" in bag.dags and "broken" not in bag.dags
    (error,) = bag.import_errors.values()
    assert f"{folder / 'broken.yaml'}:" in error
    assert "group_sise: unknown key; did you mean 'group_size'?" in error


def test_clashing_names_and_a_broken_sites_file_are_one_import_error(
        airflow_db, productions, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.dag_processing.dagbag import DagBag

    folder = productions(DATA / "chain.yaml")
    text = (DATA / "chain.yaml").read_text()
    (folder / "copy.yaml").write_text(text)
    (folder / "other.yaml").write_text(text.replace("production: chain", "production: other"))
    sites = tmp_path / "sites.yaml"
    sites.write_text("sites:\n  local: {backend: local\n")
    monkeypatch.setenv("CTAOFLOW_SITES", str(sites))
    bag = DagBag(dag_folder=str(PROJECT / "dags"))
    assert "other" in bag.dags and "chain" not in bag.dags
    (error,) = bag.import_errors.values()
    assert "Traceback" not in error
    assert f"{sites}:3:1: (syntax): expected ',' or '}}'" in error
    assert (f"{folder / 'chain.yaml'}:2:13: production: production 'chain' is also defined "
            f"in {folder / 'copy.yaml'}") in error
    assert f"{folder / 'copy.yaml'}:2:13: production: production 'chain'" in error


def test_dag_generation_is_deterministic_and_render_matches(productions, tmp_path: Path) -> None:
    from airflow.dag_processing.dagbag import DagBag
    from airflow.serialization.serialized_objects import DagSerialization

    from ctaoflow.ops.render import render

    spec = productions(PROJECT / "config" / "productions" / "demo.yaml") / "demo.yaml"
    first = DagBag(dag_folder=str(PROJECT / "dags")).dags["demo"]
    second = DagBag(dag_folder=str(PROJECT / "dags")).dags["demo"]
    assert (DagSerialization.serialize_dag(first) == DagSerialization.serialize_dag(second))
    rendered = tmp_path / "rendered" / "demo_dag.py"
    rendered.parent.mkdir()
    rendered.write_text(render(load_production(spec), spec))
    static = DagBag(dag_folder=str(rendered)).dags["demo"]

    def serialized(dag) -> dict:  # everything Airflow stores of a DAG but where it was read
        data = DagSerialization.serialize_dag(dag)
        for key in ("fileloc", "relative_fileloc"):
            data.pop(key, None)
        return data

    assert serialized(static) == serialized(first)
    retrying = lambda dag: {t: (o.retries, o.retry_delay) for t, o in dag.task_dict.items()}  # noqa: E731
    assert retrying(first)["process_gamma.run"] == (5, dt.timedelta(seconds=2))


def test_a_refused_spec_change_fails_sync_and_nothing_runs(airflow_db, home, productions,
                                                           capsys: pytest.CaptureFixture) -> None:
    spec = productions(PROJECT / "config" / "productions" / "demo.yaml") / "demo.yaml"
    engine = engine_for(spec)
    register_demo_inputs(engine.catalog, gamma=10, proton=5)
    run_all(engine)  # the demo completed; then process_proton is renamed, as in issue 15
    spec.write_text(spec.read_text().replace("name: process_proton\n", "name: process_protons\n")
                    .replace("{from: process_proton}", "{from: process_protons}"))
    with session_factory()() as session:
        jobs = session.scalar(select(func.count()).select_from(JobRow))
    run = bagged("demo").test()
    assert run.state == "failed"
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert states["sync"] == "failed" and states["watcher"] == "failed"
    assert {state for task, state in states.items() if task.endswith((".prepare", ".run"))} == {
        "upstream_failed"}  # finalize fails at once on the refused spec; report reports
    refusal = ("AirflowFailException: demo: spec change refused against ledger version 1: "
               "process_proton renamed to process_protons while it has 5 file(s)")
    assert refusal in capsys.readouterr().out
    with session_factory()() as session:
        assert session.scalar(select(func.count()).select_from(JobRow)) == jobs
        assert not session.scalars(select(FileRow).join(TransformationRow)
                                   .where(TransformationRow.name == "process_protons")).all()
