"""The monitoring outbox: each change the engine or an operator makes also leaves a small
``OutboxRow`` in the same ledger transaction, when monitoring is on.

A row is a pointer (the job, task, event or production it is about, the status it
took, a count of files), not the document: ``ctaoflow.monitoring`` renders and sends
the documents later, in the background, and deletes the rows OpenSearch acknowledged.
So a change never waits for OpenSearch, and a change is never lost between the ledger
and OpenSearch: the row commits or rolls back with it.

Monitoring is off unless ``$CTAOFLOW_OPENSEARCH`` or ``$AIRFLOW_CONN_CTAOFLOW_OPENSEARCH``
is set, or the Airflow layer found the ``ctaoflow_opensearch`` connection and called
``enable()``. Off, each call below is one test of a flag.

File status changes are recorded aggregated: one row per task (or per transformation
for an intake or a reset) and new status, with the number of files, written in one
executemany, never one row per file.
"""

from __future__ import annotations

import os
from typing import Iterable

from sqlalchemy import insert
from sqlalchemy.orm import Session

from ctaoflow.engine.ledger import EventRow, JobRow, OutboxRow

ENV = ("CTAOFLOW_OPENSEARCH", "AIRFLOW_CONN_CTAOFLOW_OPENSEARCH")
_forced: bool | None = None


def enable(on: bool | None = True) -> None:
    """Turn recording on or off in this process (None: back to the environment)."""
    global _forced
    _forced = on


def on() -> bool:
    if _forced is not None:
        return _forced
    return any(os.environ.get(name) for name in ENV)


def event(session: Session, row: EventRow, user: str | None = None) -> None:
    """An event (operator action with its ``user``, transformation status, spec change,
    failure...)."""
    if on():
        session.add(OutboxRow(kind="event", transformation_id=row.transformation_id,
                              event=row, user=user))


def jobs(session: Session, rows: Iterable[JobRow]) -> None:
    """Jobs that took their current status (Submitted, or a final one)."""
    if on():
        values = [{"kind": "job", "job_id": j.id, "task_id": j.task_id, "status": j.status}
                  for j in rows]
        if values:
            session.execute(insert(OutboxRow), values)


def files(session: Session, transformation_id: int, changes: Iterable[tuple[int | None, str, int]]
          ) -> None:
    """File status changes: (task id or None, new status, number of files) each."""
    if on():
        values = [{"kind": "file", "transformation_id": transformation_id, "task_id": task,
                   "status": status, "count": count} for task, status, count in changes if count]
        if values:
            session.execute(insert(OutboxRow), values)


def production(session: Session, production_id: int, status: str) -> None:
    """A production took a new status."""
    if on():
        session.add(OutboxRow(kind="production", production_id=production_id, status=status))
