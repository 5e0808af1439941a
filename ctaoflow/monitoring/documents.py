"""Monitoring documents: outbox rows and ledger history as OpenSearch bulk actions.

One index family, ``ctaoflow-events-YYYY.MM`` (the month of the document's
``@timestamp``), one document kind per change (``kind``):

- ``job``: a job took a status (``Submitted``, then ``Done``, ``Failed`` or ``Killed``);
  ``_id`` ``<job name>:<status>`` (job names carry the production's uid, so they are
  unique across ledgers);
- ``file``: ``files`` files of a task (or of a transformation, for an intake or a
  reset) took ``state``; ``_id`` ``<uid>:file:<outbox id>``;
- ``event``: a ledger event (operator action with its ``user``, transformation status,
  spec change, failure, pause); ``_id`` ``<uid>:event:<event id>``;
- ``production``: the production took ``state``; ``_id`` ``<uid>:production:<outbox id>``.

Job and event documents have the same ``_id`` when sent live and when replayed from
the ledger by ``history`` (backfill), so either may run twice, or both, without a
duplicate. File and production documents of a backfill are snapshots of the states
now (``backfill: true``, ``_id`` ``<uid>:files:...``/``<uid>:production:now``, dated
at the production's creation and overwritten by the next backfill): the ledger keeps
no file history.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from functools import cache
from pathlib import Path
from typing import Any, Iterable, Iterator

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ctaoflow import settings
from ctaoflow.engine.ledger import (Base, EventRow, FileRow, JobRow, JobStatusName,
                                    OutboxRow, ProductionRow, TaskRow, TransformationRow)

PREFIX = "ctaoflow-events"
TEMPLATE = settings.CONFIG_DIR / "monitoring" / "index-template-events.json"
REASON_BYTES = 1024  # a job's reason, cut (the log stays in the ledger)
Action = dict[str, Any]


@cache
def schema(path: Path = TEMPLATE) -> dict[str, Any]:
    """The documents' mapping: the index template's ``properties``."""
    return json.loads(path.read_text())["template"]["mappings"]["properties"]


def index_name(timestamp: str, prefix: str = PREFIX) -> str:
    return f"{prefix}-{timestamp[:4]}.{timestamp[5:7]}"


def _iso(when: dt.datetime | None) -> str:
    when = when or dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    return when.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


class _Names:
    """Productions and transformations of the ledger by id (small tables, read once)."""

    def __init__(self, session: Session) -> None:
        self.productions = {p.id: p for p in session.scalars(select(ProductionRow))}
        nights = Base.metadata.tables.get("nights")  # nightly productions' ledger table
        self.nights = (dict(session.execute(select(nights.c.production_id, nights.c.night)).all())
                       if nights is not None else {})
        self.transformations = {t.id: t for t in session.scalars(select(TransformationRow))}

    def base(self, transformation_id: int | None = None,
             production_id: int | None = None) -> tuple[str, dict[str, Any]]:
        """The production's uid and the fields naming where a change happened."""
        doc: dict[str, Any] = {}
        t = self.transformations.get(transformation_id) if transformation_id else None
        if t is not None:
            doc.update(transformation=t.name, transformation_type=t.type)
            production_id = t.production_id
        p = self.productions.get(production_id) if production_id else None
        if p is None:
            return "ledger", doc
        doc.update(production=p.name)
        if p.id in self.nights:  # a night of a nightly production (its ledger production)
            doc["night"] = str(self.nights[p.id])
        return p.uid, doc


def _action(doc_id: str, doc: dict[str, Any], prefix: str, op: str = "create") -> Action:
    return {"_op_type": op, "_index": index_name(doc["@timestamp"], prefix),
            "_id": doc_id, "_source": doc}


def _job_doc(names: _Names, job: JobRow, task: TaskRow, status: str) -> tuple[str, dict]:
    _, doc = names.base(task.transformation_id)
    doc.update(kind="job", task=task.index, chunk=task.chunk, job=job.name,
               attempt=job.attempt, site=job.site, state=status)
    if task.run is not None:
        doc["run"] = task.run
    if job.backend_id:
        doc["backend_id"] = job.backend_id
    if status == JobStatusName.SUBMITTED.value:
        doc["@timestamp"] = _iso(job.submitted_at)
    else:
        doc["@timestamp"] = _iso(job.finished_at)
        if job.state:
            doc["backend_state"] = job.state
        if job.exit_code is not None:
            doc["exit_code"] = job.exit_code
        if job.failure_class:
            doc["failure_class"] = job.failure_class
        if job.reason:
            doc["reason"] = job.reason.encode()[:REASON_BYTES].decode(errors="ignore")
        if job.submitted_at and job.finished_at:
            doc["duration_s"] = round((job.finished_at - job.submitted_at).total_seconds(), 3)
    return f"{job.name}:{status}", doc


_STATUS = re.compile(r"-> (\w+)")
_NIGHT = re.compile(r"night (\d{8})")


