"""Building the DAGs of 50 productions of 29 transformations (the seeds' workflow), as
Airflow does: a DagBag parse of dags/productions.py over 50 YAML files, validation
included. The figure is Airflow's steady state, a re-parse with the validated specs
read from ctaoflow's spec cache; the first (cold) parse is reported beside it.
Baseline, same run: a DagBag parse of a file that builds the same 50 DAGs (groups,
task ids, edges) with plain EmptyOperators (Airflow's own cost for that many tasks).
Each parse runs in a fresh subprocess; time excludes importing Airflow; memory is the
subprocess's peak RSS."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._result import write_result  # noqa: E402

PARSE = """
import json, os, resource, sys, time
from operators.environment import use_airflow_home
use_airflow_home(sys.argv[2])
from airflow.dag_processing.dagbag import DagBag
import airflow.sdk, ctaoflow.spec.validation, operators.dag_builder  # imports are not the figure
started = time.perf_counter()
bag = DagBag(dag_folder=sys.argv[1])
seconds = time.perf_counter() - started
assert not bag.import_errors, bag.import_errors
print(json.dumps({"seconds": seconds, "dags": len(bag.dags),
                  "tasks": sum(len(d.tasks) for d in bag.dags.values()),
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

PLAIN = """
import datetime as dt
from airflow.sdk import DAG, TaskGroup
from airflow.providers.standard.operators.empty import EmptyOperator
GROUPS, STEPS, EDGES = {groups!r}, {steps!r}, {edges!r}
for p in range(50):
    with DAG(dag_id=f"plain_{{p}}", schedule=None, start_date=dt.datetime(2024, 1, 1)) as dag:
        groups = {{g: TaskGroup(group_id=g) for g in GROUPS}}
        tasks = {{full: EmptyOperator(task_id=task, task_group=groups.get(group))
                 for full, task, group in STEPS}}
        upstreams = {{}}
        for upstream, downstream in EDGES:
            upstreams.setdefault(downstream, []).append(tasks[upstream])
        for downstream, sources in upstreams.items():
            tasks[downstream].set_upstream(sources)
    globals()[dag.dag_id] = dag
"""


def plain_dags(seeds: Path) -> str:
    """A DAG file of 50 DAGs with the seeds production's groups, task ids and edges, every
    task an EmptyOperator (the mapped one too), built as dag_builder builds ours."""
    from ctaoflow.spec.layout import layout
    from ctaoflow.spec.validation import load_production

    plan = layout(load_production(seeds), str(seeds))
    return PLAIN.format(groups=list(plan.groups),
                        steps=[(s.full_id, s.task_id, s.group) for s in plan.steps],
                        edges=plan.edges)


def parse(folder: Path, env: dict, home: str) -> dict:
    out = subprocess.run([sys.executable, "-c", PARSE, str(folder), home], env=env, cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def folders(tmp: Path) -> tuple[Path, Path]:
    """Under ``tmp``: 50 copies of the seeds production, and the EmptyOperator DAG file."""
    productions = tmp / "productions"
    productions.mkdir()
    seeds = (ROOT / "benchmarks/seeds_29_transformations.yaml").read_text()
    name = next(line.split(":", 1)[1].strip() for line in seeds.splitlines()
                if line.startswith("production:"))
    for i in range(50):
        (productions / f"p{i:02d}.yaml").write_text(
            seeds.replace(f"production: {name}", f"production: seeds_{i:02d}", 1))
    plain = tmp / "plain"
    plain.mkdir()
    (plain / "plain_dags.py").write_text(plain_dags(ROOT / "benchmarks/seeds_29_transformations.yaml"))
    return productions, plain / "plain_dags.py"


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="ctaoflow-dagbuild-"))
    productions, plain = folders(tmp)
    env = {**os.environ, "CTAOFLOW_PRODUCTIONS": str(productions),
           "CTAOFLOW_HOME": str(tmp / "home")}
    cold = parse(ROOT / "dags" / "productions.py", env, str(tmp))
    ours = parse(ROOT / "dags" / "productions.py", env, str(tmp))
    base = parse(plain, env, str(tmp))
    assert ours["dags"] == 50 and base["dags"] == 50
    write_result("dag_build_50x29", round(ours["seconds"], 2), "s",
                 baseline=round(base["seconds"], 2),
                 ratio=round(ours["seconds"] / base["seconds"], 2),
                 cold_parse_s=round(cold["seconds"], 2),
                 tasks=ours["tasks"], peak_rss_mb=round(ours["rss_mb"]),
                 baseline_peak_rss_mb=round(base["rss_mb"]), target="< 1 s, < 300 MB")


if __name__ == "__main__":
    main()
