"""The versions of a production's spec in the ledger, and the judgment of a change in flight.

The first sync records the spec as version 1; a ledger of an earlier ctaoflow (a
production without history) takes the spec of its next sync as version 1. A later
spec that differs from the last applied version is judged against the work in the
ledger: a change that would redo or orphan work (a transformation removed or renamed
while it has files, an input query or output naming changed under processed files, an
``all`` group that already ran re-formed from new files alone) is refused with one
line; any other change is applied as a new version. ``accept`` applies a refused change
on purpose and records why.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any, Iterable

from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ctaoflow.engine.ledger import (FileRow, FileStatus, ProductionRow, SpecVersionRow, TaskRow,
                                    TaskStatus, TransformationRow)
from ctaoflow.spec.chaining import StaticMetadata, input_query
from ctaoflow.spec.model import Production, Transformation

FIRST, ADOPTED, HARMLESS, ACCEPTED = "first", "adopted", "harmless", "accepted"
OUTPUT_NAMING = ("lfn_base", "scope", "common")  # production keys that name every output


class SpecChangeRefused(ValueError):
    """A spec change that would redo or orphan work; ``line`` says how to apply it."""

    def __init__(self, production: str, version: int, refused: list[str]) -> None:
        self.production, self.version, self.refused = production, version, refused
        super().__init__(self.line())

    def line(self, spec_path: str = "SPEC.yaml") -> str:
        return (f"{self.production}: spec change refused against ledger version "
                f"{self.version}: {'; '.join(self.refused)}; to apply it on purpose: "
                f"ctaoflow accept {spec_path} --reason TEXT, or give the production a new name")


def canonical(production: Production) -> tuple[str, str]:
    """The spec's canonical JSON and its SHA-256."""
    text = json.dumps(production.model_dump(mode="json", by_alias=True), sort_keys=True)
    return text, hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Work:
    """What the ledger holds for one transformation."""

    files: int = 0
    processed: int = 0
    tasks: int = 0  # not failed: run, running or to run
    done: int = 0

    def __str__(self) -> str:
        parts = [f"{self.files} file(s)"] if self.files else []
        return " and ".join(parts + [f"{self.tasks} task(s)"] if self.tasks else parts)


def judge(old: Production, new: Production, work: dict[str, Work]) -> tuple[list[str], list[str]]:
    """The changes from ``old`` to ``new``: (refused, harmless), one phrase each."""
    refused: list[str] = []
    harmless: list[str] = []
    done = sum(w.done for w in work.values())
    for path in _paths(_top(old), _top(new)):
        if path.split(".")[0] in OUTPUT_NAMING and done:
            refused.append(f"{path} changed, which names the outputs of {done} done task(s)")
        else:
            harmless.append(f"{path} changed")
    before = {t.name: t for t in old.transformations}
    after = {t.name: t for t in new.transformations}
    renamed = _renamed(before, after)
    for name in before:
        if name in after:
            continue
        w = work.get(name, Work())
        what = f"{name} renamed to {renamed[name]}" if name in renamed else f"{name} removed"
        if w.files or w.tasks:
            fate = "done again" if name in renamed else "orphaned"
            refused.append(f"{what} while it has {w}, which would be {fate}")
        else:
            harmless.append(f"{what} (it had no files)")
    harmless += [f"new transformation {name}" for name in after
                 if name not in before and name not in renamed.values()]
    for name, t in after.items():
        if name in before:
            r, h = _judge_one(old, before[name], new, t, work.get(name, Work()))
            refused += r
            harmless += h
        refused += _reformed(old, new, t, work.get(name, Work()))
    return refused, harmless


