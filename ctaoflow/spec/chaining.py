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
PROVENANCE_KEY = "inputs"  # an output's input LFNs, comma-separated (defaults.provenance)


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
    inherited = {k: v for k, v in common_metadata(inputs).items()
                 if k not in LINEAGE_KEYS and k != PROVENANCE_KEY}
    return {**inherited, **production.common, **dict(extra), **output.metadata,
            "production": production.production, "transformation": transformation.name}


class StaticMetadata:
    """What every output of a transformation is known to carry before anything runs,
    computed once per transformation, parents first, without recursion."""

    def __init__(self, production: Production) -> None:
        self.production = production
        self.inherited: dict[str, dict[str, Any]] = {}

    def output(self, transformation: Transformation, output: Output) -> dict[str, Any]:
        """The metadata every file of ``output`` carries; ``transformation``'s ancestry
        must be acyclic (ValueError otherwise)."""
        inherited = self.inherited_by(transformation.name)
        return output_metadata(self.production, transformation, output, [inherited])

    def inherited_by(self, name: str) -> dict[str, Any]:
        """What ``name``'s outputs inherit from its inputs, ancestors computed first."""
        stack, visiting = [name], {name}
        while stack:
            current = self.production.transformation(stack[-1])
            missing = [p for p in _input_parents(current) if p not in self.inherited]
            if any(p in visiting for p in missing):
                raise ValueError(f"the inputs of {current.name!r} form a cycle")
            if missing:
                stack.extend(missing)
                visiting.update(missing)
                continue
            self.inherited[current.name] = self._inherited(current)
            visiting.discard(stack.pop())
        return self.inherited[name]

    def _inherited(self, transformation: Transformation) -> dict[str, Any]:
        parents = [self.production.transformation(p) for p in _input_parents(transformation)]
        if not parents:
            return input_query(self.production, transformation).equalities()
        inherited = common_metadata(
            output_metadata(self.production, p, o, [self.inherited[p.name]])
            for p in parents for o in p.outputs)
        inherited.update(Query.parse(transformation.input.query if transformation.input
                                     else None).equalities())
        return inherited


def _input_parents(transformation: Transformation) -> list[str]:
    return list(transformation.input.from_) if transformation.input else []
