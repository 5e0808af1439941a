"""Productions chained through the catalog: which transformation makes what a query asks for.

A transformation whose input is a catalog query (no ``from:``) may read another
production's outputs. Its producer is found by matching the query against the metadata
every output of a known production is known to carry before anything runs
(``StaticMetadata``): a transformation produces what a query asks for when every
condition of the query holds on that metadata (a key it does not fix is not known to
match).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from ctaoflow.spec.chaining import StaticMetadata
from ctaoflow.spec.model import Production, Transformation
from ctaoflow.spec.query import Query


@dataclass(frozen=True)
class Made:
    """What one transformation's outputs carry: one metadata mapping per output."""

    production: str
    transformation: str
    outputs: tuple[dict[str, Any], ...]

    def makes(self, query: Query) -> bool:
        return any(query.keys() <= meta.keys() and query.matches(meta) for meta in self.outputs)


def made_by(production: Production) -> list[Made]:
    """What each transformation of ``production`` makes (a cyclic one is left out)."""
    static, made = StaticMetadata(production), []
    for t in production.transformations:
        try:
            outputs = tuple(static.output(t, o) for o in t.outputs)
        except ValueError:
            continue
        made.append(Made(production.production, t.name, outputs))
    return made


def producers(query: Query, known: Iterable[Made], but: tuple[str, str] | None = None
              ) -> list[tuple[str, str]]:
    """(production, transformation) of each known transformation that makes what ``query``
    asks for, except ``but`` (the asker itself). The empty query asks for nothing known."""
    if not query.conditions:
        return []
    return [(m.production, m.transformation) for m in known
            if m.makes(query) and (m.production, m.transformation) != but]


def catalog_queries(t: Transformation) -> Iterator[tuple[str, Query]]:
    """The catalog queries of ``t`` that may read other productions' outputs: its input
    query when it has no ``from:`` (``input``), and each side input given as a query."""
    if t.type != "mc_simulation" and t.input is not None and not t.input.from_:
        yield "input", Query.parse(t.input.query)
    for placeholder, source in t.job.side_inputs.items():
        if not isinstance(source, str):
            yield f"side input {placeholder}", Query.parse(source)


def notes(productions: Iterable[Production], others: Iterable[Production] = ()) -> list[str]:
    """One line per catalog query of ``productions`` that none of them nor ``others``
    makes (raw data, or files registered by hand): a note, not an error."""
    productions = list(productions)
    known = [m for p in [*productions, *others] for m in made_by(p)]
    lines = []
    for p in productions:
        for t in p.transformations:
            for what, query in catalog_queries(t):
                if not producers(query, known, (p.production, t.name)):
                    lines.append(f"NOTE: {p.production}: {t.name}: no known production makes "
                                 f"what its {what} asks for ({query}): raw data or files "
                                 "registered by hand; it flushes at every run")
    return lines