def _judge_one(old: Production, o: Transformation, new: Production, t: Transformation,
               w: Work) -> tuple[list[str], list[str]]:
    refused: list[str] = []
    settled: set[str] = set()
    if o.type != t.type and (w.files or w.tasks):
        refused.append(f"{t.name}: type changed from {o.type} to {t.type} while it has {w}")
        settled.add("type")
    was, now = input_query(old, o), input_query(new, t)
    if was.to_dict() != now.to_dict() and (w.processed or w.done):
        refused.append(f"{t.name}: input query changed from `{was}` to `{now}` under "
                       f"{max(w.processed, w.done)} processed file(s)")
        settled.add("input")
    if _dump(o)["outputs"] != _dump(t)["outputs"] and w.done:
        refused.append(f"{t.name}: outputs changed, which name the outputs of "
                       f"{w.done} done task(s)")
        settled.add("outputs")
    if o.grouping.plugin != "all" and t.grouping.plugin == "all" and w.tasks:
        refused.append(f"{t.name}: grouping changed to all after {w.tasks} task(s) ran, "
                       "which would group the remaining files alone")
        settled.add("grouping")
    harmless = [f"{t.name}: {path} changed" for path in _paths(_dump(o), _dump(t))
                if path.split(".")[0] not in settled]
    return refused, harmless


def _reformed(old: Production, new: Production, t: Transformation, w: Work) -> list[str]:
    """An ``all`` group that already ran, fed by a new or changed transformation upstream."""
    if t.grouping.plugin != "all" or not w.tasks:
        return []
    before = {o.name: o for o in old.transformations}
    changed = sorted(
        name for name in _upstream(new, t)
        if name not in before or input_query(old, before[name]).to_dict()
        != input_query(new, new.transformation(name)).to_dict()
        or _dump(before[name])["outputs"] != _dump(new.transformation(name))["outputs"])
    if not changed:
        return []
    return [f"{t.name}: its all group already ran, and new or changed transformations "
            f"upstream ({', '.join(changed)}) would form a group of their new files alone"]


def _upstream(production: Production, t: Transformation) -> set[str]:
    """The transformations whose outputs can reach ``t``'s input, directly or not."""
    static = StaticMetadata(production)
    outputs = {o.name: [static.output(o, out) for out in o.outputs]
               for o in production.transformations}
    seen: set[str] = set()
    todo = [t]
    while todo:
        current = todo.pop()
        if current.input is None:
            continue
        query = input_query(production, current)
        for other in production.transformations:
            if other.name not in seen and other.name != current.name and any(
                    query.matches(metadata) for metadata in outputs[other.name]):
                seen.add(other.name)
                todo.append(other)
    return seen


def _renamed(before: dict[str, Transformation],
             after: dict[str, Transformation]) -> dict[str, str]:
    """Old name -> new name, for a removed transformation whose body reappears."""
    def body(t: Transformation) -> dict[str, Any]:
        return {k: v for k, v in _dump(t).items() if k not in ("name", "description")}

    added = [name for name in after if name not in before]
    renamed: dict[str, str] = {}
    for name in before:
        if name not in after:
            match = [a for a in added if a not in renamed.values()
                     and body(after[a]) == body(before[name])]
            if match:
                renamed[name] = match[0]
    return renamed


def _dump(t: Transformation) -> dict[str, Any]:
    return t.model_dump(mode="json", by_alias=True)


def _top(production: Production) -> dict[str, Any]:
    return production.model_dump(mode="json", by_alias=True, exclude={"transformations"})


def _paths(a: Any, b: Any, prefix: str = "", depth: int = 2) -> list[str]:
    """The keys, two levels deep, where ``a`` and ``b`` differ."""
    if a == b:
        return []
    if depth == 0 or not isinstance(a, dict) or not isinstance(b, dict):
        return [prefix]
    return [path for key in sorted(set(a) | set(b))
            for path in _paths(a.get(key), b.get(key), f"{prefix}.{key}" if prefix else key,
                               depth - 1)]


