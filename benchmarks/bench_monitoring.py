"""Monitoring on against off, same run: makespan ratio and the exporter's documents/s.

Each case runs in a fresh process with its own ctaoflow home: a warm-up run (not
counted), then ``--rounds`` (3 by default) pairs in ABBA order (off on, on off, off
on); "on" sends to a local endpoint that answers
as OpenSearch's bulk API does (tests/opensearch_endpoint.py, in this process: no
OpenSearch server can run here), through the real opensearch-py client.

- ``demo``: the demo production (60 inputs, 5 transformations) through Airflow's
  ``dag.test()`` (as ``ctaoflow demo`` runs it); "on" is the ``ctaoflow_opensearch``
  connection (``AIRFLOW_CONN_CTAOFLOW_OPENSEARCH``), so the task code turns
  monitoring on and starts its background sender, as in a deployment. Makespan: the
  ``dag.test()`` call.
- ``local_1000``: 1,000 ``sleep 1`` jobs (mc_simulation, chunks of 100) on the local
  backend with 50 slots, the 10 chunks driven at once by 10 threads, each the loop
  ``RunChunkOperator`` and its trigger run (submit, poll every second, collect what is
  final, submit again), without Airflow (no deployment is started by this script:
  ``bench_local_makespan`` does that); "on" is the outbox plus a background sender
  thread. Makespan: start to the last chunk final.

value = the median makespan with monitoring on of the case whose ratio (median on /
median off) is the larger; ``ratio_of_best`` (best on / best off) is given too, the
figure least disturbed by others on a shared machine. Target: ratio <= 1.05.
``docs_per_s``: a backlog of 50,000 outbox rows (after the 1,000-job run: per job its
Submitted and Done and its task's files, and the events, repeated; repeats are 409s) drained by one sender (``ctaoflow monitoring send``'s code) in bulk
requests of 2,000, rendering from the ledger included; the endpoint (Python's
http.server, checking every document against the strict mapping) shares the 2 cores,
so this is a lower bound of what the exporter sustains.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_monitoring.py
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._result import write_result  # noqa: E402

JOBS, SLOTS, CHUNK = 1000, 50, 100
BACKLOG = 50_000


def local_production() -> dict:
    return {
        "production": "monitoring_bench",
        "defaults": {"sites": ["local"], "storage": "LOCAL-DISK", "chunk_size": CHUNK,
                     "poll_interval": 1,
                     "resources": {"cores": 1, "memory": "100MB", "walltime": "10m"}},
        "transformations": [{
            "name": "sleep", "type": "mc_simulation", "runs": {"count": JOBS, "start": 1},
            "job": {"command": ["sh", "-c", 'sleep 1 && : > "$0"', "{output}"]},
            "outputs": [{"name": "run{run:06d}.out"}]}]}


def wait_for_empty_outbox(timeout: float = 120) -> float:
    from sqlalchemy import func, select

    from ctaoflow.engine.ledger import OutboxRow, session_factory

    started = time.monotonic()
    while time.monotonic() - started < timeout:
        with session_factory()() as session:
            if not session.scalar(select(func.count()).select_from(OutboxRow)):
                return time.monotonic() - started
        time.sleep(0.1)
    raise TimeoutError("the outbox did not empty")


# -- cases, each in its own process ----------------------------------------------------
def case_local(on: bool, url: str) -> dict:
    from ctaoflow.backends import make_backend
    from ctaoflow.catalog.embedded import EmbeddedCatalog
    from ctaoflow.engine import Engine, outbox
    from ctaoflow.monitoring.client import from_url
    from ctaoflow.monitoring.sender import start_background
    from ctaoflow.settings import home
    from ctaoflow.sites import load_sites
    from ctaoflow.spec.model import Production

    def run_chunk(engine: Engine, chunk: int) -> None:
        """What RunChunkOperator and its trigger do: submit, poll every second, collect
        what is final, submit again, until nothing is in flight."""
        result = engine.submit("sleep", chunk, revive=True)
        while result.in_flight:
            time.sleep(1)
            statuses = {s: make_backend(engine.sites[s]).poll(ids)
                        for s, ids in result.in_flight.items()}
            if any(st.state.final for by_id in statuses.values() for st in by_id.values()):
                engine.collect("sleep", chunk, statuses)
                result = engine.submit("sleep", chunk)

    outbox.enable(on)
    if on:
        start_background(from_url(url), interval=1.0)
    production = Production.model_validate(local_production())

    def new_engine() -> Engine:  # one per thread: the embedded catalog's SQLite is
        return Engine(production, EmbeddedCatalog(home() / "catalog"), load_sites(),
                      make_backend)  # bound to its thread (an Airflow worker's is too)

    engine = new_engine()
    started = time.monotonic()
    engine.sync()
    chunks = engine.prepare("sleep")
    threads = [threading.Thread(target=lambda c=c: run_chunk(new_engine(), c))
               for c in chunks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    engine.finalize("sleep")
    makespan = time.monotonic() - started
    summary = engine.summary()["sleep"]
    if summary["jobs"] != {"Done": JOBS}:
        raise RuntimeError(f"jobs: {summary['jobs']}")
    return {"makespan_s": makespan, "drained_after_s": wait_for_empty_outbox() if on else 0}


def case_demo(on: bool, url: str) -> dict:
    from operators.environment import migrate_metadata_db, use_airflow_home

    base = Path(os.environ["CTAOFLOW_HOME"])
    use_airflow_home(base)
    migrate_metadata_db()
    from airflow.utils.cli import get_bagged_dag

    from ctaoflow.catalog.embedded import EmbeddedCatalog
    from ctaoflow.demo.inputs import register_demo_inputs

    register_demo_inputs(EmbeddedCatalog(base / "catalog"))
    dag = get_bagged_dag(None, "demo")
    started = time.monotonic()
    run = dag.test()
    makespan = time.monotonic() - started
    if str(run.state) != "success":
        raise RuntimeError(f"demo run {run.state}")
    return {"makespan_s": makespan, "drained_after_s": wait_for_empty_outbox() if on else 0}


def case_throughput(url: str) -> dict:
    """Fill the outbox with ``BACKLOG`` rows of the 1,000-job ledger, then drain it."""
    from sqlalchemy import insert, select

    from ctaoflow.engine.ledger import EventRow, JobRow, OutboxRow, session_factory
    from ctaoflow.monitoring.client import from_url
    from ctaoflow.monitoring.sender import Sender

    sessions = session_factory()
    with sessions.begin() as session:
        rows = []  # what the run wrote: per job Submitted and Done, per task its files
        for job in session.scalars(select(JobRow)):
            rows += [{"kind": "job", "job_id": job.id, "task_id": job.task_id,
                      "status": status} for status in ("Submitted", "Done")]
            rows.append({"kind": "file", "transformation_id": 1, "task_id": job.task_id,
                         "status": "Processed", "count": 1})
        rows += [{"kind": "event", "event_id": e, "transformation_id": 1}
                 for e in session.scalars(select(EventRow.id))]
        rows = (rows * (BACKLOG // len(rows) + 1))[:BACKLOG]
        session.execute(insert(OutboxRow), rows)
    sender = Sender(from_url(url), sessions, batch=2000)
    started = time.monotonic()
    sender.drain()
    seconds = time.monotonic() - started
    if sender.backlog():
        raise RuntimeError(f"{sender.backlog()} rows left")
    return {"documents": BACKLOG, "seconds": seconds, "docs_per_s": BACKLOG / seconds}


def child(args: argparse.Namespace) -> None:
    on = args.on == "on"
    if args.case == "local":
        result = case_local(on, args.url)
        if on and args.throughput:
            result["throughput"] = case_throughput(args.url)
    else:
        result = case_demo(on, args.url)
    print("RESULT " + json.dumps(result), flush=True)
    os._exit(0)  # background sender and Airflow threads: no exit-time drain


# -- the parent: the endpoint, the rounds ----------------------------------------------
def run_case(case: str, on: bool, url: str, throughput: bool = False) -> dict:
    base = Path(tempfile.mkdtemp(prefix=f"ctaoflow-bench-mon-{case}-"))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CTAOFLOW_HOME": str(base / "home")}
    for name in ("CTAOFLOW_OPENSEARCH", "AIRFLOW_CONN_CTAOFLOW_OPENSEARCH"):
        env.pop(name, None)
    if case == "local":
        sites = base / "sites.yaml"
        sites.write_text(yaml.safe_dump({"sites": {"local": {
            "backend": "local", "slots": SLOTS, "storages": ["LOCAL-DISK"],
            "options": {"root": str(base / "spool")}}}}))
        env["CTAOFLOW_SITES"] = str(sites)
    elif on:
        host, port = url.removeprefix("http://").split(":")
        env["AIRFLOW_CONN_CTAOFLOW_OPENSEARCH"] = json.dumps(
            {"conn_type": "opensearch", "host": host, "port": int(port)})
    command = [sys.executable, __file__, "--child", case, "--on", "on" if on else "off",
               "--url", url] + (["--throughput"] if throughput else [])
    out = subprocess.run(command, env=env, capture_output=True, text=True, timeout=1800)
    lines = [line for line in out.stdout.splitlines() if line.startswith("RESULT ")]
    if out.returncode or not lines:
        raise RuntimeError(f"{case} {on}: exit {out.returncode}\n{out.stdout[-3000:]}\n"
                           f"{out.stderr[-3000:]}")
    result = json.loads(lines[-1].removeprefix("RESULT "))
    print(f"{case:10s} monitoring {'on ' if on else 'off'}: {result['makespan_s']:.2f} s",
          file=sys.stderr, flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", choices=["local", "demo"])
    parser.add_argument("--on", choices=["on", "off"])
    parser.add_argument("--url")
    parser.add_argument("--throughput", action="store_true")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if args.child:
        args.case = args.child
        return child(args)

    from tests.opensearch_endpoint import Endpoint

    endpoint = Endpoint()
    try:
        runs: dict[str, dict[bool, list[dict]]] = {"local": {False: [], True: []},
                                                    "demo": {False: [], True: []}}
        throughput = None
        for case in ("local", "demo"):
            run_case(case, False, endpoint.url)  # warm-up (caches, first imports): not counted
            for n in range(args.rounds):
                for on in ((False, True) if n % 2 == 0 else (True, False)):  # ABBA
                    result = run_case(case, on, endpoint.url,
                                      throughput=case == "local" and on and n == 0)
                    throughput = result.pop("throughput", throughput)
                    runs[case][on].append(result)
        documents = len(endpoint.all_docs())
    finally:
        endpoint.close()
    figures = {}
    for case, by in runs.items():
        off = statistics.median(r["makespan_s"] for r in by[False])
        on = statistics.median(r["makespan_s"] for r in by[True])
        figures[case] = {"off_s": [round(r["makespan_s"], 2) for r in by[False]],
                         "on_s": [round(r["makespan_s"], 2) for r in by[True]],
                         "median_off_s": round(off, 2), "median_on_s": round(on, 2),
                         "ratio": round(on / off, 3),
                         "ratio_of_best": round(min(r["makespan_s"] for r in by[True])
                                                / min(r["makespan_s"] for r in by[False]), 3),
                         "outbox_empty_after_s": [round(r["drained_after_s"], 2)
                                                  for r in by[True]]}
    worst = max(figures, key=lambda c: figures[c]["ratio"])
    write_result(
        "bench_monitoring", figures[worst]["median_on_s"], "s",
        baseline=figures[worst]["median_off_s"], ratio=figures[worst]["ratio"],
        target="ratio <= 1.05", worst_case=worst, cases=figures,
        docs_per_s=round(throughput["docs_per_s"]), throughput=throughput,
        documents_received=documents, rounds=args.rounds)


if __name__ == "__main__":
    main()
