"""Productions through the distributed deployment (tests/distributed_service.py): two
schedulers, the CeleryExecutor with two workers, Redis, the ledger on PostgreSQL."""

from __future__ import annotations

import shutil
from pathlib import Path
from urllib.parse import quote

import pytest
import yaml
from sqlalchemy import select

from ctaoflow.catalog.embedded import EmbeddedCatalog
from ctaoflow.demo.inputs import register_demo_inputs
from ctaoflow.engine import summarize
from ctaoflow.engine.ledger import JobRow, session_factory
from ctaoflow.spec.validation import load_production
from tests.chaos_scenario import check_faulted, run

PROJECT = Path(__file__).parents[1]
DEMO = PROJECT / "config" / "productions" / "demo.yaml"
JOBS = 60

pytestmark = pytest.mark.distributed


def test_demo_completes_on_both_celery_workers(distributed_cluster) -> None:
    cluster = distributed_cluster
    shutil.copy(DEMO, cluster.productions / "demo.yaml")
    register_demo_inputs(EmbeddedCatalog(Path(cluster.env["CTAOFLOW_HOME"]) / "catalog"),
                         gamma=20, proton=10)
    cluster.wait_for_dag("demo")
    run_id = cluster.trigger("demo")
    assert cluster.wait_run("demo", run_id, timeout=400) == "success"
    summary = summarize(load_production(DEMO), session_factory(cluster.ledger_url))
    assert all(s["status"] == {"Completed": 1} for s in summary.values()), summary
    instances = cluster.rest(f"dags/demo/dagRuns/{quote(run_id, safe='')}/taskInstances"
                             "?limit=1000")["task_instances"]
    hosts = {ti["hostname"] for ti in instances if ti["state"] == "success"}
    assert hosts == {"worker-1", "worker-2"}, hosts


@pytest.mark.chaos
def test_chaos_kills_a_scheduler_a_worker_redis_and_the_ledger(distributed_cluster) -> None:
    """The chaos production (faulty jobs, tests/chaos_scenario.py) on the local site while
    one scheduler, one Celery worker, Redis and the ledger's PostgreSQL are SIGKILLed and
    restarted: no job duplicated, no file lost, a clean audit."""
    cluster = distributed_cluster
    Path(cluster.env["CTAOFLOW_SITES"]).write_text(yaml.safe_dump({"sites": {"local": {
        "backend": "local", "slots": 16, "storages": ["LOCAL-DISK"],
        "options": {"root": str(Path(cluster.env["CTAOFLOW_HOME"]) / "local-batch")}}}}))
    sessions = session_factory(cluster.ledger_url)

    def kill_while_jobs_run(victim: str) -> bool:
        """Kill only while jobs are submitted or running (not during the intake)."""
        with sessions() as session:
            if not session.scalars(select(JobRow).where(
                    JobRow.status.in_(("Submitting", "Submitted")))).first():
                return False
        return cluster.chaos_kill(victim)

    outcome = run(cluster, JOBS, faults=True, sites=("local",), kill=kill_while_jobs_run,
                  victims=("scheduler-1", "worker-1", "redis", "ledger"))
    print("kills:", outcome.kills, f"run {outcome.seconds:.0f} s")
    check_faulted(outcome, JOBS, kills=4)
