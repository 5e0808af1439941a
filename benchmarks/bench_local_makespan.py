"""Makespan of 1,000 ``sleep 1`` jobs through ctaoflow on the local backend (50 slots)
vs the same 1,000 commands run 50 at a time by ``xargs -P 50``, and Airflow's CPU.

Starts a real Airflow deployment (tests/airflow_service.py: api-server, scheduler with
the LocalExecutor, dag-processor, triggerer) in a temporary folder, with one ``local``
site of 50 slots, and a production of one ``mc_simulation`` transformation of 1,000
runs, each job ``sh -c 'sleep 1 && : > "$0"' <output>`` (chunks of 100, polling every
1 s). Trigger and run state go through the REST API (one cheap GET per second; the
``airflow`` CLI would cost a few CPU seconds per look on this 2-core machine).

value = wall seconds from the trigger request to the last output registered (the
largest ``finished_at`` of a Done job in the ledger: it is written right after the
bulk catalog registration of its chunk). The DAG run's end (after finalize and
report) is given too, as ``run_success_s``. A 10-job warm-up production runs first and
is not counted: a fresh deployment's first task instance waits a one-off 2.5-4 s for
the api-server's first ``PATCH /execution/task-instances/<id>/run``, a cost of
starting Airflow, not of a production.
baseline = wall seconds of ``xargs -P 50`` running the same 1,000 commands into the
same temporary folder, in the same run, with the deployment up and idle. The target is
ratio <= 1.5.

cpu_seconds_per_job: CPU seconds (user + system, own and of reaped children, e.g. the
LocalExecutor workers and task processes) of the four Airflow component process trees,
from just before the trigger to the DAG run's end, over 1,000. The local backend's
spool daemon (ctaoflow's batch system here, detached from Airflow) is counted apart,
without its children (the payloads). ``machine_cpu_seconds`` is the whole machine's
busy CPU over the run (payloads, this script's polling and anything else included), a
cross-check that nothing escaped the sums. ``idle_cpu_seconds`` is the Airflow trees'
CPU over an idle window as long as the run, after it: what the deployment burns doing
nothing. Also a timeline (seconds after the trigger) of Airflow's tasks, the jobs' starts
and ends in the spool, the registrations, and the task instances retried.

    flock /tmp/ctaoflow-heavy.lock .venv/bin/python benchmarks/bench_local_makespan.py
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._result import write_result  # noqa: E402
from tests.airflow_service import AirflowCluster  # noqa: E402

JOBS, SLOTS, CHUNK = 1000, 50, 100
DAG_ID, WARMUP_ID, WARMUP_JOBS = "local_makespan", "warmup", 10
SCRIPT = 'sleep 1 && : > "$0"'


def production(name: str, jobs: int) -> dict:
    return {
        "production": name,
        "description": f"{jobs} x sleep 1 on the local backend with {SLOTS} slots",
        "defaults": {"sites": ["local"], "storage": "LOCAL-DISK", "chunk_size": CHUNK,
                     "poll_interval": 1,
                     "resources": {"cores": 1, "memory": "100MB", "walltime": "10m"}},
        "transformations": [{
            "name": "sleep", "type": "mc_simulation", "runs": {"count": jobs, "start": 1},
            "job": {"command": ["sh", "-c", SCRIPT, "{output}"]},
            "outputs": [{"name": "run{run:06d}.out"}]}]}


def write_sites(path: Path, spool: Path) -> None:
    path.write_text(yaml.safe_dump({"sites": {"local": {
        "backend": "local", "slots": SLOTS, "storages": ["LOCAL-DISK"],
        "options": {"root": str(spool)}}}}))


def xargs_baseline(folder: Path) -> float:
    """Wall seconds of the same commands, ``SLOTS`` at a time, by xargs."""
    folder.mkdir(parents=True)
    paths = "\0".join(str(folder / f"run{run:06d}.out") for run in range(1, JOBS + 1))
    start = time.monotonic()
    subprocess.run(["xargs", "-0", "-n", "1", "-P", str(SLOTS), "sh", "-c", SCRIPT],
                   input=paths.encode(), check=True)
    seconds = time.monotonic() - start
    made = sum(1 for _ in folder.glob("run*.out"))
    if made != JOBS:
        raise RuntimeError(f"xargs made {made} outputs, not {JOBS}")
    return seconds


# -- CPU ---------------------------------------------------------------------------
def tree_cpu(cluster: AirflowCluster) -> float:
    """CPU seconds so far of the Airflow components and their descendants.

    A process that ended was reaped inside its tree (workers by the scheduler, task
    processes by their supervisor), so its time is in an ancestor's children times.
    """
    total = 0.0
    for popen in cluster.procs.values():
        try:
            root = psutil.Process(popen.pid)
            members = [*root.children(recursive=True), root]  # children first: fewer races
        except psutil.NoSuchProcess:
            continue
        for proc in members:
            try:
                t = proc.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += t.user + t.system + t.children_user + t.children_system
    return total


def machine_cpu() -> float:
    """Busy CPU seconds of the whole machine so far (a cross-check of the sums above)."""
    t = psutil.cpu_times()
    return t.user + t.nice + t.system + t.irq + t.softirq + t.steal


class DaemonCpu:
    """Own CPU (not its payloads') of the local backend's detached spool daemon(s)."""

    def __init__(self, spool: Path) -> None:
        self.spool, self.seen = str(spool), {}
        self.sample()
        self.before = dict(self.seen)  # a daemon left by the warm-up: only what it spends now

    def sample(self) -> None:
        for proc in psutil.process_iter(["cmdline"]):
            cmd = proc.info["cmdline"] or []
            if "ctaoflow.backends.local" in cmd and self.spool in cmd:
                try:
                    t = proc.cpu_times()
                except psutil.NoSuchProcess:
                    continue
                self.seen[proc.pid] = t.user + t.system

    @property
    def seconds(self) -> float:
        return sum(cpu - self.before.get(pid, 0.0) for pid, cpu in self.seen.items())


# -- REST API ------------------------------------------------------------------------
def _at(stamp: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(stamp) if stamp else None


def timeline(cluster: AirflowCluster, run_id: str, triggered: dt.datetime, home: Path,
             spool: Path) -> dict:
    """Seconds after the trigger: Airflow's tasks, the jobs in the spool, registrations."""
    from sqlalchemy import func, select

    from ctaoflow.engine.ledger import JobRow, session_factory

    def rel(when: dt.datetime | None) -> float | None:
        return None if when is None else round((when - triggered).total_seconds(), 1)

    def mtime(path: Path) -> dt.datetime:
        return dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC)

    instances = cluster.rest(f"dags/{DAG_ID}/dagRuns/{run_id}/taskInstances?limit=1000")
    tasks: dict[str, object] = {}
    chunks = []
    for ti in sorted(instances["task_instances"], key=lambda t: (t["task_id"], t["map_index"])):
        span = [rel(_at(ti["start_date"])), rel(_at(ti["end_date"]))]
        if ti["map_index"] >= 0:
            chunks.append(span)
        else:
            tasks[ti["task_id"]] = span
    tasks["sleep.run (per chunk: first start, end)"] = chunks
    # retries, e.g. from Airflow's stale defer-exit success race (apache/airflow#67287)
    retries = sum(max(0, ti["try_number"] - 1) for ti in instances["task_instances"])
    folders = [f for f in (spool / "jobs").iterdir()
               if f.name.startswith(f"{DAG_ID}-") and (f / "exit").exists()]
    starts = sorted(mtime(f / "pid") for f in folders)
    ends = sorted(mtime(f / "exit") for f in folders)
    sessions = session_factory(f"sqlite:///{home / 'ledger.db'}")
    ours = JobRow.name.like(f"{DAG_ID}-%")
    with sessions() as session:
        registered = [r.replace(tzinfo=dt.UTC) for r in session.scalars(
            select(JobRow.finished_at).where(ours, JobRow.status == "Done")
            .order_by(JobRow.finished_at))]
        submitted = session.scalar(select(func.min(JobRow.submitted_at)).where(ours))
    return {
        "airflow_tasks": tasks,
        "first_job_submitted": rel(submitted and submitted.replace(tzinfo=dt.UTC)),
        "first_job_started": rel(starts[0]), "last_job_started": rel(starts[-1]),
        "last_job_ended": rel(ends[-1]),
        "first_output_registered": rel(registered[0]),
        "last_output_registered": rel(registered[-1]),
        "jobs_ended": len(ends), "outputs_registered": len(registered),
        "task_instance_retries": retries,
    }


