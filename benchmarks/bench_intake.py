"""Intake of 200,000 catalog files by one transformation: ``Engine.prepare`` end to end.

``prepare`` queries the embedded catalog, adds the files the ledger does not know
(SQLite), groups the unused ones into tasks of 5 and assigns them: what a DAG run's
first task does. Baseline, same run: the same catalog query iterated and grouped by the
plugin in memory, nothing written. The ratio is the ledger's cost. Peak memory is the
process's maximum RSS growth during ``prepare``. The catalog entries are written
straight into the embedded catalog's table before timing (not counted).

    python benchmarks/bench_intake.py [--files 200000]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._result import write_result  # noqa: E402


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=200_000)
    args = parser.parse_args()
    os.environ["CTAOFLOW_HOME"] = tempfile.mkdtemp(prefix="ctaoflow-intake-")
    from ctaoflow.backends import make_backend
    from ctaoflow.catalog.embedded import EmbeddedCatalog
    from ctaoflow.spec.chaining import input_query
    from ctaoflow.engine import Engine
    from ctaoflow.engine.grouping import plugin
    from ctaoflow.sites import load_sites
    from ctaoflow.spec.model import Production

    production = Production.model_validate({
        "production": "intake", "defaults": {"sites": ["local"]},
        "transformations": [{"name": "process", "input": {"query": {"data_level": "DL0"}},
                             "grouping": {"group_size": 5}, "job": {"command": ["true"]},
                             "outputs": [{"name": "{task}.DL1"}]}]})
    catalog = EmbeddedCatalog(Path(os.environ["CTAOFLOW_HOME"]) / "catalog")
    with catalog.db:  # catalog entries only: no replica files needed to query them
        catalog.db.executemany("INSERT INTO files VALUES (?, ?, ?, ?)", (
            (f"/ctao/mc/dl0/run{i:07d}.simtel.zst", 10**9, json.dumps(
                {"data_level": "DL0", "run": i}), "LOCAL-DISK") for i in range(args.files)))
    t = production.transformations[0]

    started = time.perf_counter()
    groups = sum(1 for _ in plugin(t.grouping)(catalog.query(input_query(production, t)), False))
    baseline = time.perf_counter() - started

    engine = Engine(production, catalog, load_sites(), make_backend)
    engine.sync()
    before = rss_mb()
    started = time.perf_counter()
    chunks = engine.prepare("process")
    value = time.perf_counter() - started
    peak = rss_mb() - before
    started = time.perf_counter()
    assert engine.prepare("process") == chunks  # a second run takes in nothing new
    again = time.perf_counter() - started
    assert groups == args.files // 5
    write_result("intake_200k_files", round(value, 2), "s", baseline=round(baseline, 2),
                 ratio=round(value / baseline, 2), files=args.files, tasks=groups,
                 chunks=len(chunks), peak_rss_growth_mb=round(peak),
                 second_prepare_s=round(again, 2),
                 files_per_s=round(args.files / value))


if __name__ == "__main__":
    main()
