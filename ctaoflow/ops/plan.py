"""``ctaoflow plan``: which input files would form which tasks, without running."""

from __future__ import annotations

from ctaoflow.catalog.base import Catalog
from ctaoflow.spec.chaining import input_query
from ctaoflow.spec.graph import topological_order
from ctaoflow.engine.grouping import plugin
from ctaoflow.spec.model import Production


def plan(production: Production, catalog: Catalog, limit: int = 20) -> str:
    """Tasks of each transformation whose inputs exist now; children are described."""
    lines = []
    for t in topological_order(production):
        if t.type == "mc_simulation" and t.runs:
            last = t.runs.start + t.runs.count - 1
            lines.append(f"{t.name}: {t.runs.count} jobs, runs {t.runs.start}..{last}")
            continue
        query = input_query(production, t)
        if t.input and t.input.from_:
            lines.append(f"{t.name}: reads the outputs of {', '.join(t.input.from_)} ({query})")
            continue
        files = list(catalog.query(query))
        groups = list(plugin(t.grouping)(iter(files), True))
        lines.append(f"{t.name}: {len(files)} input files -> {len(groups)} tasks ({query})")
        for index, group in enumerate(groups[:limit]):
            names = ", ".join(f.lfn.rsplit("/", 1)[-1] for f in group[:4])
            more = f" (+{len(group) - 4})" if len(group) > 4 else ""
            lines.append(f"  task {index:>5}: {len(group)} files  {names}{more}")
        if len(groups) > limit:
            lines.append(f"  ... {len(groups) - limit} more tasks")
    return "\n".join(lines)
