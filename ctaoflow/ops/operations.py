"""Operator actions on a production's ledger: reset, flush, stop, start, extend.

Each is one transaction and leaves an event that says who did it and why (``user`` and
``reason``, at the end of the event's message: see ``signed`` and ``signature``). Each
has a ``dry_run`` that returns what the action would touch and changes nothing. Called
by the CLI; the UI plugin calls the same functions.
"""

from __future__ import annotations

import datetime as dt
import getpass
import os
import re
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterable, Iterator

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from ctaoflow.engine import outbox
from ctaoflow.engine.context import event
from ctaoflow.engine.ledger import (EventRow, FileRow, FileStatus, JobRow, ProductionRow,
                                    TransformationRow, TransformationStatus, session_factory)
from ctaoflow.spec.model import Production


MAX_RUN = 2**31 - 1  # run numbers and counts are 32-bit integers in the ledger


class OperationError(ValueError):
    """An operation that cannot apply; the message is one line with the fix."""


def _rows(session: Session, production: Production,
          transformation: str | None = None) -> list[TransformationRow]:
    """The production's transformations, locked (``FOR UPDATE``, in id order) until the
    action commits: an action and an intake of one transformation never interleave."""
    rows = session.scalars(select(TransformationRow).join(ProductionRow)
                           .where(ProductionRow.name == production.production,
                                  TransformationRow.status
                                  != TransformationStatus.REMOVED.value)
                           .order_by(TransformationRow.id)
                           .with_for_update(of=TransformationRow)).all()
    if not rows:
        raise OperationError(f"production {production.production!r} has not run yet: "
                             "nothing in the ledger")
    if transformation is None:
        return list(rows)
    chosen = [r for r in rows if r.name == transformation]
    if not chosen:
        raise OperationError(f"no transformation {transformation!r} in production "
                             f"{production.production!r}; one of: "
                             f"{', '.join(sorted(r.name for r in rows))}")
    return chosen


# Who and why end an action's message: " [by USER; why: REASON]". The events table keeps
# its columns, so ledgers created by any earlier ctaoflow open and record actions as is.
_SIGNATURE = re.compile(r" \[by (?P<user>[^;\]]*)(?:; why: (?P<reason>.*))?\]$", re.DOTALL)
UNKNOWN_USER = "unknown"
ACTION_KINDS = ("reset", "flush", "status", "extend", "accept", "audit")
REASON_LIMIT = 500

RESETTABLE = (FileStatus.UNUSED.value, FileStatus.PROBLEMATIC.value, FileStatus.MAXRESET.value)
FORCE_ONLY = (FileStatus.PROCESSED.value,)  # sticky: only an explicit, recorded force


def signed(message: str, user: str | None, reason: str | None = None) -> str:
    """``message`` with who did it and why, on one line."""
    who = re.sub(r"[;\]\s]+", "_", (user or "").strip()) or UNKNOWN_USER
    why = " ".join((reason or "").split())[:REASON_LIMIT]
    return f"{message} [by {who}" + (f"; why: {why}" if why else "") + "]"


def signature(message: str) -> tuple[str | None, str | None]:
    """The (user, reason) of an action's event message; (None, None) for other events."""
    found = _SIGNATURE.search(message)
    return (found["user"], found["reason"]) if found else (None, None)


@contextmanager
def _transaction(sessions: sessionmaker | None, dry_run: bool) -> Iterator[Session]:
    """One transaction, committed, or rolled back for a dry run (or an error)."""
    session = (sessions or session_factory())()
    try:
        yield session
        if dry_run:
            session.rollback()
        else:
            session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def _event(session: Session, row: TransformationRow | None, kind: str, message: str,
           user: str | None, reason: str | None) -> None:
    """The action's event, signed with who and why (and its monitoring document)."""
    who = user or _user()
    event(session, row, kind, signed(message, who, reason), user=who)


def _user() -> str:
    """Who acts when no one is named: ``$CTAOFLOW_USER`` (set by a UI or service acting for
    someone), else the login name."""
    try:
        return os.environ.get("CTAOFLOW_USER") or getpass.getuser()
    except (KeyError, OSError):
        return UNKNOWN_USER


