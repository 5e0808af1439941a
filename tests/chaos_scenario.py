"""The chaos scenario: a few hundred jobs with injected faults on two sites while
Airflow's scheduler, triggerer and a worker are SIGKILLed and restarted and slurmctld
restarts once. Shared by tests/test_chaos.py and benchmarks/bench_chaos.py."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import yaml
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from ctaoflow.ops import report
from ctaoflow.ops.audit import audit
from ctaoflow.backends import make_backend
from ctaoflow.catalog.embedded import EmbeddedCatalog
from ctaoflow.demo.inputs import register_demo_inputs
from ctaoflow.engine.ledger import (FileRow, JobRow, ProductionRow, TaskRow, TransformationRow,
                             session_factory)
from ctaoflow.sites import load_sites
from ctaoflow.spec.model import Production

JOB = Path(__file__).parent / "data" / "chaos" / "job.sh"


def first_run(faults: bool) -> int:
    return 10000 if faults else 20000


def production(jobs: int, faults: bool) -> dict:
    command = [str(JOB), "{output}", "{input}"] if faults else [
        "sh", "-c", 'sleep 0.$(( ${{#1}} % 7 )); echo ok > "$0"', "{output}", "{input}"]
    return {
        "production": "chaos" if faults else "calm",
        "defaults": {"sites": ["local", "slurm"], "poll_interval": 1, "chunk_size": 25,
                     "max_attempts": 2, "max_reassign": 1, "max_infrastructure_retries": 3,
                     "resources": {"walltime": "10m", "memory": "100MB"}},
        "transformations": [
            {"name": "process", "type": "processing",
             "input": {"query": {"data_level": "DL0", "particle": "gamma", "run": {
                 ">=": first_run(faults), "<": first_run(faults) + jobs}}},
             "grouping": {"plugin": "standard", "group_size": 1},
             "job": {"command": command},
             "outputs": [{"name": "{task:05d}.DL1", "metadata": {"data_level": "DL1"}}]},
            {"name": "merge", "type": "merging", "input": {"from": "process"},
             "grouping": {"plugin": "standard", "group_size": 10},
             "job": {"command": ["sh", "-c", 'cat "$@" > "$0"', "{output}", "{inputs}"]},
             "outputs": [{"name": "merged_{task:04d}.DL1"}]}]}


def sites_file(path: Path, slurm_queue: str, local_spool: Path) -> Path:
    path.write_text(yaml.safe_dump({"sites": {
        "local": {"backend": "local", "slots": 16, "storages": ["LOCAL-DISK"],
                  "options": {"root": str(local_spool)}},
        "slurm": {"backend": "slurm", "queue": slurm_queue, "slots": 32,
                  "storages": ["LOCAL-DISK"]}}}))
    return path


@dataclass
class Measured:
    """A production's jobs, tasks and files as its ledger records them: failed jobs by
    class; tasks done after a failure, by the class of their first failure; tasks failed
    for good, by the class that ended them; successful jobs beyond one per task; files by
    status."""

    jobs: int = 0
    failures: dict[str, int] = field(default_factory=dict)
    recovered: dict[str, int] = field(default_factory=dict)
    left_failed: dict[str, int] = field(default_factory=dict)
    duplicated_jobs: int = 0
    files: dict[str, int] = field(default_factory=dict)

    @property
    def lost_files(self) -> int:
        """Files neither processed nor set aside: what a finished production must not have."""
        return self.files.get("Unused", 0) + self.files.get("Assigned", 0)

    @property
    def left_for_a_person(self) -> int:
        return self.files.get("Problematic", 0) + self.files.get("MaxReset", 0)


def measure(sessions: sessionmaker[Session], name: str) -> Measured:
    """Count production ``name``'s jobs, recoveries, duplicates and files in the ledger."""
    ours = (select(TransformationRow.id).join(ProductionRow)
            .where(ProductionRow.name == name).scalar_subquery())
    with sessions() as session:
        tasks = {t.id: t for t in session.scalars(
            select(TaskRow).where(TaskRow.transformation_id.in_(ours)))}
        jobs = session.scalars(select(JobRow).where(JobRow.task_id.in_(list(tasks)))
                               .order_by(JobRow.id)).all()
        files = dict(session.execute(
            select(FileRow.status, func.count()).where(FileRow.transformation_id.in_(ours))
            .group_by(FileRow.status)).all())
    first_failure: dict[int, str] = {}
    for job in jobs:
        if job.failure_class:
            first_failure.setdefault(job.task_id, job.failure_class)
    done = Counter(job.task_id for job in jobs if job.status == "Done")
    return Measured(
        jobs=len(jobs), files=files,
        failures=dict(Counter(job.failure_class for job in jobs if job.failure_class)),
        recovered=dict(Counter(c for t, c in first_failure.items()
                               if tasks[t].status == "Done")),
        left_failed=dict(Counter(t.message.partition(":")[0] for t in tasks.values()
                                 if t.status == "Failed")),  # message "<class>: <why>"
        duplicated_jobs=sum(n - 1 for n in done.values()))


