"""The ledger: productions, transformations, files, tasks, jobs and events.

ctaoflow's own database (SQLAlchemy; a SQLite file by default, PostgreSQL in
deployment), never Airflow's. Every side effect on a batch system or a catalog is
preceded by a committed ledger row that says it is about to happen, so a process
killed at any moment is reconciled from the ledger when it comes back.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import os
import secrets
from functools import partial
from pathlib import Path
from typing import Any, Iterable

from sqlalchemy import (JSON, BigInteger, Boolean, DateTime, ForeignKey, Index, Integer, String,
                        Text, UniqueConstraint, create_engine, event, exc)
from sqlalchemy.engine import URL, Engine, ExceptionContext, make_url
from sqlalchemy.orm import (DeclarativeBase, Mapped, Session, mapped_column, relationship,
                            sessionmaker)

from ctaoflow import settings


class FileStatus(str, enum.Enum):
    UNUSED = "Unused"
    ASSIGNED = "Assigned"
    PROCESSED = "Processed"
    PROBLEMATIC = "Problematic"
    MAXRESET = "MaxReset"
    REMOVED = "Removed"


FINAL_FILE_STATUSES = (FileStatus.PROCESSED, FileStatus.PROBLEMATIC, FileStatus.MAXRESET,
                       FileStatus.REMOVED)


class TaskStatus(str, enum.Enum):
    CREATED = "Created"
    SUBMITTED = "Submitted"
    DONE = "Done"
    FAILED = "Failed"


class JobStatusName(str, enum.Enum):
    SUBMITTING = "Submitting"  # row committed, batch system not yet answered
    SUBMITTED = "Submitted"
    DONE = "Done"
    FAILED = "Failed"
    KILLED = "Killed"


class TransformationStatus(str, enum.Enum):
    ACTIVE = "Active"
    FLUSH = "Flush"  # flushed by hand: emit partial groups
    STOPPED = "Stopped"
    COMPLETED = "Completed"
    REMOVED = "Removed"  # no longer in the production's spec


def now() -> dt.datetime:
    """The ledger's clock: naive UTC."""
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[str]: JSON}


class ProductionRow(Base):
    __tablename__ = "productions"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)  # nights: name.night.version
    uid: Mapped[str] = mapped_column(String(8), default=lambda: secrets.token_hex(4))
    status: Mapped[str] = mapped_column(String(16), default="Active")
    spec_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=now)


class SiteRow(Base):
    """A site paused after consecutive infrastructure failures, until ``paused_until``."""

    __tablename__ = "sites"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    paused_until: Mapped[dt.datetime | None] = mapped_column(DateTime)
    reason: Mapped[str] = mapped_column(Text, default="")


class TransformationRow(Base):
    __tablename__ = "transformations"
    __table_args__ = (UniqueConstraint("production_id", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    production_id: Mapped[int] = mapped_column(ForeignKey("productions.id"))
    name: Mapped[str] = mapped_column(String(64))
    type: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default=TransformationStatus.ACTIVE.value)
    flush_count: Mapped[int] = mapped_column(Integer, default=0)
    next_chunk: Mapped[int] = mapped_column(Integer, default=0)
    extra_runs: Mapped[int] = mapped_column(Integer, default=0)  # MC extension by hand
    intake_at: Mapped[dt.datetime | None] = mapped_column(DateTime)  # last catalog listing


class FileRow(Base):
    __tablename__ = "files"
    __table_args__ = (UniqueConstraint("transformation_id", "lfn"),
                      Index("ix_files_transformation_status", "transformation_id", "status"))
    id: Mapped[int] = mapped_column(primary_key=True)
    transformation_id: Mapped[int] = mapped_column(ForeignKey("transformations.id"), index=True)
    lfn: Mapped[str] = mapped_column(String(1024))
    size: Mapped[int] = mapped_column(BigInteger, default=0)  # bytes: files pass 2 GiB
    storages: Mapped[list[str]] = mapped_column(default=list)
    meta: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(16), default=FileStatus.UNUSED.value, index=True)
    error_count: Mapped[int] = mapped_column(Integer, default=0)
    task_id: Mapped[int | None] = mapped_column(ForeignKey("tasks.id"), index=True)