def reset(production: Production, transformation: str | None = None, site: str | None = None,
          failure_class: str | None = None,
          statuses: tuple[str, ...] = (FileStatus.PROBLEMATIC.value, FileStatus.MAXRESET.value),
          sessions: sessionmaker | None = None, *, lfns: Iterable[str] | None = None,
          force: bool = False, user: str | None = None, reason: str | None = None,
          dry_run: bool = False) -> int:
    """Put files back to Unused with a fresh error budget; returns how many (would be).

    ``site`` and ``failure_class`` select files by the last job of the task that set
    them aside; ``lfns`` restricts to those files. The next ``prepare`` groups them into
    new tasks. Processed files stay Processed unless ``force`` (recorded in the event);
    Assigned and Removed files are never reset.
    """
    allowed = RESETTABLE + (FORCE_ONLY if force else ())
    wrong = [s for s in statuses if s not in allowed]
    if wrong:
        fix = ("Processed files are sticky: reset them only on purpose, with force "
               "(ctaoflow reset --force); their outputs may already be used"
               if set(wrong) <= set(FORCE_ONLY) else f"reset one of {', '.join(RESETTABLE)}")
        raise OperationError(f"reset {', '.join(wrong)} files: {fix}")
    chosen = None if lfns is None else set(lfns)
    with _transaction(sessions, dry_run) as session:
        total = 0
        for row in _rows(session, production, transformation):
            count, forced = 0, 0
            files = session.scalars(select(FileRow).where(  # locked: a job's result waits
                FileRow.transformation_id == row.id, FileRow.status.in_(statuses))
                .order_by(FileRow.id).with_for_update()).all()
            for f in files:
                if chosen is not None and f.lfn not in chosen:
                    continue
                if site or failure_class:
                    last = session.scalars(select(JobRow).where(JobRow.task_id == f.task_id)
                                           .order_by(JobRow.attempt.desc())).first()
                    if last is None or (site and last.site != site) or (
                            failure_class and last.failure_class != failure_class):
                        continue
                forced += f.status in FORCE_ONLY
                f.status, f.task_id, f.error_count = FileStatus.UNUSED.value, None, 0
                count += 1
            if count:
                note = f" (forced: {forced} of them were Processed)" if forced else ""
                _event(session, row, "reset", f"{count} files reset to Unused by hand{note}",
                       user, reason)
                outbox.files(session, row.id, [(None, FileStatus.UNUSED.value, count)])
            if row.status == TransformationStatus.COMPLETED.value and count:
                row.status = TransformationStatus.ACTIVE.value
            total += count
        return total


def flush(production: Production, transformation: str,
          sessions: sessionmaker | None = None, *, user: str | None = None,
          reason: str | None = None, dry_run: bool = False) -> int:
    """The next ``prepare`` emits partial groups (the tail) whatever the parents say;
    returns the Unused files waiting in the transformation, which it may group."""
    with _transaction(sessions, dry_run) as session:
        (row,) = _rows(session, production, transformation)
        if row.status == TransformationStatus.STOPPED.value:
            raise OperationError(f"{transformation} is stopped; start the production first")
        waiting = len(session.scalars(select(FileRow.id).where(
            FileRow.transformation_id == row.id,
            FileRow.status == FileStatus.UNUSED.value)).all())
        row.status = TransformationStatus.FLUSH.value
        _event(session, row, "flush", f"flushed by hand ({waiting} files waiting)", user,
               reason)
        return waiting


def stop(production: Production, sessions: sessionmaker | None = None, *,
         user: str | None = None, reason: str | None = None, dry_run: bool = False) -> int:
    """Stop every transformation: ``prepare`` submits nothing until ``start``; returns
    how many transformations change status."""
    return _set_status(production, TransformationStatus.STOPPED, "Stopped", sessions, user,
                       reason, dry_run)


def start(production: Production, sessions: sessionmaker | None = None, *,
          user: str | None = None, reason: str | None = None, dry_run: bool = False) -> int:
    """Make a stopped production active again; returns how many transformations change
    status."""
    return _set_status(production, TransformationStatus.ACTIVE, "Active", sessions, user,
                       reason, dry_run)


