"""What every engine stage works with: the production, its catalog, sites and ledger,
and the ledger reads the stages share."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

from sqlalchemy import Select, select
from sqlalchemy.orm import Session, sessionmaker

from ctaoflow.backends.base import Backend, SiteConfig
from ctaoflow.catalog.base import Catalog
from ctaoflow.engine.ledger import (EventRow, FileRow, JobRow, JobStatusName, ProductionRow,
                                    TaskRow, TaskStatus, TransformationRow)
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
        """Record the production and its transformations (idempotent)."""
        spec = json.dumps(self.production.model_dump(mode="json", by_alias=True),
                          sort_keys=True)
        digest = hashlib.sha256(spec.encode()).hexdigest()
        with self.sessions.begin() as session:
            row = session.scalar(select(ProductionRow)
                                 .filter_by(name=self.production.production))
            if row is None:
                row = ProductionRow(name=self.production.production, spec_hash=digest)
                session.add(row)
                session.flush()
            row.spec_hash = digest
            known = set(session.scalars(select(TransformationRow.name)
                                        .filter_by(production_id=row.id)))
            for t in self.production.transformations:
                if t.name not in known:
                    session.add(TransformationRow(production_id=row.id, name=t.name,
                                                  type=t.type))

    def row(self, session: Session, name: str) -> TransformationRow:
        """The ledger row of transformation ``name`` (recorded first if missing)."""
        row = session.scalar(
            select(TransformationRow).join(ProductionRow)
            .where(ProductionRow.name == self.production.production,
                   TransformationRow.name == name))
        if row is None:
            self.sync()
            return self.row(session, name)
        return row

    def backend(self, site: str) -> Backend:
        return self.backend_for(self.sites[site])


def event(session: Session, row: TransformationRow | None, kind: str, message: str) -> None:
    session.add(EventRow(transformation_id=row.id if row else None, kind=kind,
                         message=message))


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