class TaskRow(Base):
    __tablename__ = "tasks"
    __table_args__ = (UniqueConstraint("transformation_id", "index"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    transformation_id: Mapped[int] = mapped_column(ForeignKey("transformations.id"), index=True)
    index: Mapped[int] = mapped_column(Integer)
    chunk: Mapped[int] = mapped_column(Integer, index=True)
    status: Mapped[str] = mapped_column(String(16), default=TaskStatus.CREATED.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    run: Mapped[int | None] = mapped_column(Integer)  # MC run number
    group: Mapped[str | None] = mapped_column(Text)  # by_metadata value (any length)
    outputs: Mapped[list[str]] = mapped_column(default=list)  # registered LFNs
    message: Mapped[str] = mapped_column(Text, default="")


class JobRow(Base):
    __tablename__ = "jobs"
    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id"), index=True)
    attempt: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(256), unique=True)
    site: Mapped[str] = mapped_column(String(64))
    backend_id: Mapped[str | None] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16), default=JobStatusName.SUBMITTING.value,
                                        index=True)
    state: Mapped[str | None] = mapped_column(String(16))  # the backend's final state
    exit_code: Mapped[int | None] = mapped_column(Integer)
    failure_class: Mapped[str | None] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text, default="")
    log_tail: Mapped[str] = mapped_column(Text, default="")  # end of a failed job's log
    workdir: Mapped[str] = mapped_column(String(1024))
    spec: Mapped[dict[str, Any]] = mapped_column(default=dict)  # the JobSpec submitted
    submitted_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime)


class EventRow(Base):
    __tablename__ = "events"
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime, default=now)
    transformation_id: Mapped[int | None] = mapped_column(ForeignKey("transformations.id"),
                                                          index=True)
    kind: Mapped[str] = mapped_column(String(32))
    message: Mapped[str] = mapped_column(Text)
    duplicate: Mapped[bool] = mapped_column(Boolean, default=False)


class OutboxRow(Base):
    """A change waiting to be sent to monitoring (``ctaoflow.engine.outbox``): a pointer to
    the ledger row it is about, written in the change's own transaction, deleted once
    OpenSearch has acknowledged its document."""

    __tablename__ = "outbox"
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime, default=now)
    kind: Mapped[str] = mapped_column(String(16))  # job, file, event, production
    production_id: Mapped[int | None] = mapped_column(Integer)
    transformation_id: Mapped[int | None] = mapped_column(Integer)
    task_id: Mapped[int | None] = mapped_column(Integer)
    job_id: Mapped[int | None] = mapped_column(Integer)
    event_id: Mapped[int | None] = mapped_column(ForeignKey("events.id"))
    event: Mapped[EventRow | None] = relationship()
    status: Mapped[str | None] = mapped_column(String(16))
    count: Mapped[int | None] = mapped_column(Integer)
    user: Mapped[str | None] = mapped_column(Text)  # who, for an operator action


class NightStatus(str, enum.Enum):
    WAITING = "Waiting"  # for the night's raw data
    COMPLETE = "Complete"  # the completeness condition held
    TIMED_OUT = "TimedOut"  # processed with what was there; ``missing`` says what was not


class NightRow(Base):
    """The raw data of one night of a nightly production (one per ledger production)."""

    __tablename__ = "nights"
    production_id: Mapped[int] = mapped_column(ForeignKey("productions.id"), primary_key=True)
    night: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16), default=NightStatus.WAITING.value)
    waiting_since: Mapped[dt.datetime] = mapped_column(DateTime, default=now)
    raw_files: Mapped[int] = mapped_column(Integer, default=0)
    last_change_at: Mapped[dt.datetime] = mapped_column(DateTime, default=now)
    decided_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    missing: Mapped[list[str]] = mapped_column(default=list)


