"""Upstream productions in the ledger: who makes what a transformation reads by query.

A transformation that reads another production's outputs through a catalog query (no
``from:``) waits for that producer as it would for a parent: its partial groups are
flushed, and it completes, only once every producing transformation is Completed; its
tasks are not created before the makers of its side inputs (its models) are complete.
Producers are found among the productions of the ledger, by their applied spec.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from ctaoflow.engine.ledger import (
    ProductionRow,
    SpecVersionRow,
    TransformationRow,
    TransformationStatus,
)
from ctaoflow.spec.model import Production, Transformation
from ctaoflow.spec.producers import Made, catalog_queries, made_by, producers

_MADE: dict[str, tuple[Made, ...]] = {}  # spec hash -> what its transformations make


def _made(spec: str) -> tuple[Made, ...]:
    try:
        return tuple(made_by(Production.model_validate_json(spec)))
    except ValueError:  # a spec of an older ctaoflow that no longer parses
        return ()


def known(session: Session) -> list[Made]:
    """What every production of the ledger makes, by its applied spec (each spec version
    read and parsed once per process)."""
    hashes = set(session.scalars(select(ProductionRow.spec_hash).distinct()))
    if missing := hashes - _MADE.keys():
        for spec_hash, spec in session.execute(
                select(SpecVersionRow.spec_hash, SpecVersionRow.spec)
                .where(SpecVersionRow.spec_hash.in_(missing))):
            _MADE[spec_hash] = _made(spec)
    return [m for h in hashes for m in _MADE.get(h, ())]


def upstream(session: Session, row: TransformationRow, t: Transformation,
             side_inputs: bool = False) -> dict[tuple[str, str], str]:
    """(production, transformation) -> ledger status of each producer of ``t``'s input
    query (or, with ``side_inputs``, of its side inputs: found by query, or named)."""
    own = session.scalar(select(ProductionRow.name).where(ProductionRow.id == row.production_id))
    made = known(session)
    found = {p for what, query in catalog_queries(t) if (what != "input") == side_inputs
             for p in producers(query, made, (own, t.name))}
    if side_inputs:  # the makers named in this production too
        found |= {(own, s) for s in t.job.side_inputs.values() if isinstance(s, str)}
    if not found:
        return {}
    statuses = dict.fromkeys(found, "New")
    for production, name, status in session.execute(
            select(ProductionRow.name, TransformationRow.name, TransformationRow.status)
            .join(ProductionRow)
            .where(ProductionRow.name.in_({p for p, _ in found}))):
        if (production, name) in statuses:
            statuses[(production, name)] = status
    return statuses


def waiting_for(statuses: dict[tuple[str, str], str]) -> list[str]:
    """The producers not Completed, as ``production/transformation``."""
    return sorted(f"{p}/{t}" for (p, t), s in statuses.items()
                  if s != TransformationStatus.COMPLETED.value)
