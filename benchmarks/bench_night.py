"""A modelled LST-1 night through the real scheduler and triggerer: makespan vs the ideal.

A real Airflow deployment (tests/airflow_service.py: api-server, scheduler with the
LocalExecutor, dag-processor, triggerer) runs the nightly production of
``benchmarks/night_model.yaml`` (lstosa's shape: per subrun R0 -> DL1, per run the
merge once its subruns are done, per run DL1 -> DL2, per night a check) on the four
simulated sites of ``benchmarks/night_sites.yaml`` (jobs modelled, not run: subrun
jobs ~50 s, merges ~5 s, DL2 ~10 s, the check ~5 s, lognormal spread 0.25; ``--slots``
in all, split evenly). The night's raw files (``--runs`` x ``--subruns``), its run
summary and the current models are registered in the embedded catalog of the
deployment's CTAOFLOW_HOME before the DAG appears; the night's run is then triggered
by REST with conf {"night": ...} and waited for.

value = the makespan: from "night complete" (the ledger's nights row, decided_at) to
the end of the last DL2 job (the simulated backend's SQLite state). baseline = the
ideal: the same jobs, with the run times the backend modelled for them (read from its
state), list-scheduled (longest remaining path first) on the same number of slots with
the dependencies (a run's subruns -> its merge -> its DL2 -> the night's check, read
from the ledger), starting at "night complete". ratio = value / baseline (target <=
1.2). Also: the CPU seconds of the scheduler (its own process, and the task processes
its LocalExecutor workers ran), of the triggerer, the Airflow task instances of the run,
and where the time went (the phases of the actual run).

    python benchmarks/bench_night.py [--runs 100] [--subruns 100] [--slots N]
        [--chunk-size N] [--poll-interval S] [--timeout S] [--keep]
"""

from __future__ import annotations

import argparse
import datetime as dt
import heapq
import json
import os
import shutil
import sqlite3
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from urllib.parse import quote

import psutil
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._result import write_result  # noqa: E402
from tests.airflow_service import AirflowCluster  # noqa: E402

MODEL = ROOT / "benchmarks" / "night_model.yaml"
SITES = ROOT / "benchmarks" / "night_sites.yaml"
STORAGE = "LOCAL-DISK"


# --- the night's data ----------------------------------------------------------------

def register_night(home: Path, night: str, runs: int, subruns: int) -> None:
    """Raw subrun files, the run summary and the models, in the embedded catalog."""
    from ctaoflow.catalog.base import OutputFile
    from ctaoflow.catalog.embedded import EmbeddedCatalog

    catalog = EmbeddedCatalog(home / "catalog")
    raw = home / "raw" / night
    raw.mkdir(parents=True, exist_ok=True)
    numbers = [2000 + r for r in range(runs)]
    batch: list[OutputFile] = []
    for run in numbers:
        for subrun in range(subruns):
            name = f"LST-1.1.Run{run:05d}.{subrun:04d}.fits.fz"
            (raw / name).write_text(f"raw {night} {run} {subrun}\n")
            batch.append(OutputFile(f"/ctao/lst/R0/{night}/{name}", str(raw / name),
                                    {"data_level": "R0", "night": night, "run": run,
                                     "subrun": subrun}))
        if len(batch) >= 2000 or run == numbers[-1]:
            catalog.register(batch, STORAGE, f"/ctao/lst/R0/{night}")
            batch = []
    summary = raw / f"RunSummary_{night}.ecsv"
    summary.write_text("run_id,n_subruns\n" + "".join(f"{r},{subruns}\n" for r in numbers))
    models = raw / "models_v1.tar"
    models.write_text("models\n")
    catalog.register([OutputFile(f"/ctao/lst/monitoring/RunSummary/{summary.name}", str(summary),
                                 {"datatype": "run_summary", "night": night,
                                  "subruns": ",".join(f"{r}:{subruns}" for r in numbers)})],
                     STORAGE, "/ctao/lst/monitoring/RunSummary")
    catalog.register([OutputFile("/ctao/lst/models/models_v1.tar", str(models),
                                 {"datatype": "model", "status": "current"})],
                     STORAGE, "/ctao/lst/models")


