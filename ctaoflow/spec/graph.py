"""The transformation graph of a production: order, text and Mermaid views."""

from __future__ import annotations

from ctaoflow.spec.model import Production, Transformation


def topological_order(production: Production) -> list[Transformation]:
    """Parents before children, in waves: a transformation comes in the wave after its
    last parent's, and the file's order holds within a wave (deterministic). Linear in
    the number of links; raises ValueError on a cycle or an unknown parent."""
    position = {t.name: i for i, t in enumerate(production.transformations)}
    waiting = {t.name: len(t.all_parents) for t in production.transformations}
    children: dict[str, list[str]] = {}
    for t in production.transformations:
        for parent in t.all_parents:
            children.setdefault(parent, []).append(t.name)
    wave = {name: 0 for name, count in waiting.items() if count == 0}
    ready = list(wave)
    while ready:
        name = ready.pop()
        for child in children.get(name, []):
            wave[child] = max(wave.get(child, 0), wave[name] + 1)
            waiting[child] -= 1
            if waiting[child] == 0:
                ready.append(child)
    if len(wave) < len(waiting) or any(waiting.values()):
        raise ValueError("cycle among " + ", ".join(
            t.name for t in production.transformations if waiting[t.name]))
    order = sorted(wave, key=lambda name: (wave[name], position[name]))
    return [production.transformation(name) for name in order]


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
