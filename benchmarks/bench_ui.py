"""The Productions UI at CTAO's scale: 1,500 productions of 29 transformations and
1,000,000 files in a SQLite ledger (a file in a temporary folder), with a task and a job
per 20 files and two events per transformation.

Server time of the two pages, as the plugin's routes compute them (the ledger queries
and the HTML; the auth check is Airflow's and not counted): the productions list
(target < 1 s) and one production's page (target < 0.5 s). Baseline, same run: the bare
``SELECT production, status, COUNT(*) ... GROUP BY`` of the list's file counts. Each
figure is the median of 5 calls after one warm-up.

    python benchmarks/bench_ui.py [--productions 1500] [--files 1000000]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]

from benchmarks._result import write_result  # noqa: E402

TRANSFORMATIONS = 29
STATUSES = ["Processed"] * 90 + ["Unused"] * 5 + ["Assigned"] * 3 + ["Problematic", "MaxReset"]


def spec(name: str) -> dict:
    """A production of 29 transformations: 7 from the catalog, each feeding a chain."""
    chain = [{"name": "t00", "type": "processing", "input": {"query": {"data_level": "DL0"}},
              "job": {"command": ["true"]}, "outputs": [{"name": "o_{task}.h5"}]}]
    for i in range(1, TRANSFORMATIONS):
        parent = f"t{(i - 1) // 2:02d}"
        chain.append({"name": f"t{i:02d}", "type": "processing", "input": {"from": [parent]},
                      "job": {"command": ["true"]}, "outputs": [{"name": "o_{task}.h5"}]})
    return {"production": name, "transformations": chain}


def fill(url: str, productions: int, files: int) -> None:
    """Write the ledger with bulk inserts, as fast as SQLite takes them."""
    from sqlalchemy import insert

    from ctaoflow.engine.ledger import (EventRow, FileRow, JobRow, ProductionRow, TaskRow,
                                        TransformationRow, engine_for, now)
    engine, rng, at = engine_for(url), random.Random(7), now()
    per_t = files // (productions * TRANSFORMATIONS)
    with engine.begin() as db:
        db.execute(insert(ProductionRow), [
            {"id": p + 1, "name": f"prod{p:04d}", "status": "Active", "spec_hash": "x",
             "uid": f"{p:08x}"} for p in range(productions)])
        db.execute(insert(TransformationRow), [
            {"id": p * TRANSFORMATIONS + t + 1, "production_id": p + 1, "name": f"t{t:02d}",
             "type": "processing", "status": "Active"}
            for p in range(productions) for t in range(TRANSFORMATIONS)])
        tid_count = productions * TRANSFORMATIONS
        db.execute(insert(EventRow), [
            {"transformation_id": t + 1, "kind": kind, "message": kind, "at": at}
            for t in range(tid_count) for kind in ("created", "task_failed")])
        task_id, file_rows, task_rows, job_rows = 0, [], [], []
        for t in range(tid_count):
            for i in range(per_t):
                if i % 20 == 0:
                    task_id += 1
                    task_rows.append({"id": task_id, "transformation_id": t + 1,
                                      "index": i // 20, "chunk": i // 2000, "status": "Done"})
                    done = rng.random() < 0.97
                    job_rows.append({
                        "task_id": task_id, "attempt": 1, "name": f"j{task_id}",
                        "site": ("CSCS", "DESY-ZN", "FRASCATI", "PIC")[task_id % 4],
                        "backend_id": str(task_id), "workdir": "/w",
                        "status": "Done" if done else rng.choice(["Failed", "Submitted"]),
                        "failure_class": None if done else "application",
                        "log_tail": "" if done else "Traceback\nValueError: no events",
                        "submitted_at": at, "finished_at": at})
                file_rows.append({"transformation_id": t + 1, "lfn": f"/ctao/f/{t}/{i}",
                                  "size": 2_000_000_000, "status": rng.choice(STATUSES),
                                  "task_id": task_id})
            if len(file_rows) > 50_000:
                db.execute(insert(TaskRow), task_rows)
                db.execute(insert(JobRow), job_rows)
                db.execute(insert(FileRow), file_rows)
                file_rows, task_rows, job_rows = [], [], []
        db.execute(insert(TaskRow), task_rows)
        db.execute(insert(JobRow), job_rows)
        db.execute(insert(FileRow), file_rows)


def median_seconds(call, repeat: int = 5) -> float:
    call()  # warm-up: the engine, SQLite's page cache
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--productions", type=int, default=1500)
    parser.add_argument("--files", type=int, default=1_000_000)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-ui-"))
    os.environ["CTAOFLOW_HOME"] = str(folder)
    url = f"sqlite:///{folder / 'ledger.db'}"
    started = time.perf_counter()
    fill(url, args.productions, args.files)
    filled = time.perf_counter() - started

    from sqlalchemy import func, select

    from ctaoflow.engine.ledger import FileRow, TransformationRow, session_factory
    from ctaoflow.ops import overview, report
    from ctaoflow.spec.graph import topological_order
    from ctaoflow.spec.model import Production
    from ctaoflow_ui import pages

    sessions = session_factory(url)
    production = Production.model_validate(spec("prod0750"))

    def bare_counts() -> None:
        with sessions() as session:
            session.execute(select(TransformationRow.production_id, FileRow.status,
                                   func.count()).join(FileRow)
                            .group_by(TransformationRow.production_id, FileRow.status)).all()

    def list_page() -> None:
        pages.list_page("/ctaoflow", overview.production_lines(sessions))

    def production_page() -> None:
        built = report.build(production, "prod0750.yaml", sessions)
        order = [(t.name, list(t.all_parents)) for t in topological_order(production)]
        pages.production_page("/ctaoflow", production.production, built,
                              overview.transformation_jobs(production.production, sessions),
                              order, None, [], None, True, "token")

    baseline = median_seconds(bare_counts)
    listing = median_seconds(list_page)
    one = median_seconds(production_page)
    write_result("bench_ui", round(listing, 3), "s (productions list, server time)",
                 round(baseline, 3), round(listing / baseline, 2),
                 production_page_s=round(one, 3), production_page_ratio=round(one / baseline, 2),
                 productions=args.productions, transformations=TRANSFORMATIONS,
                 files=args.files, targets="list < 1 s, production < 0.5 s",
                 ledger_fill_s=round(filled, 1))


if __name__ == "__main__":
    main()
