"""The transformation graph of a production: order, text and Mermaid views."""

from __future__ import annotations

from ctaoflow.spec.model import Production, Transformation


def topological_order(production: Production) -> list[Transformation]:
    """Parents before children; ties keep the file's order (deterministic)."""
    done: list[str] = []
    pending = list(production.transformations)
    while pending:
        ready = [t for t in pending if all(p in done for p in t.all_parents)]
        if not ready:
            raise ValueError("cycle among " + ", ".join(t.name for t in pending))
        done.extend(t.name for t in ready)
        pending = [t for t in pending if t.name not in done]
    return [production.transformation(name) for name in done]


def as_text(production: Production) -> str:
    """One line per transformation: its type, grouping and parents."""
    lines = [f"production {production.production}"]
    for t in topological_order(production):
        group = t.grouping.plugin + (f"({t.grouping.group_size})"
                                     if t.grouping.plugin == "standard" else "")
        source = (f"<- {', '.join(t.all_parents)}" if t.all_parents
                  else f"<- runs {t.runs.start}..{t.runs.start + t.runs.count - 1}" if t.runs
                  else "<- catalog query")
        lines.append(f"  {t.name:<32} {t.type:<14} {group:<14} {source}")
    return "\n".join(lines)


def as_mermaid(production: Production) -> str:
    """A Mermaid flowchart: solid edges for input data, dotted for other dependencies."""
    lines = ["flowchart LR"]
    for t in topological_order(production):
        lines.append(f"  {t.name}[\"{t.name}<br/>{t.type}\"]")
        inputs = t.input.from_ if t.input else []
        for parent in t.all_parents:
            lines.append(f"  {parent} {'-->' if parent in inputs else '-.->'} {t.name}")
    return "\n".join(lines)