@dataclass
class Outcome:
    state: str
    seconds: float
    failed_tasks: set[str] = field(default_factory=set)  # task ids with a failed instance
    kills: list[str] = field(default_factory=list)
    ledger: Measured = field(default_factory=Measured)
    audit: list[str] = field(default_factory=list)
    report: object = None


def run(cluster, jobs: int, faults: bool, restart_slurmctld=None, seed: int = 1,
        victims=("scheduler", "triggerer", "worker", "slurmctld"), kill=None,
        sites=("local", "slurm")) -> Outcome:
    """Register inputs, trigger the production, inject process kills, wait for the end.
    ``kill(victim)`` kills and restarts a victim, False when it cannot now (default: the
    LocalExecutor deployment's)."""
    spec = production(jobs, faults)
    spec["defaults"]["sites"] = list(sites)
    name = spec["production"]
    (cluster.productions / f"{name}.yaml").write_text(yaml.safe_dump(spec))
    home = Path(cluster.env["CTAOFLOW_HOME"])
    register_demo_inputs(EmbeddedCatalog(home / "catalog"), gamma=jobs, proton=0,
                         first_run=first_run(faults))
    cluster.wait_for_dag(name)
    sessions = session_factory(cluster.ledger_url)
    rng = random.Random(seed)
    plan = list(victims) if faults else []
    rng.shuffle(plan)
    kills: list[str] = []
    started = time.monotonic()
    run_id = cluster.trigger(name)

    def inject(elapsed: float) -> None:
        if not plan or elapsed < 6 + 8 * len(kills):
            return
        victim = plan.pop()
        if kill is not None:
            if not kill(victim):
                plan.append(victim)
                return
        elif victim == "worker":
            if not _kill_a_worker():
                plan.append(victim)
                return
        elif victim == "slurmctld":
            restart_slurmctld()
        else:
            cluster.restart(victim)
        kills.append(f"{victim}@{elapsed:.0f}s")

    state = cluster.wait_run(name, run_id, timeout=1200, during=inject)
    instances = cluster.rest(f"dags/{name}/dagRuns/{quote(run_id, safe='')}/taskInstances"
                             "?limit=1000")["task_instances"]
    outcome = Outcome(state=state, seconds=time.monotonic() - started, kills=kills,
                      ledger=measure(sessions, name),
                      failed_tasks={ti["task_id"] for ti in instances if ti["state"] == "failed"})
    production_spec = Production.model_validate(spec)
    outcome.audit = audit(production_spec, EmbeddedCatalog(home / "catalog"),
                          load_sites(cluster.env["CTAOFLOW_SITES"]), make_backend, sessions)
    outcome.report = report.build(production_spec, f"{name}.yaml", sessions)
    return outcome


def check_faulted(outcome: Outcome, jobs: int, kills: int) -> None:
    """What a faulted production (``production(jobs, faults=True)``) must end with, every
    kill done: only the permanently failing runs left, failed for good; no job duplicated,
    no file lost; a clean audit; the report's errors counted."""
    # the chunks of the permanently failing runs fail, the watcher fails the run, and the
    # report fails while their files need a person
    assert outcome.state == "failed" and outcome.failed_tasks == {"process.run", "report",
                                                                  "watcher"}, outcome
    assert len(outcome.kills) == kills, outcome
    permanent = jobs // 10  # runs ending in 5: the payload always fails
    process_files = {"Processed": jobs - permanent, "Problematic": permanent}
    merge_files = {"Processed": jobs - permanent}  # the merge reads every DL1 output
    ledger = outcome.ledger
    assert ledger.files == {k: process_files.get(k, 0) + merge_files.get(k, 0)
                            for k in ("Processed", "Problematic")}, outcome
    assert ledger.duplicated_jobs == ledger.lost_files == 0, outcome
    assert set(ledger.failures) == {"infrastructure", "data", "application"}, outcome
    assert ledger.left_failed == {"application": permanent}, outcome
    assert sum(ledger.recovered.values()) >= jobs // 2, outcome  # every transient fault
    assert outcome.audit == []
    report = outcome.report
    assert report.needs_a_person == {"process": {"Problematic": permanent}}
    errors = {(e.failure_class, e.signature): e.count for e in report.errors}
    assert errors[("application", "ValueError: no events survived the cuts")] == 2 * permanent


def _kill_a_worker() -> bool:
    """SIGKILL one LocalExecutor worker that is running a task, with its task process."""
    pids = subprocess.run(["pgrep", "-f", "airflow worker -- LocalExecutor"],
                          capture_output=True, text=True).stdout.split()
    for pid in pids:
        children = subprocess.run(["pgrep", "-P", pid], capture_output=True,
                                  text=True).stdout.split()
        if children:
            for victim in [*children, pid]:
                try:
                    os.kill(int(victim), signal.SIGKILL)
                except ProcessLookupError:
                    pass
            return True
    return False