def _set_status(production: Production, status: TransformationStatus, label: str,
                sessions: sessionmaker | None, user: str | None, reason: str | None,
                dry_run: bool) -> int:
    with _transaction(sessions, dry_run) as session:
        rows, changed = _rows(session, production), 0
        for row in rows:
            if row.status != status.value:
                _event(session, row, "status", f"{row.status} -> {status.value} by hand",
                       user, reason)
                row.status = status.value
                changed += 1
        production_row = session.get(ProductionRow, rows[0].production_id)
        if production_row.status != label:
            outbox.production(session, production_row.id, label)
        production_row.status = label
        return changed


def run_count(text: str) -> int:
    """A number of runs as typed by a person: a whole positive number, else one line."""
    try:
        runs = int(text.strip().replace("_", ""), 10)
    except ValueError:
        raise OperationError(f"extend by {text[:40]!r} runs: give a whole positive number of "
                             "runs, e.g. 1000") from None
    if runs < 1:
        raise OperationError(f"extend by {runs} runs: give a positive number")
    return runs


def extend(production: Production, transformation: str, runs: int,
           sessions: sessionmaker | None = None, *, user: str | None = None,
           reason: str | None = None, dry_run: bool = False) -> int:
    """Add ``runs`` MC runs to an MC simulation; returns its new target (would be)."""
    spec = production.transformation(transformation) if transformation in {
        t.name for t in production.transformations} else None
    if spec is not None and spec.type != "mc_simulation":
        raise OperationError(f"{transformation} is a {spec.type} transformation; "
                             "only mc_simulation can be extended")
    if runs < 1:
        raise OperationError(f"extend by {runs} runs: give a positive number")
    with _transaction(sessions, dry_run) as session:
        (row,) = _rows(session, production, transformation)
        assert spec is not None and spec.runs is not None
        # failed runs are replaced by new numbers: up to start + 2 * target
        room = (MAX_RUN - spec.runs.start) // 2 - spec.runs.count - row.extra_runs
        if runs > room:
            raise OperationError(f"extend {transformation} by {runs} runs: beyond the run "
                                 f"numbers the ledger holds; give at most {max(room, 0)}")
        row.extra_runs += runs
        if row.status == TransformationStatus.COMPLETED.value:
            row.status = TransformationStatus.ACTIVE.value
        _event(session, row, "extend", f"{runs} more runs", user, reason)
        return spec.runs.count + row.extra_runs


def accept(production: Production, reason: str, sessions: sessionmaker | None = None, *,
           user: str | None = None, dry_run: bool = False) -> tuple[int, str]:
    """Record a spec change that sync refused as the next version, with ``reason``;
    returns (its version, what changes). The event goes with the first transformation."""
    from ctaoflow.engine.versions import accept as record

    with _transaction(sessions, dry_run) as session:
        version = record(session, production, reason)
        changes = version.changes or "no change"
        _event(session, _rows(session, production)[0], "accept",
               f"spec version {version.version} accepted ({changes})", user, reason)
        return version.version, changes


def record_audit(production: Production, problems: list[str],
                 sessions: sessionmaker | None = None, *, user: str | None = None,
                 reason: str | None = None) -> None:
    """Record that someone audited the production, and what the audit found."""
    with _transaction(sessions, False) as session:
        found = f"{len(problems)} discrepancies" if problems else "clean"
        _event(session, _rows(session, production)[0], "audit", f"audited: {found}", user,
               reason)


@dataclass(frozen=True)
class Action:
    """One operator action of a production's history, from its event."""

    at: dt.datetime
    transformation: str
    kind: str
    what: str  # the message without its signature
    user: str
    reason: str | None


def history(production: Production, sessions: sessionmaker | None = None,
            limit: int = 50) -> list[Action]:
    """The production's last operator actions (signed events), newest first."""
    with (sessions or session_factory())() as session:
        found = session.execute(
            select(EventRow, TransformationRow.name)
            .join(TransformationRow, EventRow.transformation_id == TransformationRow.id)
            .join(ProductionRow).where(ProductionRow.name == production.production,
                                       EventRow.kind.in_(ACTION_KINDS),
                                       EventRow.message.like("% [by %]"))
            .order_by(EventRow.id.desc()).limit(limit)).all()
    actions = []
    for row, name in found:
        if signed_by := _SIGNATURE.search(row.message):
            actions.append(Action(row.at, name, row.kind, row.message[:signed_by.start()],
                                  signed_by["user"], signed_by["reason"]))
    return actions