def work(session: Session, production_id: int) -> dict[str, Work]:
    """Files, processed files, live tasks and done tasks of each transformation."""
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for name, status, n in _by_status(session, production_id, FileRow):
        counts[name]["files"] += n
        counts[name]["processed"] += n if status == FileStatus.PROCESSED.value else 0
    for name, status, n in _by_status(session, production_id, TaskRow):
        counts[name]["tasks"] += n if status != TaskStatus.FAILED.value else 0
        counts[name]["done"] += n if status == TaskStatus.DONE.value else 0
    return {name: Work(**c) for name, c in counts.items()}


def _by_status(session: Session, production_id: int,
               table: type[FileRow] | type[TaskRow]) -> Iterable[tuple[str, str, int]]:
    """(transformation, status, rows) of ``table`` in the production."""
    return session.execute(
        select(TransformationRow.name, table.status, func.count())
        .join(table, table.transformation_id == TransformationRow.id)
        .where(TransformationRow.production_id == production_id)
        .group_by(TransformationRow.name, table.status))


def latest(session: Session, production_id: int) -> SpecVersionRow | None:
    return session.scalar(select(SpecVersionRow)
                          .where(SpecVersionRow.production_id == production_id)
                          .order_by(SpecVersionRow.version.desc()).limit(1))


def history(session: Session, production_id: int) -> list[SpecVersionRow]:
    return list(session.scalars(select(SpecVersionRow)
                                .where(SpecVersionRow.production_id == production_id)
                                .order_by(SpecVersionRow.version)))


def apply(session: Session, row: ProductionRow, production: Production) -> SpecVersionRow | None:
    """Record ``production`` as the next version unless it is the last one; the new
    version if one was recorded. Raises ``SpecChangeRefused`` for a change that would
    redo or orphan work."""
    text, digest = canonical(production)
    last = latest(session, row.id)
    if last is None:
        known = session.scalar(select(func.count()).where(
            TransformationRow.production_id == row.id))
        if not known:
            return _record(session, row, 1, text, digest, FIRST, "")
        return _record(session, row, 1, text, digest, ADOPTED,
                       "ledger without spec history: the spec of this sync is version 1")
    if last.spec_hash == digest:
        return None
    refused, harmless = _judge_against(session, row, last, production)
    if refused:
        raise SpecChangeRefused(production.production, last.version, refused)
    return _record(session, row, last.version + 1, text, digest, HARMLESS,
                   "; ".join(harmless))


def accept(session: Session, production: Production, reason: str) -> SpecVersionRow:
    """Record ``production`` as the next version whatever it changes, with ``reason``."""
    if not reason.strip():
        raise ValueError("accept: give the reason with --reason TEXT; it is recorded")
    row = session.scalar(select(ProductionRow).filter_by(name=production.production))
    last = latest(session, row.id) if row is not None else None
    if row is None or last is None:
        raise ValueError(f"{production.production}: no version in the ledger to change; "
                         "its first sync records this spec as version 1")
    text, digest = canonical(production)
    if last.spec_hash == digest:
        raise ValueError(f"{production.production}: this spec is already version "
                         f"{last.version}; nothing to accept")
    refused, harmless = _judge_against(session, row, last, production)
    return _record(session, row, last.version + 1, text, digest, ACCEPTED,
                   "; ".join(refused + harmless), reason.strip())


def _judge_against(session: Session, row: ProductionRow, last: SpecVersionRow,
                   production: Production) -> tuple[list[str], list[str]]:
    """``judge`` against the last version; one that no longer reads cannot be judged."""
    try:
        old = Production.model_validate_json(last.spec)
    except ValidationError:
        return [f"version {last.version} in the ledger no longer reads with this ctaoflow, "
                "so the change cannot be judged"], []
    return judge(old, production, work(session, row.id))


def _record(session: Session, row: ProductionRow, version: int, text: str, digest: str,
            how: str, changes: str, reason: str = "") -> SpecVersionRow:
    record = SpecVersionRow(production_id=row.id, version=version, spec_hash=digest, spec=text,
                            how=how, changes=changes, reason=reason)
    session.add(record)
    row.spec_hash = digest
    session.flush()  # a concurrent sync recording the same version fails here
    return record