def write_sites(path: Path, slots: int) -> dict[str, int]:
    """The benchmark's sites with ``slots`` split evenly; site -> slots."""
    data = yaml.safe_load(SITES.read_text())
    names = sorted(data["sites"])
    share = {name: slots // len(names) + (i < slots % len(names)) for i, name in enumerate(names)}
    data["sites"] = {name: {**data["sites"][name], "slots": max(1, share[name])} for name in names}
    path.write_text(yaml.safe_dump(data, sort_keys=True))
    return {name: data["sites"][name]["slots"] for name in names}


def write_model(path: Path, chunk_size: int | None, poll_interval: float | None) -> dict:
    """The production YAML, with the tunables given on the command line."""
    data = yaml.safe_load(MODEL.read_text())
    if chunk_size:
        data["defaults"]["chunk_size"] = chunk_size
    if poll_interval:
        data["defaults"]["poll_interval"] = poll_interval
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return data


def latest_night(spec: Path) -> str:
    """The night of the timetable's latest scheduled run (YYYY-MM-DD): the DAG, unpaused
    with catchup off, gets that run as soon as it appears; the benchmark measures it."""
    from zoneinfo import ZoneInfo

    from ctaoflow.spec.validation import load_production

    nightly = load_production(spec).nightly
    local = dt.datetime.now(ZoneInfo(nightly.timezone))
    hour, minute = map(int, nightly.starts_at.split(":"))
    started = local.replace(hour=hour, minute=minute, second=0, microsecond=0) <= local
    return (local.date() - dt.timedelta(days=1 if started else 2)).isoformat()


def night_run(cluster: AirflowCluster, dag_id: str, key: str, wait_s: float = 30) -> str:
    """The run of night ``key``: the scheduled one when the timetable makes it within
    ``wait_s``, else one triggered by REST with conf {"night": key}."""
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        for run in cluster.rest(f"dags/{dag_id}/dagRuns")["dag_runs"]:
            if run.get("partition_key") == key or run["dag_run_id"] == f"night__{key}":
                return run["dag_run_id"]
        time.sleep(1)
    return cluster.rest(f"dags/{dag_id}/dagRuns",
                        {"logical_date": None, "conf": {"night": key}})["dag_run_id"]


# --- CPU of the deployment's processes -------------------------------------------------

def cpu_seconds(pid: int) -> dict[str, float]:
    """CPU of a process: its own, and its descendants' (live ones, plus the reaped ones
    its children and itself waited for)."""
    try:
        process = psutil.Process(pid)
        own = process.cpu_times()
        children = own.children_user + own.children_system
        for child in process.children(recursive=True):  # a reaped one is in its parent's
            try:
                times = child.cpu_times()
                children += times.user + times.system + times.children_user + times.children_system
            except psutil.NoSuchProcess:
                pass
        return {"own": own.user + own.system, "children": children}
    except psutil.NoSuchProcess:
        return {"own": float("nan"), "children": float("nan")}


def cpu_snapshot(cluster: AirflowCluster) -> dict[str, dict[str, float]]:
    return {name: cpu_seconds(cluster.procs[name].pid) for name in ("scheduler", "triggerer")}


# --- what happened: the ledger and the simulated state ---------------------------------

def observed(home: Path, production_name: str) -> tuple[float, list[dict]]:
    """(night complete as epoch, one dict per job that ran: transformation, task id,
    parents' task ids, site, submitted/start/end/run_s from the simulated state)."""
    ledger = sqlite3.connect(home / "ledger.db")  # the embedded default's ledger
    production_id, = ledger.execute("SELECT id FROM productions WHERE name = ?",
                                    (production_name,)).fetchone()
    decided, = ledger.execute("SELECT decided_at FROM nights WHERE production_id = ?",
                              (production_id,)).fetchone()
    complete = _epoch(decided)
    producer: dict[str, int] = {}
    tasks: dict[int, str] = {}
    for task_id, name, outputs in ledger.execute(
            "SELECT tasks.id, transformations.name, tasks.outputs FROM tasks JOIN transformations "
            "ON transformations.id = tasks.transformation_id WHERE production_id = ?",
            (production_id,)):
        tasks[task_id] = name
        for lfn in json.loads(outputs or "[]"):
            producer[lfn] = task_id
    parents: dict[int, set[int]] = defaultdict(set)
    for task_id, lfn in ledger.execute("SELECT task_id, lfn FROM files WHERE task_id IS NOT NULL"):
        if task_id in tasks and lfn in producer:
            parents[task_id].add(producer[lfn])
    jobs = []
    rows = ledger.execute("SELECT task_id, name, site, state FROM jobs").fetchall()
    states = {}
    for site_file in (home / "simulated").glob("*.sqlite"):
        with sqlite3.connect(site_file) as db:
            for name, submitted, start, end, run_s, state in db.execute(
                    "SELECT name, submitted, start, end, run_s, state FROM jobs "
                    "WHERE cancelled IS NULL"):
                states[name] = (submitted, start, end, run_s, state)
    for task_id, name, site, state in rows:
        if task_id not in tasks or name not in states:
            continue
        submitted, start, end, run_s, modelled = states[name]
        jobs.append({"transformation": tasks[task_id], "task": task_id, "name": name,
                     "parents": sorted(parents[task_id]), "site": site, "state": state,
                     "modelled": modelled, "submitted": submitted, "start": start, "end": end,
                     "run_s": run_s})
    return complete, jobs


def _epoch(value: str | dt.datetime) -> float:
    when = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
    return when.replace(tzinfo=dt.timezone.utc).timestamp()


def ideal_schedule(jobs: list[dict], slots: int, fifo: bool = False) -> dict[int, float]:
    """List scheduling of the DONE jobs on ``slots`` identical slots from time 0: a job
    is ready when its parents' jobs have ended; among ready jobs the one with the
    longest remaining path starts first (``fifo``: the first task first, as a batch
    queue that knows no run times would). Returns task id -> end time."""
    run = {j["task"]: j["run_s"] for j in jobs if j["modelled"] == "DONE"}
    parents = {j["task"]: [p for p in j["parents"] if p in run] for j in jobs if j["task"] in run}
    children: dict[int, list[int]] = defaultdict(list)
    for task, ps in parents.items():
        for p in ps:
            children[p].append(task)
    rank: dict[int, float] = {}
    for task in _topological(parents, children)[::-1]:
        rank[task] = run[task] + max((rank[c] for c in children[task]), default=0.0)
    waiting = {task: len(ps) for task, ps in parents.items()}
    priority = (lambda t: t) if fifo else (lambda t: -rank[t])  # noqa: E731
    ready = [(priority(t), t) for t, n in waiting.items() if n == 0]
    heapq.heapify(ready)
    running: list[tuple[float, int]] = []
    ends: dict[int, float] = {}
    clock, free = 0.0, slots
    while ready or running:
        while free and ready:
            _, task = heapq.heappop(ready)
            heapq.heappush(running, (clock + run[task], task))
            free -= 1
        clock, task = heapq.heappop(running)
        ends[task], free = clock, free + 1
        for child in children[task]:
            waiting[child] -= 1
            if not waiting[child]:
                heapq.heappush(ready, (priority(child), child))
    return ends


def _topological(parents: dict[int, list[int]], children: dict[int, list[int]]) -> list[int]:
    left = {t: len(ps) for t, ps in parents.items()}
    order = [t for t, n in left.items() if n == 0]
    for task in order:
        for child in children[task]:
            left[child] -= 1
            if not left[child]:
                order.append(child)
    return order


def phases(complete: float, jobs: list[dict]) -> dict[str, dict[str, float]]:
    """Per transformation, seconds after night complete: first submission, first start,
    last submission, last end."""
    out: dict[str, dict[str, float]] = {}
    for name in ("subrun", "merge", "dl2", "night_check"):
        mine = [j for j in jobs if j["transformation"] == name]
        if mine:
            out[name] = {"jobs": len(mine),
                         "first_submitted": round(min(j["submitted"] for j in mine) - complete, 1),
                         "last_submitted": round(max(j["submitted"] for j in mine) - complete, 1),
                         "first_start": round(min(j["start"] for j in mine) - complete, 1),
                         "last_end": round(max(j["end"] for j in mine) - complete, 1),
                         "mean_run_s": round(sum(j["run_s"] for j in mine) / len(mine), 2)}
    return out


# --- the run -----------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100, help="runs in the night")
    parser.add_argument("--subruns", type=int, default=100, help="subruns per run")
    parser.add_argument("--slots", type=int, default=None,
                        help="slots of the four sites in all (default: runs x subruns / 10, "
                             "ten waves of subrun jobs)")
    parser.add_argument("--chunk-size", type=int, default=None,
                        help="override the YAML's defaults.chunk_size")
    parser.add_argument("--poll-interval", type=float, default=None,
                        help="override the YAML's defaults.poll_interval (s)")
    parser.add_argument("--night", default=None, help=(
        "YYYY-MM-DD (default: the night of the timetable's latest scheduled run, which is "
        "then the run measured; another night is triggered by REST, and the scheduled run "
        "of the latest night waits for raw data beside it)"))
    parser.add_argument("--timeout", type=float, default=7200, help="for the run, s")
    parser.add_argument("--keep", action="store_true", help="keep the deployment's folder")
    args = parser.parse_args()
    slots = args.slots or max(4, args.runs * args.subruns // 10)
    key = args.night or latest_night(MODEL)
    night = key.replace("-", "")

    cluster = AirflowCluster(Path(tempfile.mkdtemp(prefix="ctaoflow-bench-night-")))
    home = Path(cluster.env["CTAOFLOW_HOME"])
    os.environ["CTAOFLOW_HOME"] = str(home)
    os.environ["CTAOFLOW_SITES"] = cluster.env["CTAOFLOW_SITES"]
    print(f"deployment in {cluster.home}", flush=True)
    cluster.up()
    try:
        per_site = write_sites(Path(cluster.env["CTAOFLOW_SITES"]), slots)
        started = time.perf_counter()
        register_night(home, night, args.runs, args.subruns)
        register_s = time.perf_counter() - started
        print(f"registered {args.runs} x {args.subruns} raw files in {register_s:.1f} s",
              flush=True)
        spec = write_model(cluster.productions / "night_model.yaml", args.chunk_size,
                           args.poll_interval)
        dag_id = spec["production"]
        cluster.wait_for_dag(dag_id, timeout=300)
        before = cpu_snapshot(cluster)
        wall = time.perf_counter()
        run_id = night_run(cluster, dag_id, key)
        print(f"measuring {run_id} (night {key})", flush=True)
        last = [0.0]

        def progress(elapsed: float) -> None:
            if elapsed - last[0] >= 60:
                last[0] = elapsed
                print(f"  {elapsed:.0f} s: {cluster.run_state(dag_id, run_id)}", flush=True)

        state = cluster.wait_run(dag_id, run_id, timeout=args.timeout, during=progress)
        wall = time.perf_counter() - wall
        after = cpu_snapshot(cluster)
        instances = cluster.rest(f"dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/"
                                 "taskInstances?limit=1")["total_entries"]
        runs = cluster.rest(f"dags/{dag_id}/dagRuns")["total_entries"]
    finally:
        cluster.down()

    from ctaoflow.spec.nights import ledger_name
    from ctaoflow.spec.validation import load_production

    production = load_production(cluster.productions / "night_model.yaml")
    complete, jobs = observed(home, ledger_name(production, night))
    dl2_ends = [j["end"] for j in jobs if j["transformation"] == "dl2"]
    makespan = max(dl2_ends) - complete
    ends = ideal_schedule(jobs, slots)
    task_of = {j["task"]: j["transformation"] for j in jobs}
    ideal = max(end for task, end in ends.items() if task_of[task] == "dl2")
    fifo_ends = ideal_schedule(jobs, slots, fifo=True)
    ideal_fifo = max(end for task, end in fifo_ends.items() if task_of[task] == "dl2")
    work = sum(j["run_s"] for j in jobs if j["modelled"] == "DONE")
    check_end = [j["end"] for j in jobs if j["transformation"] == "night_check"]
    cpu = {name: {part: round(after[name][part] - before[name][part], 1)
                  for part in ("own", "children")} for name in after}
    if not args.keep:
        shutil.rmtree(cluster.home, ignore_errors=True)
    full = (args.runs, args.subruns) == (100, 100)
    write_result(
        "night_makespan" if full else f"night_makespan_{args.runs}x{args.subruns}", round(makespan, 1), "s", baseline=round(ideal, 1),
        ratio=round(makespan / ideal, 3), state=state, runs=args.runs, subruns=args.subruns,
        jobs=len(jobs), slots=per_site, chunk_size=spec["defaults"]["chunk_size"],
        poll_interval_s=spec["defaults"]["poll_interval"],
        modelled_mean_s={t["name"]: float(t["job"]["env"]["CTAOFLOW_SIM_DURATION_S"])
                         for t in spec["transformations"]},
        makespan_to_night_check_s=round(max(check_end) - complete, 1) if check_end else None,
        ideal_to_night_check_s=round(max(ends.values()), 1),
        ideal_fifo_s=round(ideal_fifo, 1), ratio_to_ideal_fifo=round(makespan / ideal_fifo, 3),
        lower_bound_s=round(work / slots, 1), work_s=round(work, 1),
        phases_after_night_complete_s=phases(complete, jobs),
        scheduler_cpu_s=cpu["scheduler"]["own"],
        task_processes_cpu_s=cpu["scheduler"]["children"],
        triggerer_cpu_s=round(cpu["triggerer"]["own"] + cpu["triggerer"]["children"], 1),
        triggerer_cpu_detail_s=cpu["triggerer"], task_instances=instances, dag_runs=runs,
        run_wall_s=round(wall, 1), register_s=round(register_s, 1),
        command=" ".join(["python", "benchmarks/bench_night.py", *sys.argv[1:]]))


if __name__ == "__main__":
    main()
