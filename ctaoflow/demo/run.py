"""``ctaoflow demo``: the demo production end to end through Airflow, no server needed.

A private Airflow home (SQLite) and ctaoflow home are made under ``--home``; the demo
inputs are registered in the embedded catalog; Airflow parses ``dags/`` and runs the
``demo`` DAG with ``dag.test()`` (the scheduler loop in-process, triggers inline),
jobs run on the local backend. Progress is printed from the ledger as it moves.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

from ctaoflow.sites import CONFIG_DIR

DEMO_SPEC = CONFIG_DIR / "productions" / "demo.yaml"


def run_demo(home: str | None = None, keep: bool = False) -> int:
    """Run the demo; returns 0 when every transformation completed."""
    base = Path(home or Path(os.environ.get("CTAOFLOW_HOME", Path.home() / ".ctaoflow")) / "demo")
    if base.exists() and not keep:
        shutil.rmtree(base)
    base.mkdir(parents=True, exist_ok=True)
    os.environ["CTAOFLOW_HOME"] = str(base)
    from operators.environment import migrate_metadata_db, use_airflow_home

    use_airflow_home(base)
    print(f"ctaoflow demo: state in {base}")
    started = time.monotonic()
    print("[1/4] preparing Airflow's metadata database ...", flush=True)
    migrate_metadata_db()

    from ctaoflow import settings
    from ctaoflow.catalog.embedded import EmbeddedCatalog
    from ctaoflow.demo.inputs import register_demo_inputs
    from ctaoflow.engine import summarize
    from ctaoflow.report import summary_table
    from ctaoflow.validation import load_production

    production = load_production(DEMO_SPEC)
    lfns = register_demo_inputs(EmbeddedCatalog(settings.home() / "catalog"))
    print(f"[2/4] registered {len(lfns)} DL0 input files in the embedded catalog", flush=True)

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
    complete = all("Completed" in s["status"] for s in summary.values())
    return 0 if complete and str(run.state) == "success" else 1


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
