"""Crash safety: a production with injected faults while Airflow's processes and
slurmctld are killed and restarted completes, with no job duplicated and no file lost."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chaos_scenario import run, sites_file

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
    assert outcome.state == "success", outcome
    assert len(outcome.kills) == 4, outcome
    permanent = JOBS // 10  # runs ending in 5: the payload always fails
    process_files = {"Processed": JOBS - permanent, "Problematic": permanent}
    merge_files = {"Processed": JOBS - permanent}  # the merge reads every DL1 output
    assert outcome.files == {k: process_files.get(k, 0) + merge_files.get(k, 0)
                             for k in ("Processed", "Problematic")}, outcome
    assert outcome.duplicated_jobs == 0
    assert set(outcome.failures) == {"infrastructure", "data", "application"}, outcome
    assert outcome.audit == []
    report = outcome.report
    assert report.needs_a_person == {"process": {"Problematic": permanent}}
    errors = {(e.failure_class, e.signature): e.count for e in report.errors}
    assert errors[("application", "ValueError: no events survived the cuts")] == 2 * permanent

