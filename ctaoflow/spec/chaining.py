"""Data-driven chaining: what a transformation selects and what its outputs carry.

Every output is registered with ``production`` and ``transformation`` keys beside the
metadata it inherits and its own, so a child's ``from: parent`` selects exactly its
parents' outputs, narrowed by any extra conditions of its own query.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from ctaoflow.spec.query import Query, common_metadata
from ctaoflow.spec.model import Output, Production, Transformation

LINEAGE_KEYS = ("production", "transformation")


def input_query(production: Production, transformation: Transformation) -> Query:
    """The catalog query selecting ``transformation``'s input files."""
    query = Query.parse(transformation.input.query if transformation.input else None)
    parents = transformation.input.from_ if transformation.input else []
    if parents:
        lineage = {"production": production.production,
                   "transformation": parents[0] if len(parents) == 1 else sorted(parents)}
        query = query.and_(Query.parse(lineage))
    return query


def output_metadata(production: Production, transformation: Transformation, output: Output,
                    inputs: Iterable[Mapping[str, Any]], extra: Mapping[str, Any] = ()) -> dict:
    """An output's metadata: what all its inputs share, then common, own and lineage."""
    inherited = {k: v for k, v in common_metadata(inputs).items() if k not in LINEAGE_KEYS}
    return {**inherited, **production.common, **dict(extra), **output.metadata,
            "production": production.production, "transformation": transformation.name}


def static_output_metadata(production: Production, transformation: Transformation,
                           output: Output) -> dict[str, Any]:
    """What every output of ``transformation`` is known to carry before anything runs."""
    if transformation.input and transformation.input.from_:
        parents = [production.transformation(p) for p in transformation.input.from_]
        inherited = common_metadata(
            static_output_metadata(production, p, o) for p in parents for o in p.outputs)
        inherited.update(Query.parse(transformation.input.query).equalities())
    else:
        inherited = input_query(production, transformation).equalities()
    return output_metadata(production, transformation, output, [inherited])
