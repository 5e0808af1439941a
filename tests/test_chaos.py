"""Crash safety: a production with injected faults while Airflow's processes and
slurmctld are killed and restarted completes, with no job duplicated and no file lost;
only the permanently failing jobs are left, and the run says so by failing."""

from __future__ import annotations

from pathlib import Path

import pytest

from ctaoflow.demo.inputs import register_demo_inputs
from tests.chaos_scenario import check_faulted, measure, production, run, sites_file
from tests.engine_driver import engine_for, run_all

JOBS = 300


@pytest.mark.chaos
@pytest.mark.airflow
@pytest.mark.slurm
@pytest.mark.slow
def test_production_completes_through_faults_and_kills(airflow_cluster, slurm_cluster,
                                                       restart_slurmctld) -> None:
    sites_file(Path(airflow_cluster.env["CTAOFLOW_SITES"]), slurm_cluster.site.queue,
               Path(airflow_cluster.env["CTAOFLOW_HOME"]) / "local-batch")
    outcome = run(airflow_cluster, JOBS, faults=True, restart_slurmctld=restart_slurmctld)
    check_faulted(outcome, JOBS, kills=4)


def test_the_ledger_counts_what_the_faults_did(home: Path) -> None:
    """The chaos production on ten runs, one of each fault kind, without Airflow: run
    numbers ending in 0-1 are killed once, 2-3 unreadable once, 4 fails once, 5 always."""
    spec = production(10, faults=True)
    spec["defaults"]["sites"] = ["local"]
    engine = engine_for(spec)
    register_demo_inputs(engine.catalog, gamma=10, proton=0, first_run=10000)
    run_all(engine)
    measured = measure(engine.sessions, "chaos")
    assert measured.failures == {"infrastructure": 2, "data": 2, "application": 3}
    assert measured.recovered == {"infrastructure": 2, "data": 2, "application": 1}
    assert measured.left_failed == {"application": 1}
    assert measured.jobs == 10 + 6 + 1  # first attempts, retries, one merge of nine files
    assert measured.duplicated_jobs == measured.lost_files == 0
    assert measured.files == {"Processed": 9 + 9, "Problematic": 1}
    assert measured.left_for_a_person == 1
