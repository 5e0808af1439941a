"""The embedded file catalog: SQLite metadata, storages as local folders.

It has the same query semantics as the Rucio catalog (``Condition.matches``): a
missing key fails every condition but ``!=`` and ``nin``; comparing a number with a
string never matches. A replica of ``lfn`` on storage ``S`` lives at
``<root>/storage/<S>/<lfn>``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import sqlite3
from pathlib import Path
from typing import Any, Iterator, Sequence

from ctaoflow.catalog.base import Catalog, CatalogError, CatalogFile, OutputFile
from ctaoflow.spec.query import Condition, Query

_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (lfn TEXT PRIMARY KEY, size INTEGER NOT NULL,
                                  meta TEXT NOT NULL, storages TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS dataset_files (dataset TEXT NOT NULL, lfn TEXT NOT NULL,
                                          PRIMARY KEY (dataset, lfn));
CREATE TABLE IF NOT EXISTS closed_datasets (dataset TEXT PRIMARY KEY);
"""
_SQL_OPS = {"=": "=", "!=": "!=", ">": ">", "<": "<", ">=": ">=", "<=": "<="}


class EmbeddedCatalog(Catalog):
    """A file catalog in one SQLite file under ``root``, for running without servers."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.root / "catalog.db", timeout=60)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.executescript(_SCHEMA)

    def storage_root(self, storage: str) -> Path:
        return self.root / "storage" / storage

    def query(self, query: Query) -> Iterator[CatalogFile]:
        where, params = _where(query.conditions)
        cursor = self.db.execute(
            f"SELECT lfn, size, meta, storages FROM files WHERE {where} ORDER BY lfn", params)
        while rows := cursor.fetchmany(2000):
            for lfn, size, meta, storages in rows:
                yield CatalogFile(lfn, size, json.loads(meta), tuple(storages.split(",")))

    def names(self, query: Query, since: dt.datetime | None = None) -> Iterator[str]:
        """Every matching LFN (no registration times here: ``since`` is not used)."""
        where, params = _where(query.conditions)
        cursor = self.db.execute(f"SELECT lfn FROM files WHERE {where} ORDER BY lfn", params)
        while rows := cursor.fetchmany(2000):
            yield from (row[0] for row in rows)

    def files(self, query: Query, lfns: Sequence[str]) -> Iterator[CatalogFile]:
        where, params = _where(query.conditions)
        for start in range(0, len(lfns), 500):
            batch = list(lfns[start:start + 500])
            for lfn, size, meta, storages in self.db.execute(
                    f"SELECT lfn, size, meta, storages FROM files WHERE ({where}) AND lfn IN "
                    f"({','.join('?' * len(batch))}) ORDER BY lfn", params + batch).fetchall():
                yield CatalogFile(lfn, size, json.loads(meta), tuple(storages.split(",")))

    def storages(self, lfns: Sequence[str]) -> dict[str, tuple[str, ...]]:
        found: dict[str, tuple[str, ...]] = {}
        for start in range(0, len(lfns), 500):
            batch = list(lfns[start:start + 500])
            found.update((lfn, tuple(storages.split(","))) for lfn, storages in self.db.execute(
                f"SELECT lfn, storages FROM files WHERE lfn IN ({','.join('?' * len(batch))})",
                batch))
        return found

    def local_paths(self, lfns: Sequence[str]) -> dict[str, str]:
        paths: dict[str, str] = {}
        for start in range(0, len(lfns), 500):
            batch = list(lfns[start:start + 500])
            marks = ",".join("?" * len(batch))
            for lfn, storages in self.db.execute(
                    f"SELECT lfn, storages FROM files WHERE lfn IN ({marks})", batch):
                paths[lfn] = str(self._replica(storages.split(",")[0], lfn))
        return paths

    def register(self, outputs: Sequence[OutputFile], storage: str, dataset: str) -> int:
        known = dict(self.db.execute(
            f"SELECT lfn, size FROM files WHERE lfn IN ({','.join('?' * len(outputs))})",
            [o.lfn for o in outputs]).fetchall()) if outputs else {}
        rows = []
        for output in outputs:
            size = self._store(output, storage)
            if output.lfn in known:
                if known[output.lfn] != size:
                    raise CatalogError(f"embedded catalog: {output.lfn} is already registered "
                                       f"with {known[output.lfn]} bytes, not {size}")
                continue
            rows.append((output.lfn, size, json.dumps(output.metadata, sort_keys=True), storage))
        with self.db:
            self.db.executemany("INSERT INTO files VALUES (?, ?, ?, ?)", rows)
            self.db.executemany("INSERT OR IGNORE INTO dataset_files VALUES (?, ?)",
                                [(dataset, o.lfn) for o in outputs])
        return len(rows)

    def dataset(self, dataset: str) -> list[str]:
        """The LFNs attached to ``dataset``."""
        return [row[0] for row in self.db.execute(
            "SELECT lfn FROM dataset_files WHERE dataset = ? ORDER BY lfn", (dataset,))]

    def close_dataset(self, dataset: str) -> None:
        """Mark ``dataset`` closed (as Rucio's ``close``)."""
        with self.db:
            self.db.execute("INSERT OR IGNORE INTO closed_datasets VALUES (?)", (dataset,))

    def dataset_closed(self, dataset: str) -> bool:
        return self.db.execute("SELECT 1 FROM closed_datasets WHERE dataset = ?",
                               (dataset,)).fetchone() is not None

    def close(self) -> None:
        self.db.close()

    def _replica(self, storage: str, lfn: str) -> Path:
        path = (self.storage_root(storage) / lfn.lstrip("/")).resolve()
        if not path.is_relative_to(self.storage_root(storage).resolve()):
            raise CatalogError(f"embedded catalog: LFN {lfn!r} leaves the storage folder")
        return path

    def _store(self, output: OutputFile, storage: str) -> int:
        """Place the file at its replica path (hard link, else copy); return its size."""
        target = self._replica(storage, output.lfn)
        source = Path(output.path)
        if target.exists() and (not source.exists() or target.samefile(source)):
            return target.stat().st_size
        if not source.exists():
            raise CatalogError(f"embedded catalog: output {source} of {output.lfn} is missing")
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".part")
        partial.unlink(missing_ok=True)
        try:
            os.link(source, partial)
        except OSError:
            shutil.copy2(source, partial)
        os.replace(partial, target)
        return target.stat().st_size


def _where(conditions: Sequence[Condition]) -> tuple[str, list[Any]]:
    clauses, params = ["1=1"], []
    for c in conditions:
        path = "$." + json.dumps(c.key)
        value, kind = "json_extract(meta, ?)", "json_type(meta, ?)"
        if c.op in ("in", "nin"):
            clause = " OR ".join(f"({value} = ? AND {_type_check(kind, v)})" for v in c.value)
            params += [p for v in c.value for p in (path, v, path)]
            if c.op == "nin":
                clause = f"NOT ({clause}) OR {kind} IS NULL"
                params.append(path)
        else:
            clause = f"{value} {_SQL_OPS[c.op]} ? AND {_type_check(kind, c.value)}"
            params += [path, c.value, path]
            if c.op == "!=":
                clause = f"({clause}) OR {kind} IS NULL OR NOT {_type_check(kind, c.value)}"
                params += [path, path]
        clauses.append(f"({clause})")
    return " AND ".join(clauses), params


def _type_check(kind: str, operand: Any) -> str:
    if isinstance(operand, bool):
        return f"{kind} IN ('true', 'false')"
    if isinstance(operand, (int, float)):
        return f"{kind} IN ('integer', 'real')"
    return f"{kind} = 'text'"
