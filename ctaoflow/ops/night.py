"""``ctaoflow night``: one night of a nightly production as a run x stage table.

Like lstosa's sequencer table: for each run of the night, each stage (transformation)
shows its input files of that run processed / taken in. The same data as JSON feeds the
UI.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import func, select

from ctaoflow.engine.ledger import (FileRow, FileStatus, NightRow, ProductionRow,
                                    TransformationRow, session_factory)
from ctaoflow.spec.graph import topological_order
from ctaoflow.spec.model import Production
from ctaoflow.spec.nights import for_night, night_key


def night_status(production: Production, night: str,
                 ledger_url: str | None = None) -> dict[str, Any]:
    """The night's raw-data status and, per run and stage, processed / total input files."""
    assert production.nightly is not None
    of_night = for_night(production, night)
    stages = [t.name for t in topological_order(of_night)]
    status: dict[str, Any] = {
        "production": production.production, "night": night_key(night),
        "version": production.nightly.version, "ledger_name": of_night.production,
        "data": "New", "raw_files": 0, "missing": [], "stages": stages, "runs": {},
        "transformations": {}}
    run = FileRow.meta[production.nightly.run_key].as_string()
    with session_factory(ledger_url)() as session:
        row = session.scalar(select(ProductionRow).filter_by(name=of_night.production))
        if row is None:
            return status
        nights = session.get(NightRow, row.id)
        if nights is not None:
            status.update(data=nights.status, raw_files=nights.raw_files,
                          missing=list(nights.missing))
        runs: dict[str, dict[str, dict[str, int]]] = defaultdict(dict)
        processed = func.count().filter(FileRow.status == FileStatus.PROCESSED.value)
        for name, value, done, total in session.execute(
                select(TransformationRow.name, run, processed, func.count())
                .join(FileRow, FileRow.transformation_id == TransformationRow.id)
                .where(TransformationRow.production_id == row.id)
                .group_by(TransformationRow.name, run)):
            runs[str(value)][name] = {"done": done, "total": total}
        status["runs"] = {r: runs[r] for r in sorted(runs, key=_run_order)}
        status["transformations"] = dict(session.execute(
            select(TransformationRow.name, TransformationRow.status)
            .where(TransformationRow.production_id == row.id)).all())
    return status


def _run_order(run: str) -> tuple[int, str]:
    return (0, f"{int(run):012d}") if run.isdigit() else (1, run)


def as_text(status: dict[str, Any]) -> str:
    """The run x stage table, lstosa style, under a line on the night's data."""
    head = (f"night {status['night']} of {status['production']} ({status['version']}): raw data "
            f"{status['data']}, {status['raw_files']} file(s)")
    lines = [head] + [f"  missing: {m}" for m in status["missing"]]
    stages = status["stages"]
    rows = [["run", *stages]]
    for run, cells in status["runs"].items():
        rows.append([run, *(f"{cells[s]['done']}/{cells[s]['total']}" if s in cells else "-"
                            for s in stages)])
    rows.append(["status", *(status["transformations"].get(s, "New") for s in stages)])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines += ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows]
    return "\n".join(lines)