class SpecVersionRow(Base):
    """One applied version of a production's spec: its JSON, how and when it was applied."""

    __tablename__ = "spec_versions"
    __table_args__ = (UniqueConstraint("production_id", "version"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    production_id: Mapped[int] = mapped_column(ForeignKey("productions.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    spec_hash: Mapped[str] = mapped_column(String(64))
    spec: Mapped[str] = mapped_column(Text)  # the canonical JSON of the spec
    applied_at: Mapped[dt.datetime] = mapped_column(DateTime, default=now)
    how: Mapped[str] = mapped_column(String(16))  # first, adopted, harmless, accepted
    changes: Mapped[str] = mapped_column(Text, default="")  # what changed, one line
    reason: Mapped[str] = mapped_column(Text, default="")  # why, for an acceptance


def default_url() -> str:
    """The ledger when no URL is given: ``$CTAOFLOW_LEDGER_URL`` if set (the URL every
    entry point resolves first, so a library call opens the same ledger as the DAGs and
    the CLI), else the SQLite file under ``$CTAOFLOW_HOME``."""
    from ctaoflow.connections import LEDGER_ENV, ledger_url

    if explicit := os.environ.get(LEDGER_ENV):
        return ledger_url(explicit)
    return f"sqlite:///{settings.home() / 'ledger.db'}"


class LedgerError(RuntimeError):
    """The ledger cannot be read or written; the message names it and the fix."""


_ENGINES: dict[str, Engine] = {}
_TIMEOUT_ENV = "CTAOFLOW_LEDGER_TIMEOUT"


def engine_for(url: str | None = None) -> Engine:
    """One engine per URL per process; SQLite gets WAL and a busy timeout
    (``$CTAOFLOW_LEDGER_TIMEOUT`` seconds, 60 by default).

    Database errors that are not the code's (a garbage, unreadable, locked, read-only or
    full ledger, an unreachable server) are raised as one-line ``LedgerError``s.
    """
    url = url or default_url()
    if url not in _ENGINES:
        sqlite = url.startswith("sqlite")
        timeout = _timeout()
        try:
            engine = create_engine(url, connect_args={"timeout": timeout} if sqlite else {},
                                   pool_pre_ping=not sqlite,
                                   json_deserializer=partial(_json_value, url=url))
        except (exc.ArgumentError, ImportError) as error:
            shown = url.split("://")[0] + "://..." if "://" in url else "URL"  # no password
            raise LedgerError(f"ledger {shown}: {error}; give the ctaoflow_ledger connection "
                              "a SQLAlchemy URL whose driver is installed") from None
        if sqlite:
            _check_sqlite_file(engine.url.database)
            event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "handle_error", partial(_ledger_error, timeout=timeout))
        from ctaoflow.engine.migrations import upgrade

        upgrade(engine, Base.metadata)
        _ENGINES[url] = engine
    return _ENGINES[url]


def dispose_engines() -> None:
    """Close every engine's connections (before a database is dropped)."""
    for engine in _ENGINES.values():
        engine.dispose()
    _ENGINES.clear()


def _check_sqlite_file(database: str | None) -> None:
    """A ledger path must be a regular file or nothing: SQLite would block on a FIFO."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    if path.exists() and not path.is_file():
        kind = "a folder" if path.is_dir() else "a special file (FIFO, device or socket)"
        raise LedgerError(f"ledger {path}: {kind} stands where the ledger file belongs; "
                          "move it aside")


def _json_value(text: str, url: str) -> Any:
    """A JSON column's value; a damaged one is a LedgerError, not a decoding traceback."""
    try:
        return json.loads(text)
    except ValueError as exc:
        raise LedgerError(f"ledger {_where(make_url(url))}: a stored value is not JSON "
                          f"({text[:40]!r}: {exc}); restore the ledger from a backup or "
                          "repair that row") from None


def _where(url: URL) -> str:
    """The ledger as a person finds it: a SQLite file, or a server URL without password."""
    if url.get_backend_name() == "sqlite":
        return url.database or ":memory:"
    return url.render_as_string(hide_password=True)


def _timeout() -> float:
    value = os.environ.get(_TIMEOUT_ENV, "60")
    try:
        timeout = float(value)
    except ValueError:
        timeout = -1.0
    if not 0 <= timeout < 1e6:
        raise LedgerError(f"{_TIMEOUT_ENV}={value!r}: give the seconds to wait for a locked "
                          "ledger, e.g. 60")
    return timeout


_DISK_FULL = "the disk is full (nothing was written); free space on its file system and retry"
# SQLite's message (lower case) -> what it means and what to do about it
_SQLITE_FIXES = (
    (("not a database", "malformed", "file is encrypted"),
     ("not a SQLite ledger (garbage or damaged); move it aside and restore it from a "
      "backup (a fresh one is created if none is there)")),
    (("locked", "busy"),
     ("locked by another process for more than {timeout:g} s; find it with `fuser {path}`, "
      f"let it finish or stop it, then retry (or raise ${_TIMEOUT_ENV})")),
    (("readonly", "read-only"),
     ("read-only; make the file and its folder writable by this user, or point "
      "CTAOFLOW_HOME at a writable folder")),
    (("disk is full",), _DISK_FULL),
    (("no such table", "no such column", "has no column"),
     ("not a ledger of this ctaoflow version ({first}); move it aside or point "
      "CTAOFLOW_HOME at another folder")),
    (("unable to open", "disk i/o error"), None),  # None: look at the file to say why
)


def _ledger_error(context: ExceptionContext, timeout: float) -> None:
    """``handle_error`` hook: a database error that is not a bug becomes a LedgerError."""
    wrapped, error = context.sqlalchemy_exception, context.original_exception
    if context.is_pre_ping:
        return  # the pool reconnects on its own
    if not (isinstance(wrapped, exc.OperationalError) or type(wrapped) is exc.DatabaseError):
        return  # constraint, programming and data errors are the code's: left as they are
    url = context.engine.url if context.engine is not None else None
    first = (str(error).strip().splitlines() or [type(error).__name__])[0]
    if url is not None and url.get_backend_name() == "sqlite":
        path = _where(url)
        text = first.lower()
        for needles, fix in _SQLITE_FIXES:
            if any(needle in text for needle in needles):
                why = (_diagnose(Path(path)) if fix is None
                       else fix.format(path=path, timeout=timeout, first=first))
                raise LedgerError(f"ledger {path}: {why}")
        raise LedgerError(f"ledger {path}: {first}; check the file and its disk, then retry")
    where = _where(url) if url is not None else "database"
    raise LedgerError(f"ledger {where}: {first}; check that the server is up and the "
                      "ctaoflow_ledger connection is right, then retry")


def _diagnose(path: Path) -> str:
    """Why SQLite could not open or write the ledger file at ``path``, and the fix."""
    try:
        return _look_at(path)
    except OSError as error:  # cannot even look
        return f"cannot be reached ({error.strerror}); check the path and its permissions"


def _look_at(path: Path) -> str:
    """The first thing wrong with the ledger file at ``path``, and the fix."""
    if path.is_dir():
        return "a folder stands where the ledger file belongs; move it aside"
    if not path.parent.is_dir():
        return f"its folder {path.parent} does not exist or is not a folder; create it"
    if path.exists() and not os.access(path, os.R_OK):
        return "unreadable by this user; give it read and write permission (chmod u+rw)"
    if not os.access(path.parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        return ("read-only (SQLite also writes beside it); make the file and its folder "
                "writable by this user, or point CTAOFLOW_HOME at a writable folder")
    if os.statvfs(path.parent).f_bavail == 0:
        return _DISK_FULL
    return "input/output error; check the file, its disk and file system, then retry"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def session_factory(url: str | None = None) -> sessionmaker[Session]:
    return sessionmaker(engine_for(url), expire_on_commit=False)


def insert_ignore(session: Session, table: Any, rows: Iterable[dict[str, Any]]) -> None:
    """Bulk insert, skipping rows that violate a unique constraint (both dialects)."""
    rows = list(rows)
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    elif dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        raise ValueError(f"ledger: unsupported database {dialect!r}; use SQLite or PostgreSQL")
    session.execute(dialect_insert(table).on_conflict_do_nothing(), rows)
