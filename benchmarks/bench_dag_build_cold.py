"""Building the DAGs of 50 productions of 29 transformations from a cold start: a DagBag
parse of dags/productions.py over 50 YAML files with an empty spec cache (a fresh
CTAOFLOW_HOME each time), so every spec is read, validated and laid out. Baseline, same
run: the same 50 DAGs of plain EmptyOperators (bench_dag_build's ``plain_dags``).
Each parse runs in a fresh subprocess, best of ``--repeat``; time excludes importing
Airflow. Target: ratio <= 1.3."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._result import write_result  # noqa: E402
from benchmarks.bench_dag_build import folders, parse  # noqa: E402


def main() -> None:
    args = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    args.add_argument("--repeat", type=int, default=3, help="parses of each, best kept")
    repeat = args.parse_args().repeat
    tmp = Path(tempfile.mkdtemp(prefix="ctaoflow-dagbuild-cold-"))
    productions, plain = folders(tmp)
    ours, base = [], []
    for run in range(repeat):  # alternated, so both see the same machine load
        env = {**os.environ, "CTAOFLOW_PRODUCTIONS": str(productions),
               "CTAOFLOW_HOME": str(tmp / f"home{run}")}  # empty: no spec cache
        ours.append(parse(ROOT / "dags" / "productions.py", env, str(tmp)))
        base.append(parse(plain, env, str(tmp)))
    assert all(r["dags"] == 50 for r in ours + base)
    best, baseline = min(r["seconds"] for r in ours), min(r["seconds"] for r in base)
    write_result("dag_build_cold_50x29", round(best, 2), "s", baseline=round(baseline, 2),
                 ratio=round(best / baseline, 2), repeat=repeat, tasks=ours[0]["tasks"],
                 runs_s=[round(r["seconds"], 2) for r in ours],
                 baseline_runs_s=[round(r["seconds"], 2) for r in base], target="ratio <= 1.3")


if __name__ == "__main__":
    main()
