"""10 productions x 1,000 jobs at once: the distributed deployment against one LocalExecutor one.

Both deployments are the test suite's, started here one after the other in the same
run: tests/airflow_service.py ``AirflowCluster`` (api-server, one scheduler with the
LocalExecutor, parallelism 8, dag-processor, triggerer; Airflow's metadata and the
ledger in SQLite) and tests/distributed_service.py ``DistributedCluster`` (two
schedulers, the CeleryExecutor with two workers of concurrency 4, Redis as broker, one
PostgreSQL for Airflow's metadata, one for the ledger; on free ports). Both have 8 task
slots. Each gets the same work: ``--productions`` MC productions (default 10) of one
``mc_simulation`` transformation with ``runs: {count: --jobs}`` (default 1,000 jobs
each, ``--chunk-size`` 100 jobs per Airflow task instance), on one ``simulated`` site
(ctaoflow/backends/simulated.py: jobs modelled, not run, so that 10,000 jobs fit on a
2-core machine; 20,000 slots, mean run time ``--duration`` s). All DAG runs are
triggered at once; the run ends when every one has ended.

Measured per deployment:

* throughput: jobs / minutes from the first DAG run queued to the last one ended
  (Airflow's own queued_at/end_date); it follows the machine's load from other
  processes (three full runs here gave ratios 0.71, 0.26 and 0.54), so also the jobs per CPU
  minute of the whole deployment, which does not;
* CPU per 1,000 jobs of the scheduler(s), of the workers (the LocalExecutor's worker
  processes, children of the scheduler; the Celery workers) and of the triggerer,
  api-server and dag-processor, and for the distributed one of its services (the two
  PostgreSQL servers with their backends, Redis): utime+stime of each process and of
  its reaped children (/proc/<pid>/stat via psutil), summed over each component's live
  process tree, at trigger time and at the end, the difference; also the deployment's
  idle CPU rate (``--idle`` s with the DAGs parsed and nothing to run, before the
  trigger) and the CPU per 1,000 jobs above it (the run's CPU minus the idle rate x
  the run's wall time): the fixed cost of a deployment beside the cost of the work;
* ledger rows written per job: the rows in every ledger table after the run (tables
  productions, sites, transformations, files, tasks, jobs, events, outbox, nights,
  spec_versions; each listed) / jobs; on PostgreSQL also the tuples inserted, updated
  and deleted (pg_stat_user_tables), which count updates too.

value = the distributed deployment's jobs/min, baseline = the LocalExecutor's, ratio =
value / baseline. Target: none on one machine; the figure to watch is the ratio. On this
2-core machine both deployments share the same two cores with each other's services
(the distributed one runs 2 schedulers, 2 Celery workers with 8 pool processes, Redis
and 2 PostgreSQL servers where the LocalExecutor one runs one scheduler on SQLite), so
the distributed one is expected to be slower: it adds work (broker round trips, result
backend, two schedulers contending for the same DAG runs) without adding cores. It
scales when its workers (and the schedulers) run on other hosts: the CPU per 1,000
jobs measured here tells how many jobs/min one worker or scheduler core sustains. The
machine's load average is recorded: other processes share the cores.

Needs: Redis and PostgreSQL 15 (installed by services/redis/start.sh and
services/airflow-distributed/start_postgres.sh when missing; root).

    python benchmarks/bench_scale.py [--productions 10] [--jobs 1000] [--duration 10]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import psutil
import yaml
from sqlalchemy import create_engine, func, inspect, select, table, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._result import write_result  # noqa: E402
from tests.airflow_service import AirflowCluster, _free_port  # noqa: E402
from tests.distributed_service import DistributedCluster  # noqa: E402

SITE = "sim"
LOCAL_WORKER = "airflow worker -- LocalExecutor"  # the LocalExecutor's worker title
ROLES = ("scheduler", "workers", "triggerer", "api-server", "dag-processor", "services")


def production(number: int, jobs: int, chunk_size: int, poll_interval: float) -> dict:
    return {
        "production": f"scale{number:02d}",
        "description": f"bench_scale: {jobs} simulated MC jobs",
        "defaults": {"sites": [SITE], "chunk_size": chunk_size, "poll_interval": poll_interval,
                     "resources": {"walltime": "1h", "memory": "500MB"}},
        "transformations": [{
            "name": "simulate", "type": "mc_simulation", "runs": {"count": jobs},
            "job": {"command": ["sim_telarray", "--run", "{run}", "{output}"]},
            "outputs": [{"name": "run{run:06d}.simtel.zst",
                         "metadata": {"data_level": "DL0", "particle": "gamma"}}]}]}


def sites(duration: float) -> dict:
    return {"sites": {SITE: {"backend": "simulated", "slots": 20000, "storages": ["LOCAL-DISK"],
                             "options": {"seed": 1, "duration_s": duration,
                                         "duration_sigma": 0.25}}}}


# ---- CPU of a deployment's process trees ----------------------------------------------

def _cpu(process: psutil.Process) -> float:
    """utime+stime of a process and of its reaped children."""
    try:
        t = process.cpu_times()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return 0.0
    return t.user + t.system + t.children_user + t.children_system


def tree_cpu(pid: int) -> tuple[float, float]:
    """(the tree's CPU outside LocalExecutor workers, inside them): every live process
    of the tree counts once with its reaped children (an exited child is in its
    parent's children times, a live one is not)."""
    try:
        root = psutil.Process(pid)
        children = root.children()
    except psutil.NoSuchProcess:
        return 0.0, 0.0
    own, workers = _cpu(root), 0.0
    for child in children:
        try:
            is_worker = LOCAL_WORKER in " ".join(child.cmdline())
            subtree = [child, *child.children(recursive=True)]
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        spent = sum(_cpu(p) for p in subtree)
        if is_worker:
            workers += spent
        else:
            own += spent
    return own, workers


def service_pids(cluster: AirflowCluster) -> dict[str, int]:
    """The distributed deployment's servers: its two postmasters and Redis."""
    if not isinstance(cluster, DistributedCluster):
        return {}
    found = {}
    wanted = {"postgres-metadata": str(cluster.home / "pg-airflow" / "pgdata"),
              "postgres-ledger": str(cluster.home / "pg-ledger" / "pgdata")}
    for process in psutil.process_iter(["cmdline"]):
        line = " ".join(process.info["cmdline"] or [])
        for name, data in wanted.items():
            if line.startswith("/usr/lib/postgresql/") and f"-D {data}" in line:
                found[name] = process.pid
    pidfile = Path(cluster.services_env["REDIS_BASE"]) / f"redis-{cluster.redis_port}.pid"
    found["redis"] = int(pidfile.read_text())
    return found


def cpu_snapshot(cluster: AirflowCluster) -> dict[str, float]:
    """CPU seconds so far by role: scheduler, workers, triggerer, api-server,
    dag-processor, services (distributed: PostgreSQL x2 and Redis)."""
    roles: dict[str, float] = {}

    def add(role: str, seconds: float) -> None:
        roles[role] = roles.get(role, 0.0) + seconds

    for component, proc in cluster.procs.items():
        own, local_workers = tree_cpu(proc.pid)
        role = component.partition("-")[0] if component.startswith(("scheduler", "worker")) \
            else component
        add("workers" if role == "worker" else role, own)
        add("workers", local_workers)
    for name, pid in service_pids(cluster).items():
        server = psutil.Process(pid)
        spent = sum(_cpu(p) for p in [server, *server.children(recursive=True)])
        add("services", spent)
        add(name, spent)
    return roles


# ---- the ledger -----------------------------------------------------------------------

def ledger_rows(url: str) -> dict[str, int]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return {name: connection.execute(select(func.count()).select_from(table(name)))
                    .scalar_one()
                    for name in sorted(inspect(connection).get_table_names())
                    if name != "alembic_version"}
    finally:
        engine.dispose()


def pg_tuple_writes(url: str) -> dict[str, int] | None:
    """Tuples inserted + updated + deleted per table since the server started (PostgreSQL)."""
    if not url.startswith("postgresql"):
        return None
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return {name: int(n) for name, n in connection.execute(text(
                "SELECT relname, n_tup_ins + n_tup_upd + n_tup_del FROM pg_stat_user_tables"))}
    finally:
        engine.dispose()


# ---- one deployment -------------------------------------------------------------------

def measure(cluster: AirflowCluster, args: argparse.Namespace) -> dict:
    """Start the deployment, run all productions at once, measure, stop it."""
    label = "distributed" if isinstance(cluster, DistributedCluster) else "local"
    print(f"[{label}] starting the deployment in {cluster.home}", flush=True)
    cluster.up()
    try:
        Path(cluster.env["CTAOFLOW_SITES"]).write_text(yaml.safe_dump(sites(args.duration)))
        names = []
        for number in range(args.productions):
            spec = production(number, args.jobs, args.chunk_size, args.poll_interval)
            (cluster.productions / f"{spec['production']}.yaml").write_text(yaml.safe_dump(spec))
            names.append(spec["production"])
        for name in names:
            cluster.wait_for_dag(name, timeout=300)
        time.sleep(5)  # the last DAGs' serialization settles before the runs start
        idle_before = cpu_snapshot(cluster)
        time.sleep(args.idle)  # the deployment's own CPU with nothing to run
        idle_after = cpu_snapshot(cluster)
        load_before = os.getloadavg()
        writes_before = pg_tuple_writes(cluster.ledger_url)
        cpu_before = cpu_snapshot(cluster)
        started = time.monotonic()
        runs = {name: cluster.trigger(name) for name in names}
        print(f"[{label}] triggered {len(runs)} DAG runs", flush=True)
        states: dict[str, str] = {}
        while len(states) < len(runs) and time.monotonic() - started < args.timeout:
            time.sleep(5)
            for name, run_id in runs.items():
                if name not in states:
                    state = cluster.run_state(name, run_id)
                    if state in ("success", "failed"):
                        states[name] = state
            print(f"[{label}] {time.monotonic() - started:.0f} s: {len(states)}/{len(runs)} "
                  "runs ended", flush=True)
        polled_wall = time.monotonic() - started
        cpu_after = cpu_snapshot(cluster)
        load_after = os.getloadavg()
        writes_after = pg_tuple_writes(cluster.ledger_url)
        records = [cluster.rest(f"dags/{name}/dagRuns/{quote(run_id, safe='')}")
                   for name, run_id in runs.items()]
        rows = ledger_rows(cluster.ledger_url)
    finally:
        cluster.down()
    if len(states) < len(runs):
        print(f"[{label}] TIMEOUT after {args.timeout} s: {len(states)}/{len(runs)} ended",
              flush=True)
    ended = [dt.datetime.fromisoformat(r["end_date"]) for r in records if r.get("end_date")]
    queued = [dt.datetime.fromisoformat(r["queued_at"]) for r in records if r.get("queued_at")]
    wall = (max(ended) - min(queued)).total_seconds() if len(ended) == len(records) \
        else polled_wall
    jobs = rows.get("jobs", 0)
    per_thousand = 1000 / jobs if jobs else float("nan")
    cpu = {role: cpu_after[role] - cpu_before.get(role, 0.0) for role in cpu_after}
    total = sum(s for role, s in cpu.items() if role in ROLES)
    idle = {role: (idle_after[role] - idle_before.get(role, 0.0)) / args.idle
            for role in idle_after}  # CPU s per s
    above_idle = {role: s - idle.get(role, 0.0) * polled_wall for role, s in cpu.items()}
    result = {
        "deployment": label,
        "states": dict(sorted({r["dag_id"]: r["state"] for r in records}.items())),
        "jobs": jobs,
        "wall_s": round(wall, 1), "polled_wall_s": round(polled_wall, 1),
        "jobs_per_min": round(jobs / wall * 60, 1) if wall else None,
        "cpu_s": {role: round(s, 1) for role, s in cpu.items()},
        "cpu_s_per_1000_jobs": {role: round(s * per_thousand, 1) for role, s in cpu.items()},
        "cpu_s_per_1000_jobs_total": round(total * per_thousand, 1),
        # throughput per core: what the deployment sustains where it has the cores alone
        "jobs_per_cpu_min": round(jobs / total * 60, 1) if total else None,
        "idle_cpu_s_per_min": {role: round(r * 60, 2) for role, r in idle.items()},
        "cpu_s_per_1000_jobs_above_idle": {role: round(s * per_thousand, 1)
                                           for role, s in above_idle.items()},
        "cpu_s_per_1000_jobs_above_idle_total": round(
            sum(s for role, s in above_idle.items() if role in ROLES) * per_thousand, 1),
        "ledger_rows": rows,
        "ledger_rows_per_job": round(sum(rows.values()) / jobs, 2) if jobs else None,
        "load_average": {"before": [round(x, 2) for x in load_before],
                         "after": [round(x, 2) for x in load_after]},
    }
    if writes_after is not None:
        written = {t: writes_after.get(t, 0) - (writes_before or {}).get(t, 0)
                   for t in writes_after}
        result["ledger_tuple_writes"] = {t: n for t, n in sorted(written.items()) if n}
        result["ledger_tuple_writes_per_job"] = round(sum(written.values()) / jobs, 2) \
            if jobs else None
    print(f"[{label}] {result}", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--productions", type=int, default=10)
    parser.add_argument("--jobs", type=int, default=1000, help="jobs per production")
    parser.add_argument("--chunk-size", type=int, default=100, help="jobs per task instance")
    parser.add_argument("--duration", type=float, default=10.0,
                        help="mean modelled job run time, s")
    parser.add_argument("--poll-interval", type=float, default=2.0,
                        help="the productions' batch poll interval, s")
    parser.add_argument("--idle", type=float, default=30,
                        help="s of idle CPU measured before the trigger (subtracted as a rate)")
    parser.add_argument("--timeout", type=float, default=3600,
                        help="per deployment, s, from the trigger")
    parser.add_argument("--only", choices=("local", "distributed"),
                        help="one deployment only (no result file is written)")
    parser.add_argument("--note", default="", help="a remark recorded in the result")
    parser.add_argument("--keep", action="store_true", help="keep the deployments' homes")
    args = parser.parse_args()

    homes = []
    measured = {}
    try:
        if args.only in (None, "local"):
            home = Path(tempfile.mkdtemp(prefix="ctaoflow-bench-scale-local-"))
            homes.append(home)
            measured["local"] = measure(AirflowCluster(home), args)
        if args.only in (None, "distributed"):
            home = Path(tempfile.mkdtemp(prefix="ctaoflow-bench-scale-dist-"))
            home.chmod(0o755)  # PostgreSQL runs as user postgres, its data below
            homes.append(home)
            ports = (_free_port(), _free_port(), _free_port())
            measured["distributed"] = measure(DistributedCluster(home, ports=ports), args)
    finally:
        if not args.keep:
            for home in homes:
                shutil.rmtree(home, ignore_errors=True)
    if args.only:
        return
    local, dist = measured["local"], measured["distributed"]
    name = f"scale_{args.productions}x{args.jobs}"
    write_result(
        name, dist["jobs_per_min"], "jobs/min", baseline=local["jobs_per_min"],
        ratio=round(dist["jobs_per_min"] / local["jobs_per_min"], 2),
        productions=args.productions, jobs_per_production=args.jobs,
        chunk_size=args.chunk_size, modelled_job_duration_s={"mean": args.duration,
                                                             "sigma": 0.25},
        poll_interval_s=args.poll_interval, task_slots=8,
        scheduler_cpu_s_per_1000_jobs={k: m["cpu_s_per_1000_jobs"].get("scheduler")
                                       for k, m in measured.items()},
        worker_cpu_s_per_1000_jobs={k: m["cpu_s_per_1000_jobs"].get("workers")
                                    for k, m in measured.items()},
        cpu_s_per_1000_jobs_total={k: m["cpu_s_per_1000_jobs_total"]
                                   for k, m in measured.items()},
        jobs_per_cpu_min={k: m["jobs_per_cpu_min"] for k, m in measured.items()},
        cpu_s_per_1000_jobs_above_idle_total={
            k: m["cpu_s_per_1000_jobs_above_idle_total"] for k, m in measured.items()},
        ledger_rows_per_job={k: m["ledger_rows_per_job"] for k, m in measured.items()},
        load_average_at_end=os.getloadavg(), note=args.note,
        distributed=dist, local=local)


if __name__ == "__main__":
    main()
