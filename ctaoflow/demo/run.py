"""``ctaoflow demo``: the demo production end to end through Airflow.

A private Airflow home (SQLite) and ctaoflow home are made under ``--home``; the demo
inputs are registered in the catalog; Airflow parses ``dags/`` and runs the ``demo``
DAG with ``dag.test()`` (the scheduler loop in-process, triggers inline). Progress is
printed from the ledger as it moves.

One demo at a time per home: a demo holds a lock on ``.<home name>.lock`` beside its
home (not inside it: the home is wiped) for as long as it runs.

Default: the embedded catalog and the local backend, no server needed. ``--full``:
starts the project's Rucio server and Slurm (services/), registers the inputs in
Rucio through an Airflow connection, and runs every job on Slurm. Each ``--full`` run
is its own production (``demo_<tag>``) whose inputs live under their own path and
carry ``demo_run: <tag>``, so files already in the shared Rucio server are left out.
The services stay up for the next run; the demo ends by saying how to stop them.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import IO, Any

from ctaoflow.settings import CONFIG_DIR

DEMO_SPEC = CONFIG_DIR / "productions" / "demo.yaml"
SERVICES = CONFIG_DIR.parent / "services"
# what services/<name>/start.sh leaves running, by name
LEFT_RUNNING = {"rucio": "the Rucio server and its PostgreSQL",
                "slurm": "Slurm (munged, slurmctld, slurmd)"}


def run_demo(home: str | None = None, keep: bool = False, full: bool = False) -> int:
    """Run the demo; returns 0 when every transformation completed."""
    default = Path(os.environ.get("CTAOFLOW_HOME", Path.home() / ".ctaoflow")) / "demo"
    base = Path(home or default).absolute()
    lock = _lock(base)  # held as long as this reference lives
    if lock is None:
        return 1
    if base.exists() and not keep:
        shutil.rmtree(base)
    base.mkdir(parents=True, exist_ok=True)
    os.environ["CTAOFLOW_HOME"] = str(base)
    from operators.environment import migrate_metadata_db, use_airflow_home

    use_airflow_home(base)
    print(f"ctaoflow demo: state in {base}", flush=True)
    started = time.monotonic()
    print("[1/4] preparing Airflow's metadata database ...", flush=True)
    migrate_metadata_db()

    from ctaoflow.demo.inputs import register_demo_inputs
    from ctaoflow.engine import summarize
    from ctaoflow.ops.report import summary_table
    from ctaoflow.spec.validation import load_production
    from operators.hooks.production import ProductionHook

    spec, inputs = _full_setup(base) if full else (DEMO_SPEC, {})
    production = load_production(spec)
    catalog = ProductionHook(str(spec)).catalog()
    lfns = register_demo_inputs(catalog, **inputs)
    where = f"Rucio catalog under {inputs['folder']}" if full else "embedded catalog"
    print(f"[2/4] registered {len(lfns)} DL0 input files in the {where}", flush=True)

    from airflow.utils.cli import get_bagged_dag

    dag = get_bagged_dag(None, production.production)
    print(f"[3/4] Airflow parsed DAG {dag.dag_id!r}: {len(dag.task_dict)} tasks in "
          f"{len(production.transformations)} transformation groups; running it", flush=True)
    stop = threading.Event()
    watcher = threading.Thread(target=_progress, args=(production, stop), daemon=True)
    watcher.start()
    run = dag.test()
    stop.set()
    watcher.join()
    summary = summarize(production)
    print(f"[4/4] DAG run {run.state} in {time.monotonic() - started:.0f} s\n")
    print(summary_table(summary))
    if full:
        print("\nLeft running for the next run:")
        for service, what in LEFT_RUNNING.items():
            print(f"  {what}; stop with {SERVICES / service / 'stop.sh'}")
    complete = all("Completed" in s["status"] for s in summary.values())
    return 0 if complete and str(run.state) == "success" else 1


def _lock(base: Path) -> IO[str] | None:
    """Lock ``base`` for this process, or say in one line who holds it and return None.

    The lock file sits beside ``base``, which a demo wipes; the lock goes with the
    process, however it ends.
    """
    base.parent.mkdir(parents=True, exist_ok=True)
    handle = open(base.parent / f".{base.name}.lock", "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        pid = handle.read().strip()
        handle.close()
        holder = f" (pid {pid})" if pid else ""
        print(f"ctaoflow demo: a demo is already running in {base}{holder}; wait for it to "
              "end, or pass --home DIR to run another one elsewhere", file=sys.stderr)
        return None
    handle.truncate(0)
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle


def _full_setup(base: Path) -> tuple[Path, dict[str, Any]]:
    """Start Rucio and Slurm; point the catalog connection and the sites at them.

    Returns this run's spec and the arguments that register its own inputs.
    """
    import json
    import subprocess

    import yaml

    for service in LEFT_RUNNING:
        print(f"      starting {service} (services/{service}/start.sh) ...", flush=True)
        done = subprocess.run(["bash", str(SERVICES / service / "start.sh")], check=False)
        if done.returncode:
            raise OSError(f"services/{service}/start.sh failed (exit {done.returncode}); "
                          "see its output above")
    settings = subprocess.run(
        ["bash", "-c", f"source {SERVICES / 'rucio' / 'env.sh'}; "
                       'echo "$RUCIO_PORT $RUCIO_USERNAME $RUCIO_PASSWORD"'],
        check=True, capture_output=True, text=True).stdout.split()
    port, username, password = settings
    os.environ["AIRFLOW_CONN_CTAOFLOW_CATALOG"] = json.dumps({
        "conn_type": "rucio", "host": f"http://127.0.0.1:{port}", "login": username,
        "password": password})  # account root, userpass: RucioHook's defaults
    sites = base / "sites.yaml"
    sites.write_text(yaml.safe_dump({"sites": {"slurm": {
        "backend": "slurm", "queue": "debug", "slots": 32, "storages": ["LOCAL-DISK"]}}}))
    os.environ["CTAOFLOW_SITES"] = str(sites)
    tag = uuid.uuid4().hex[:8]
    production = yaml.safe_load(DEMO_SPEC.read_text())
    production["production"] = f"demo_{tag}"
    production["defaults"]["sites"] = ["slurm"]
    for transformation in production["transformations"]:
        if "from" not in transformation["input"]:
            transformation["input"]["query"]["demo_run"] = tag
    folder = base / "productions"
    folder.mkdir(exist_ok=True)
    spec = folder / "demo.yaml"
    spec.write_text(yaml.safe_dump(production, sort_keys=False))
    os.environ["CTAOFLOW_PRODUCTIONS"] = str(folder)
    return spec, {"folder": f"/ctao/ctao/demo/{tag}/DL0", "extra": {"demo_run": tag}}


def _progress(production, stop: threading.Event) -> None:
    """Print one line whenever the ledger's task counts change."""
    from ctaoflow.engine import summarize

    last = ""
    while not stop.wait(1.0):
        try:
            summary = summarize(production)
        except Exception:  # the ledger may not exist yet
            continue
        parts = []
        for name, counts in summary.items():
            tasks = counts["tasks"]
            total = sum(tasks.values())
            if total:
                parts.append(f"{name} {tasks.get('Done', 0)}/{total}")
        line = "  progress (tasks done): " + ", ".join(parts)
        if parts and line != last:
            print(line, flush=True)
            last = line
