"""Intake: new catalog files into the ledger, grouped into tasks and chunks.

MC simulations get one task per new run number instead. Partial groups (the tail) are
emitted only when the transformation may flush.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from typing import Iterator

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from ctaoflow.catalog.base import CatalogFile
from ctaoflow.engine import outbox, producers
from ctaoflow.engine.context import BATCH, Context, batches, event
from ctaoflow.engine.grouping import plugin
from ctaoflow.engine.ledger import (FileRow, FileStatus, TaskRow, TaskStatus,
                                    TransformationRow, TransformationStatus, insert_ignore, now)
from ctaoflow.spec.chaining import input_query
from ctaoflow.spec.model import Transformation

# Open MC runs at most: a DAG run maps over these tasks' chunks, and a target of millions
# is reached over successive runs, each prepare one bounded transaction.
MC_TASKS_PER_PREPARE = 10_000
# How far before the last intake a catalog listing starts again (registration times are
# the catalog's clock; a registration may commit after its time is stamped).
INTAKE_MARGIN = dt.timedelta(hours=1)


def prepare(ctx: Context, name: str) -> list[int]:
    """Take in new input files, group them into tasks; return chunks with work."""
    t = ctx.production.transformation(name)
    with ctx.sessions.begin() as session:
        row = ctx.row(session, name)
        session.refresh(row, with_for_update=True)  # one intake per transformation at a time
        if row.status == TransformationStatus.STOPPED.value:
            return []
        if t.type == "mc_simulation":
            new_tasks = _mc_tasks(ctx, session, row, t)
        else:
            known_up_to = session.scalar(select(func.max(FileRow.id)).where(
                FileRow.transformation_id == row.id))  # files after it come with fresh replicas
            new_files = _intake(ctx, session, row, t)
            models = producers.waiting_for(producers.upstream(session, row, t, side_inputs=True))
            if all_group_ran(session, row, t):
                if new_files:
                    event(session, row, "held", f"{new_files} new input file(s) held: {HELD}")
                new_tasks = []
            elif models:
                if new_files:
                    event(session, row, "held", f"{new_files} new input file(s) wait for the "
                                                f"makers of their side inputs: {', '.join(models)}")
                new_tasks = []
            else:
                new_tasks = _group(ctx, session, row, t, known_up_to)
        if new_tasks:
            event(session, row, "tasks", f"{len(new_tasks)} new tasks")
        return list(session.scalars(
            select(TaskRow.chunk).distinct()
            .where(TaskRow.transformation_id == row.id,
                   TaskRow.status.in_([TaskStatus.CREATED.value, TaskStatus.SUBMITTED.value]))
            .order_by(TaskRow.chunk)))


HELD = ("the all group already ran, and new files alone would form a second one; to run "
        "it on every file, make a new production (a new name)")


def all_group_ran(session: Session, row: TransformationRow, t: Transformation) -> bool:
    """An ``all`` group (a training) whose files were processed is final: new files are
    held, never grouped on their own."""
    return t.grouping.plugin == "all" and session.scalar(
        select(FileRow.id).where(FileRow.transformation_id == row.id,
                                 FileRow.status == FileStatus.PROCESSED.value).limit(1)
    ) is not None


GROUP_HELD = ("that group already ran, and its output would be written again; to redo it "
              "with every file, reprocess under a new version (or a new production)")


def groups_that_ran(session: Session, row: TransformationRow, t: Transformation) -> set[str]:
    """The values of a whole-group ``by_metadata`` grouping (one task per value, e.g. a
    run's merge) that already have a task: a late file of such a group is held."""
    if t.grouping.plugin != "by_metadata" or "group_size" in t.grouping.model_fields_set:
        return set()
    return set(session.scalars(select(TaskRow.group).distinct().where(
        TaskRow.transformation_id == row.id, TaskRow.status != TaskStatus.FAILED.value)))


def parents_complete(session: Session, row: TransformationRow, t: Transformation) -> bool:
    """Partial groups are emitted when every parent is complete or by hand.

    A transformation without parents waits for the productions that make what its query
    asks for (``producers``); when none is known it reads a catalog snapshot: each run
    flushes it.
    """
    if row.status == TransformationStatus.FLUSH.value:
        return True
    parents = t.all_parents
    if not parents:
        return not producers.waiting_for(producers.upstream(session, row, t))
    statuses = session.scalars(
        select(TransformationRow.status)
        .where(TransformationRow.production_id == row.production_id,
               TransformationRow.name.in_(parents))).all()
    return len(statuses) == len(parents) and all(
        s == TransformationStatus.COMPLETED.value for s in statuses)


def _intake(ctx: Context, session: Session, row: TransformationRow, t: Transformation) -> int:
    """Add catalog files matching the input query that the ledger does not know.

    Names first; metadata and replicas only for names the transformation does not know.
    A catalog that can lists only what was registered since the last intake, less
    ``INTAKE_MARGIN`` (clock skew, registrations committed late).
    """
    started = now()
    query = input_query(ctx.production, t)
    since = row.intake_at - INTAKE_MARGIN if row.intake_at else None
    own = {"production": ctx.production.production, "transformation": t.name}
    before = session.scalar(select(func.count()).where(FileRow.transformation_id == row.id))
    for names in batches(ctx.catalog.names(query, since)):
        known = set(session.scalars(select(FileRow.lfn).where(
            FileRow.transformation_id == row.id, FileRow.lfn.in_(names))))
        new = [name for name in names if name not in known]
        if not new:
            continue
        candidates = [f for f in ctx.catalog.files(query, new)
                      if any(f.metadata.get(k) != v for k, v in own.items())]  # not its outputs
        insert_ignore(session, FileRow.__table__, (
            {"transformation_id": row.id, "lfn": f.lfn, "size": f.size,
             "storages": list(f.storages), "meta": f.metadata,
             "status": FileStatus.UNUSED.value, "error_count": 0} for f in candidates))
    row.intake_at = started
    added = session.scalar(select(func.count()).where(FileRow.transformation_id == row.id)) - before
    if added:
        event(session, row, "intake", f"{added} new input files")
        outbox.files(session, row.id, [(None, FileStatus.UNUSED.value, added)])
    return added


def refresh_storages(ctx: Context, session: Session, row: TransformationRow,
                     t: Transformation, known_up_to: int | None) -> None:
    """Groupings by replica storages (standard, by_size) see each unused file's replicas
    as the catalog has them now: a new replica changes the group it joins. Files with ids
    past ``known_up_to`` were just taken in with their replicas (None: all of them)."""
    if t.grouping.plugin not in ("standard", "by_size") or known_up_to is None:
        return
    unused = session.execute(select(FileRow.id, FileRow.lfn, FileRow.storages).where(
        FileRow.transformation_id == row.id, FileRow.status == FileStatus.UNUSED.value,
        FileRow.id <= known_up_to)).all()
    for batch in batches(unused):
        now_at = ctx.catalog.storages([lfn for _, lfn, _ in batch])
        changed = [{"id": file_id, "storages": list(now_at[lfn])} for file_id, lfn, old in batch
                   if lfn in now_at and list(now_at[lfn]) != list(old)]
        if changed:
            session.execute(update(FileRow), changed)


def _group(ctx: Context, session: Session, row: TransformationRow,
           t: Transformation, known_up_to: int | None) -> list[TaskRow]:
    """Cut the unused files into tasks, streamed from the ledger in LFN order."""
    refresh_storages(ctx, session, row, t, known_up_to)
    flush = parents_complete(session, row, t)
    next_index = _next_index(session, row)
    unused = session.execute(
        select(FileRow.id, FileRow.lfn, FileRow.size, FileRow.storages, FileRow.meta)
        .where(FileRow.transformation_id == row.id,
               FileRow.status == FileStatus.UNUSED.value)
        .order_by(FileRow.lfn).execution_options(yield_per=BATCH))
    waiting: dict[str, int] = {}  # ledger ids of the files read but not grouped yet
    ran = groups_that_ran(session, row, t)
    held = Counter()

    def files() -> Iterator[CatalogFile]:
        for r in unused:
            if ran and str(r.meta.get(t.grouping.key)) in ran:
                held[str(r.meta.get(t.grouping.key))] += 1
                continue
            waiting[r.lfn] = r.id
            yield CatalogFile(r.lfn, r.size, r.meta, tuple(r.storages))

    tasks, assignments = [], []
    for group in plugin(t.grouping)(files(), flush):
        value = group[0].metadata.get(t.grouping.key) if t.grouping.key else None
        tasks.append(TaskRow(transformation_id=row.id, index=next_index + len(tasks),
                             group=None if value is None else str(value)))
        assignments.append([waiting.pop(f.lfn) for f in group])
    if tasks:
        _assign_chunks(ctx, row, tasks)
        session.add_all(tasks)
        session.flush()
        rows = ({"id": file_id, "status": FileStatus.ASSIGNED.value, "task_id": task.id}
                for task, ids in zip(tasks, assignments) for file_id in ids)
        for batch in batches(rows):  # bulk UPDATE by primary key (executemany)
            session.execute(update(FileRow), batch)
        outbox.files(session, row.id, ((task.id, FileStatus.ASSIGNED.value, len(ids))
                                       for task, ids in zip(tasks, assignments)))
    for value, count in sorted(held.items()):
        event(session, row, "held", f"{count} new input file(s) of {t.grouping.key} {value} "
                                    f"held: {GROUP_HELD}")
    if flush and row.status == TransformationStatus.FLUSH.value:
        row.status, row.flush_count = TransformationStatus.ACTIVE.value, row.flush_count + 1
    return tasks


def _mc_tasks(ctx: Context, session: Session, row: TransformationRow,
              t: Transformation) -> list[TaskRow]:
    """New MC runs until the target number of good or open jobs is reached, with at most
    ``MC_TASKS_PER_PREPARE`` open at a time: the rest at the next prepares (the
    transformation stays Active until its target is met).

    Failed runs are replaced by new run numbers, until as many runs have failed as
    the target (then the production needs a person).
    """
    assert t.runs is not None
    target = t.runs.count + row.extra_runs
    open_statuses = [TaskStatus.CREATED.value, TaskStatus.SUBMITTED.value]
    total, failed, running, last = session.execute(
        select(func.count(), func.count().filter(TaskRow.status == TaskStatus.FAILED.value),
               func.count().filter(TaskRow.status.in_(open_statuses)), func.max(TaskRow.run))
        .where(TaskRow.transformation_id == row.id)).one()
    missing = target - (total - failed)
    if missing <= 0 or failed >= target:
        return []
    first = t.runs.start if last is None else last + 1
    next_index = _next_index(session, row)
    tasks = [TaskRow(transformation_id=row.id, index=next_index + i, run=first + i)
             for i in range(max(0, min(missing, MC_TASKS_PER_PREPARE - running)))]
    _assign_chunks(ctx, row, tasks)
    session.add_all(tasks)
    if tasks and missing > len(tasks):
        event(session, row, "tasks", f"{missing - len(tasks)} more runs to create at the "
                                     "next runs of the production")
    return tasks


def _next_index(session: Session, row: TransformationRow) -> int:
    last = session.scalar(select(func.max(TaskRow.index))
                          .where(TaskRow.transformation_id == row.id))
    return 0 if last is None else last + 1


def _assign_chunks(ctx: Context, row: TransformationRow, tasks: list[TaskRow]) -> None:
    """Consecutive tasks share a chunk (one Airflow task instance); 1,000 chunks at most
    per intake."""
    size = max(ctx.production.defaults.chunk_size, math.ceil(len(tasks) / 1000))
    for i, task in enumerate(tasks):
        task.chunk = row.next_chunk + i // size
    row.next_chunk += math.ceil(len(tasks) / size)
