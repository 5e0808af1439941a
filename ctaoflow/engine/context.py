"""What every engine stage works with: the production, its catalog, sites and ledger,
and the ledger reads the stages share."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Callable, Iterable, Iterator

from sqlalchemy import Select, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from ctaoflow.backends.base import Backend, SiteConfig
from ctaoflow.catalog.base import Catalog
from ctaoflow.engine import outbox, versions
from ctaoflow.engine.ledger import (EventRow, FileRow, JobRow, JobStatusName, ProductionRow,
                                    TaskRow, TaskStatus, TransformationRow,
                                    TransformationStatus)
from ctaoflow.spec.model import Production

BackendFactory = Callable[[SiteConfig], Backend]
BATCH = 5000  # rows per bulk statement


@dataclass
class Context:
    """One production run against a catalog, a set of sites and a ledger."""

    production: Production
    catalog: Catalog
    sites: dict[str, SiteConfig]
    backend_for: BackendFactory
    sessions: sessionmaker[Session]
    workroot: Path

    def sync(self) -> None:
        """Record the production, its spec version and its transformations (idempotent).

        A spec change against the last applied version is judged first: one that would
        redo or orphan work raises ``SpecChangeRefused`` and changes nothing. Two
        processes syncing at once: the one that loses the insert race syncs again.
        """
        try:
            self._sync()
        except IntegrityError:
            self._sync()

    def _sync(self) -> None:
        with self.sessions.begin() as session:
            row = session.scalar(select(ProductionRow)
                                 .filter_by(name=self.production.production))
            if row is None:
                row = ProductionRow(name=self.production.production, spec_hash=self.spec_hash)
                session.add(row)
                session.flush()
            version = versions.apply(session, row, self.production)
            row.spec_hash = self.spec_hash
            known = {r.name: r for r in session.scalars(
                select(TransformationRow).filter_by(production_id=row.id))}
            wanted = {t.name: t for t in self.production.transformations}
            for name, t in wanted.items():
                if name not in known:
                    session.add(TransformationRow(production_id=row.id, name=name, type=t.type))
                elif known[name].status == TransformationStatus.REMOVED.value:
                    known[name].status = TransformationStatus.ACTIVE.value
                    event(session, known[name], "spec", "back in the spec: Removed -> Active")
            for name, r in known.items():
                if name not in wanted and r.status != TransformationStatus.REMOVED.value:
                    event(session, r, "spec", f"no longer in the spec: {r.status} -> Removed")
                    r.status = TransformationStatus.REMOVED.value
            if version is not None:
                for name in wanted.keys() & known.keys():
                    said = [c for c in version.changes.split("; ") if c.startswith(f"{name}: ")]
                    if said:
                        event(session, known[name], "spec", f"spec version {version.version}: "
                              + "; ".join(c.removeprefix(f"{name}: ") for c in said))

    @cached_property
    def spec_hash(self) -> str:
        """The SHA-256 of the production's canonical spec."""
        return versions.canonical(self.production)[1]

    def row(self, session: Session, name: str) -> TransformationRow:
        """The ledger row of transformation ``name``, once this spec is the applied version
        (synced first when it is not: a refused change raises ``SpecChangeRefused``)."""
        found = session.execute(
            select(TransformationRow, ProductionRow.spec_hash).join(ProductionRow)
            .where(ProductionRow.name == self.production.production,
                   TransformationRow.name == name)).first()
        if found is None or found[1] != self.spec_hash:
            self.sync()
            return self.row(session, name)
        return found[0]

    def backend(self, site: str) -> Backend:
        return self.backend_for(self.sites[site])


def event(session: Session, row: TransformationRow | None, kind: str, message: str,
          user: str | None = None) -> None:
    """An event row (and its monitoring document; ``user`` for an operator action)."""
    added = EventRow(transformation_id=row.id if row else None, kind=kind, message=message)
    session.add(added)
    outbox.event(session, added, user)


def chunk_tasks(row: TransformationRow, chunk: int, status: TaskStatus) -> Select:
    return (select(TaskRow).where(TaskRow.transformation_id == row.id,
                                  TaskRow.chunk == chunk, TaskRow.status == status.value)
            .order_by(TaskRow.index))


def chunk_jobs(row: TransformationRow, chunk: int, status: JobStatusName) -> Select:
    return (select(JobRow).join(TaskRow, JobRow.task_id == TaskRow.id)
            .where(TaskRow.transformation_id == row.id, TaskRow.chunk == chunk,
                   JobRow.status == status.value).order_by(JobRow.id))


def task_files(session: Session, task_ids: list[int]) -> dict[int, dict[str, dict]]:
    """LFN -> metadata of each task's input files."""
    files: dict[int, dict[str, dict]] = {task_id: {} for task_id in task_ids}
    for start in range(0, len(task_ids), BATCH):
        for task_id, lfn, meta in session.execute(
                select(FileRow.task_id, FileRow.lfn, FileRow.meta)
                .where(FileRow.task_id.in_(task_ids[start:start + BATCH]))):
            files[task_id][lfn] = meta
    return files


def batches(items: Iterable, size: int = BATCH) -> Iterator[list]:
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