def run_dag(cluster: AirflowCluster, dag_id: str, during=lambda: None) -> tuple[str, dt.datetime, dict]:
    """Trigger ``dag_id``, poll its run every second until it ends; (id, trigger time, run)."""
    triggered = dt.datetime.now(dt.UTC)
    run_id = cluster.rest(f"dags/{dag_id}/dagRuns", {"logical_date": None})["dag_run_id"]
    while (run := cluster.rest(f"dags/{dag_id}/dagRuns/{run_id}"))["state"] not in (
            "success", "failed"):
        during()
        if dt.datetime.now(dt.UTC) - triggered > dt.timedelta(minutes=30):
            raise TimeoutError(f"run {run_id} of {dag_id} still {run['state']} after 30 min")
        time.sleep(1)
    if run["state"] != "success":
        raise RuntimeError(f"run {run_id} of {dag_id} failed")
    return run_id, triggered, run


def main() -> None:
    home = Path(tempfile.mkdtemp(prefix="ctaoflow-local-bench-"))
    cluster = AirflowCluster(home)
    cluster.up()
    try:
        ctaoflow_home = Path(cluster.env["CTAOFLOW_HOME"])
        spool = ctaoflow_home / "local-batch"
        write_sites(Path(cluster.env["CTAOFLOW_SITES"]), spool)
        for name, jobs in ((DAG_ID, JOBS), (WARMUP_ID, WARMUP_JOBS)):
            spec_file = cluster.productions / f"{name}.yaml"
            spec_file.write_text(yaml.safe_dump(production(name, jobs), sort_keys=False))
            subprocess.run([str(ROOT / ".venv/bin/ctaoflow"), "validate", str(spec_file)],
                           env=cluster.env, check=True)
        cluster.wait_for_dag(DAG_ID)
        cluster.wait_for_dag(WARMUP_ID)
        # A fresh deployment's first task pays a one-off few seconds in the api-server
        # (its first PATCH /execution/task-instances/<id>/run); a small production
        # takes that, so the figure is what a production costs a running deployment.
        _, warm_triggered, warm_run = run_dag(cluster, WARMUP_ID)
        warmup_s = (_at(warm_run["end_date"]) - warm_triggered).total_seconds()
        baseline = xargs_baseline(home / "xargs")
        time.sleep(10)  # let the components settle after the xargs burst

        daemon = DaemonCpu(spool)
        cpu_before, machine_before = tree_cpu(cluster), machine_cpu()
        started = time.monotonic()
        run_id, triggered, run = run_dag(cluster, DAG_ID, during=daemon.sample)
        run_wall = time.monotonic() - started
        cpu_run = tree_cpu(cluster) - cpu_before
        machine_run = machine_cpu() - machine_before
        daemon.sample()
        steps = timeline(cluster, run_id, triggered, ctaoflow_home, spool)
        value = steps["last_output_registered"]

        idle_start = tree_cpu(cluster)  # an idle window as long as the run, after it
        deadline = time.monotonic() + run_wall
        while time.monotonic() < deadline:
            daemon.sample()  # the spool daemon exits 30 s after its last job
            time.sleep(1)
        idle = tree_cpu(cluster) - idle_start
    finally:
        cluster.down()
    if steps["outputs_registered"] != JOBS:
        raise RuntimeError(f"{steps['outputs_registered']} outputs registered, not {JOBS}")
    write_result(
        "local_makespan", value, "s", baseline=round(baseline, 2),
        ratio=round(value / baseline, 2), target="ratio <= 1.5",
        jobs=JOBS, slots=SLOTS, chunk_size=CHUNK, chunks=len(steps["airflow_tasks"][
            "sleep.run (per chunk: first start, end)"]), poll_interval_s=1,
        run_success_s=round((_at(run["end_date"]) - triggered).total_seconds(), 1),
        cpu_seconds_per_job=round(cpu_run / JOBS, 4),
        cpu_seconds_airflow=round(cpu_run, 1),
        idle_cpu_seconds=round(idle, 1), idle_window_s=round(run_wall, 1),
        local_daemon_cpu_seconds=round(daemon.seconds, 1),
        machine_cpu_seconds=round(machine_run, 1),
        warmup_production=f"{WARMUP_JOBS} jobs, trigger to end {warmup_s:.1f} s (not counted)",
        parallelism=int(cluster.env["AIRFLOW__CORE__PARALLELISM"]),
        timeline_s=steps)


if __name__ == "__main__":
    main()
