"""Metadata queries: key/value conditions AND-ed, as in DIRAC and CTADIRAC.

A query is written as a mapping: a scalar means equality, a list means ``in``, and a
mapping of operators allows several conditions per key
(``zenith: {'>=': 20, '<=': 40}``). Operators: ``= != > < >= <= in nin``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping

OPERATORS = ("=", "!=", ">", "<", ">=", "<=", "in", "nin")
Scalar = str | int | float | bool


@dataclass(frozen=True, order=True)
class Condition:
    key: str
    op: str
    value: Any  # a scalar, or a tuple of scalars for in/nin

    def matches(self, metadata: Mapping[str, Any]) -> bool:
        """As a catalog compares: values of different kinds (number, string, boolean)
        are never equal nor ordered, and a missing key fails all but != and nin."""
        if self.key not in metadata:
            return self.op in ("!=", "nin")
        actual = metadata[self.key]
        if self.op in ("in", "nin"):
            found = any(_same_kind(actual, v) and actual == v for v in self.value)
            return found == (self.op == "in")
        if not _same_kind(actual, self.value):
            return self.op == "!="
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        if self.op == ">":
            return actual > self.value
        if self.op == "<":
            return actual < self.value
        if self.op == ">=":
            return actual >= self.value
        if self.op == "<=":
            return actual <= self.value
        raise ValueError(f"unknown operator {self.op!r}")


@dataclass(frozen=True)
class Query:
    """An AND of conditions; the empty query matches everything."""

    conditions: tuple[Condition, ...] = ()

    @classmethod
    def parse(cls, spec: Mapping[str, Any] | None) -> "Query":
        """Build a query from its YAML form; raises ValueError naming the bad key."""
        conditions: list[Condition] = []
        for key, value in (spec or {}).items():
            if isinstance(value, Mapping):
                if not value:
                    raise ValueError(f"{key}: empty operator mapping; write e.g. {{'>=': 20}}")
                for op, operand in value.items():
                    conditions.append(_condition(key, str(op), operand))
            elif isinstance(value, (list, tuple)):
                conditions.append(_condition(key, "in", value))
            else:
                conditions.append(_condition(key, "=", value))
        return cls(tuple(sorted(conditions, key=lambda c: (c.key, OPERATORS.index(c.op)))))

    def matches(self, metadata: Mapping[str, Any]) -> bool:
        return all(c.matches(metadata) for c in self.conditions)

    def and_(self, other: "Query") -> "Query":
        return Query(tuple(sorted(set(self.conditions) | set(other.conditions),
                                  key=lambda c: (c.key, OPERATORS.index(c.op)))))

    def keys(self) -> set[str]:
        return {c.key for c in self.conditions}

    def equalities(self) -> dict[str, Any]:
        """The keys fixed to one value: what every matching file is known to carry."""
        return {c.key: c.value for c in self.conditions if c.op == "="}

    def to_dict(self) -> dict[str, Any]:
        """The canonical YAML/JSON form (round-trips through ``parse``)."""
        out: dict[str, Any] = {}
        for c in self.conditions:
            value = list(c.value) if isinstance(c.value, tuple) else c.value
            out.setdefault(c.key, {})[c.op] = value
        return {k: (v["="] if list(v) == ["="] else v) for k, v in out.items()}

    def conflicts_with(self, metadata: Mapping[str, Any]) -> list[Condition]:
        """Conditions that no file carrying ``metadata`` can satisfy."""
        return [c for c in self.conditions if c.key in metadata and not c.matches(metadata)]

    def __str__(self) -> str:
        return " AND ".join(f"{c.key} {c.op} {c.value!r}" for c in self.conditions) or "(all)"


def _condition(key: str, op: str, operand: Any) -> Condition:
    if op not in OPERATORS:
        raise ValueError(f"{key}: unknown operator {op!r}; use one of {' '.join(OPERATORS)}")
    if op in ("in", "nin"):
        if not isinstance(operand, (list, tuple)) or not operand:
            raise ValueError(f"{key}: '{op}' needs a non-empty list, e.g. {{'{op}': [a, b]}}")
        if not all(_is_scalar(v) for v in operand):
            raise ValueError(f"{key}: '{op}' list items must be strings or numbers")
        return Condition(key, op, tuple(operand))
    if not _is_scalar(operand):
        raise ValueError(f"{key}: '{op}' needs a string or a number, not {type(operand).__name__}")
    return Condition(key, op, operand)


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    return "number" if isinstance(value, (int, float)) else type(value).__name__


def _same_kind(a: Any, b: Any) -> bool:
    return _kind(a) == _kind(b)


def _is_scalar(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool))


def common_metadata(items: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The key/values shared by every mapping: what outputs inherit from their inputs."""
    iterator = iter(items)
    first = next(iterator, None)
    if first is None:
        return {}
    shared = dict(first)
    for meta in iterator:
        for key in [k for k, v in shared.items() if meta.get(k, _MISSING) != v]:
            del shared[key]
    return shared


_MISSING = object()
