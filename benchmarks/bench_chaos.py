"""The chaos test's figures: the faulty production with kills vs the same without faults.

Starts Slurm (services/slurm/start.sh) and a real Airflow deployment
(tests/airflow_service.py), runs tests/chaos_scenario.py twice in the same deployment:
300 jobs with 20% injected faults of each class while the scheduler, the triggerer and
a worker are SIGKILLed and slurmctld restarts, then 300 jobs without faults or kills.
value = time to completion with faults, baseline = without; also, counted in the ledger
(tests/chaos_scenario.py ``measure``): the jobs, the failed jobs by class, the tasks that
recovered after a failure and those left failed, the files left for a person, duplicates
and lost files.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._result import write_result  # noqa: E402
from tests.airflow_service import AirflowCluster  # noqa: E402
from tests.chaos_scenario import run, sites_file  # noqa: E402

JOBS = 300


def main() -> None:
    subprocess.run([str(ROOT / "services/slurm/start.sh")], check=True)
    cluster = AirflowCluster(Path(tempfile.mkdtemp(prefix="ctaoflow-chaos-bench-")))
    cluster.up()
    try:
        sites_file(Path(cluster.env["CTAOFLOW_SITES"]), "debug",
                   Path(cluster.env["CTAOFLOW_HOME"]) / "local-batch")
        restart = lambda: subprocess.run([str(ROOT / "services/slurm/restart_ctld.sh")],  # noqa: E731
                                         check=True)
        chaos = run(cluster, JOBS, faults=True, restart_slurmctld=restart)
        calm = run(cluster, JOBS, faults=False)
    finally:
        cluster.down()
    ledger = chaos.ledger
    write_result("chaos_completion_time", round(chaos.seconds, 1), "s",
                 baseline=round(calm.seconds, 1), ratio=round(chaos.seconds / calm.seconds, 2),
                 state=chaos.state, failed_tasks=sorted(chaos.failed_tasks),
                 baseline_state=calm.state, jobs_submitted=ledger.jobs, kills=chaos.kills,
                 failed_jobs_by_class=ledger.failures,
                 tasks_recovered_by_first_failure=ledger.recovered,
                 tasks_left_failed_by_class=ledger.left_failed,
                 files_left_for_a_person=ledger.left_for_a_person,
                 duplicated_jobs=ledger.duplicated_jobs, audit_discrepancies=len(chaos.audit),
                 lost_files=ledger.lost_files, file_states=ledger.files)


if __name__ == "__main__":
    main()