def _event_doc(names: _Names, event: EventRow, user: str | None) -> tuple[str, dict]:
    uid, doc = names.base(event.transformation_id)
    doc.update({"@timestamp": _iso(event.at), "kind": "event", "event": event.kind,
                "message": event.message})
    if event.kind == "status" and (found := _STATUS.search(event.message)):
        doc["state"] = found.group(1)
    if event.kind == "night" and (night := _NIGHT.search(event.message)):
        doc["night"] = night.group(1)  # a night's raw data decided (nightly productions)
    if user:
        doc["user"] = user
    return f"{uid}:event:{event.id}", doc


def render(session: Session, rows: Iterable[OutboxRow], prefix: str = PREFIX
           ) -> list[tuple[int, Action | None]]:
    """Each outbox row's bulk action (None when what it points at is gone)."""
    rows = list(rows)
    names = _Names(session)
    job_ids = [r.job_id for r in rows if r.kind == "job"]
    task_ids = {r.task_id for r in rows if r.task_id is not None}
    jobs = {j.id: j for j in session.scalars(select(JobRow).where(JobRow.id.in_(job_ids)))}
    tasks = {t.id: t for t in session.scalars(select(TaskRow).where(TaskRow.id.in_(task_ids)))}
    events = {e.id: e for e in session.scalars(select(EventRow).where(
        EventRow.id.in_([r.event_id for r in rows if r.event_id is not None])))}
    out: list[tuple[int, Action | None]] = []
    for r in rows:
        doc_id, doc = None, None
        if r.kind == "job" and r.job_id in jobs and r.task_id in tasks:
            doc_id, doc = _job_doc(names, jobs[r.job_id], tasks[r.task_id], r.status)
        elif r.kind == "event" and r.event_id in events:
            doc_id, doc = _event_doc(names, events[r.event_id], r.user)
        elif r.kind == "file":
            uid, doc = names.base(r.transformation_id)
            doc.update({"@timestamp": _iso(r.at), "kind": "file", "state": r.status,
                        "files": r.count})
            if r.task_id in tasks:
                doc.update(task=tasks[r.task_id].index, chunk=tasks[r.task_id].chunk)
            doc_id = f"{uid}:file:{r.id}"
        elif r.kind == "production":
            uid, doc = names.base(production_id=r.production_id)
            doc.update({"@timestamp": _iso(r.at), "kind": "production", "state": r.status})
            doc_id = f"{uid}:production:{r.id}"
        out.append((r.id, _action(doc_id, doc, prefix) if doc_id else None))
    return out


def history(session: Session, production: str, prefix: str = PREFIX,
            batch: int = 2000) -> Iterator[Action]:
    """A production's ledger history as bulk actions: every job status and event with the
    ids live sending gives them, and the files and production states now."""
    p = session.scalar(select(ProductionRow).filter_by(name=production))
    if p is None:
        raise ValueError(f"production {production!r} is not in the ledger")
    names = _Names(session)
    ids = [t.id for t in names.transformations.values() if t.production_id == p.id]
    jobs = (select(JobRow, TaskRow).join(TaskRow, JobRow.task_id == TaskRow.id)
            .where(TaskRow.transformation_id.in_(ids)).order_by(JobRow.id)
            .execution_options(yield_per=batch))
    for job, task in session.execute(jobs):
        if job.submitted_at is not None:
            yield _action(*_job_doc(names, job, task, JobStatusName.SUBMITTED.value), prefix)
        if job.status not in (JobStatusName.SUBMITTING.value, JobStatusName.SUBMITTED.value):
            yield _action(*_job_doc(names, job, task, job.status), prefix)
    for event in session.scalars(select(EventRow).where(EventRow.transformation_id.in_(ids))
                                 .order_by(EventRow.id).execution_options(yield_per=batch)):
        yield _action(*_event_doc(names, event, None), prefix)
    now = _iso(p.created_at)  # snapshots: one stable index, overwritten by the next backfill
    for tid, task_index, chunk, status, count in session.execute(
            select(FileRow.transformation_id, TaskRow.index, TaskRow.chunk, FileRow.status,
                   func.count())
            .outerjoin(TaskRow, FileRow.task_id == TaskRow.id)
            .where(FileRow.transformation_id.in_(ids))
            .group_by(FileRow.transformation_id, TaskRow.index, TaskRow.chunk, FileRow.status)):
        _, doc = names.base(tid)
        doc.update({"@timestamp": now, "kind": "file", "state": status, "files": count,
                    "backfill": True})
        if task_index is not None:
            doc.update(task=task_index, chunk=chunk)
        where = "-" if task_index is None else task_index
        yield _action(f"{p.uid}:files:{tid}:{where}:{status}", doc, prefix, "index")
    _, doc = names.base(production_id=p.id)
    doc.update({"@timestamp": now, "kind": "production", "state": p.status, "backfill": True})
    yield _action(f"{p.uid}:production:now", doc, prefix, "index")
