"""Productions through a real Airflow deployment: scheduler, triggerer, api-server."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import select

from ctaoflow.catalog.embedded import EmbeddedCatalog
from ctaoflow.demo.inputs import register_demo_inputs
from ctaoflow.engine import summarize
from ctaoflow.engine.ledger import JobRow, session_factory
from ctaoflow.spec.validation import load_production

PROJECT = Path(__file__).parents[1]
DEMO = PROJECT / "config" / "productions" / "demo.yaml"


@pytest.mark.airflow
def test_demo_survives_a_killed_triggerer_and_api_server(airflow_cluster) -> None:
    cluster = airflow_cluster
    shutil.copy(DEMO, cluster.productions / "demo.yaml")
    home = Path(cluster.env["CTAOFLOW_HOME"])
    register_demo_inputs(EmbeddedCatalog(home / "catalog"), gamma=20, proton=10)
    sessions = session_factory(f"sqlite:///{home / 'ledger.db'}")
    cluster.wait_for_dag("demo")
    run_id = cluster.trigger("demo")
    victims, killed, last_kill = ["api-server", "triggerer"], [], [-100.0]

    def kill_one_while_jobs_wait(elapsed: float) -> None:
        """SIGKILL the triggerer, then the api-server, each while batch jobs wait."""
        if not victims or not (home / "ledger.db").exists() or elapsed - last_kill[0] < 8:
            return
        with sessions() as session:
            if session.scalars(select(JobRow).where(JobRow.status == "Submitted")).first():
                victim = victims.pop()
                cluster.restart(victim)
                killed.append(victim)
                last_kill[0] = elapsed

    assert cluster.wait_run("demo", run_id, timeout=600,
                            during=kill_one_while_jobs_wait) == "success"
    assert killed == ["triggerer", "api-server"], "a component was never killed while jobs waited"
    cluster.wait_api()
    summary = summarize(load_production(DEMO), sessions)
    assert all(s["status"] == {"Completed": 1} for s in summary.values()), summary
    with sessions() as session:
        jobs = session.scalars(select(JobRow)).all()
    assert all(j.attempt == 1 and j.status == "Done" for j in jobs)
    assert len({j.name for j in jobs}) == len(jobs) == sum(
        s["jobs"]["Done"] for s in summary.values())
