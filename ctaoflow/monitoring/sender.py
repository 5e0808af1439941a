"""The sender: the outbox to OpenSearch, in order, in bulk, at least once, never twice.

Each round reads the oldest outbox rows (``batch``), renders their documents and sends
them with opensearch-py's ``helpers.streaming_bulk``, op_type ``create`` with the
document's deterministic ``_id``: a document OpenSearch already has answers 409, which
counts as acknowledged, so a re-send after a crash adds nothing. Rows are deleted only
once their document is acknowledged (201 or 409); anything else stays for the next
round, but a document refused for good (a 400 for that item in a bulk answer, e.g. one
the mapping refuses) is dropped with a warning rather than sent forever. OpenSearch down:
the rows stay in the ledger (one warning line per outage), and
are sent when it is back.

The backlog is bounded (``max_backlog`` rows, ``$CTAOFLOW_MONITORING_BACKLOG``, 1,000,000
by default): past it the oldest rows are dropped with one warning line per crossing
(``ctaoflow monitoring backfill`` sends the job and event history of a production
again, with the same ids).
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from typing import Any, Callable

from opensearchpy import OpenSearch, helpers
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from ctaoflow.engine.ledger import OutboxRow, session_factory
from ctaoflow.monitoring import documents
from ctaoflow.monitoring.client import Connection, make_client, where

log = logging.getLogger("ctaoflow.monitoring")
BACKLOG_ENV = "CTAOFLOW_MONITORING_BACKLOG"
ACKNOWLEDGED = (200, 201, 409)  # 409: a create of an id OpenSearch already has


def max_backlog() -> int:
    value = os.environ.get(BACKLOG_ENV, "1000000")
    try:
        bound = int(value)
    except ValueError:
        bound = 0
    if bound < 1:
        raise ValueError(f"{BACKLOG_ENV}={value!r}: give the outbox rows to keep at most, "
                         "e.g. 1000000")
    return bound


class Sender:
    """Sends one ledger's outbox to one OpenSearch."""

    def __init__(self, conn: Connection, sessions: sessionmaker[Session] | None = None, *,
                 client: OpenSearch | None = None, batch: int = 2000,
                 bound: int | None = None, prefix: str = documents.PREFIX,
                 stats: Any = None) -> None:
        self.conn, self.where = conn, where(conn)
        self.client = client or make_client(conn)
        self.sessions = sessions or session_factory()
        self.batch, self.prefix, self.stats = batch, prefix, stats
        self.bound = bound or max_backlog()
        self.sent = 0  # documents acknowledged by this sender
        self.down = False  # OpenSearch failed the last round (warned once)
        self.over = False  # the backlog is past its bound (warned once)

    def backlog(self) -> int:
        with self.sessions() as session:
            return session.scalar(select(func.count()).select_from(OutboxRow))

    def trim(self) -> int:
        """Drop the oldest rows past the bound; returns how many (one warning per crossing)."""
        waiting = self.backlog()
        if waiting <= self.bound:
            self.over = False
            return 0
        extra = waiting - self.bound
        with self.sessions.begin() as session:
            last = session.scalar(select(OutboxRow.id).order_by(OutboxRow.id)
                                  .offset(extra - 1).limit(1))
            session.execute(delete(OutboxRow).where(OutboxRow.id <= last))
        if not self.over:
            log.warning("monitoring: %d documents wait for OpenSearch at %s, more than the "
                        "bound of %d ($%s): the oldest %d are dropped (and the oldest past "
                        "the bound from now on, without another warning); `ctaoflow "
                        "monitoring backfill PRODUCTION` sends job and event history again",
                        waiting, self.where, self.bound, BACKLOG_ENV, extra)
        self.over = True
        return extra

    def send_once(self) -> int:
        """One round: the oldest ``batch`` rows; returns how many were acknowledged (or had
        nothing to send). Never raises for OpenSearch's sake."""
        with self.sessions() as session:
            rows = session.scalars(select(OutboxRow).order_by(OutboxRow.id)
                                   .limit(self.batch)).all()
            if not rows:
                return 0
            rendered = documents.render(session, rows, self.prefix)
        done = [row_id for row_id, action in rendered if action is None]
        by_id: dict[str, list[int]] = {}
        actions = []
        for row_id, action in rendered:
            if action is not None:
                by_id.setdefault(action["_id"], []).append(row_id)
                actions.append(action)
        errors: list[str] = []
        refused: list[int] = []
        refused_why = ""
        try:
            for _ok, item in helpers.streaming_bulk(
                    self.client, actions, chunk_size=self.batch, max_chunk_bytes=10 * 2**20,
                    raise_on_error=False, raise_on_exception=False):
                (_op, result), = item.items()
                status = result.get("status")
                if status in ACKNOWLEDGED:
                    done += by_id.get(result.get("_id"), [])
                elif status == 400 and "exception" not in result:  # this item, not the request
                    refused += by_id.get(result.get("_id"), [])  # never taken: not kept
                    if not refused_why:
                        refused_why = f"{status} {str(result.get('error'))[:300]}"
                elif len(errors) < 1:
                    errors.append(f"{status} {str(result.get('error'))[:300]}")
        except Exception as exc:  # noqa: BLE001 - whatever the client raises, keep the rows
            errors.append(f"{type(exc).__name__}: {str(exc)[:300]}")
        if refused:
            log.warning("monitoring: OpenSearch at %s refused %d document(s) for good (%s); "
                        "dropped (is the index template of config/monitoring/ installed?)",
                        self.where, len(refused), refused_why)
            done += refused
        if done:
            with self.sessions.begin() as session:
                for start in range(0, len(done), 5000):
                    session.execute(delete(OutboxRow).where(
                        OutboxRow.id.in_(done[start:start + 5000])))
        acknowledged = len(done)
        self.sent += acknowledged - len(refused)
        if errors and acknowledged < len(rendered):
            if not self.down:
                log.warning("monitoring: OpenSearch at %s did not take %d document(s) (%s); "
                            "they stay in the ledger and are sent when it answers",
                            self.where, len(rendered) - acknowledged, errors[0])
            self.down = True
        elif self.down and acknowledged:
            log.warning("monitoring: OpenSearch at %s answers again", self.where)
            self.down = False
        if self.stats is not None and acknowledged > len(refused):
            self.stats.incr("ctaoflow.monitoring.sent", acknowledged - len(refused))
        return acknowledged

    def drain(self, deadline: float | None = None) -> int:
        """Send until the outbox is empty, OpenSearch fails a round, or the deadline."""
        total = 0
        while deadline is None or time.monotonic() < deadline:
            self.trim()
            sent = self.send_once()
            total += sent
            if not sent or self.down:
                break
        return total

    def run(self, stop: threading.Event, interval: float = 2.0,
            each_round: Callable[["Sender"], None] | None = None) -> None:
        """Send until ``stop`` is set: drain, then wait ``interval`` seconds."""
        while not stop.is_set():
            try:
                self.drain()
                if each_round is not None:
                    each_round(self)
            except Exception as exc:  # noqa: BLE001 - a ledger hiccup: next round
                log.warning("monitoring: sender round failed (%s: %s); retrying in %g s",
                            type(exc).__name__, str(exc)[:300], interval)
            stop.wait(interval)


_BACKGROUND: dict[str, tuple[Sender, threading.Event, threading.Thread]] = {}
_LOCK = threading.Lock()


def start_background(conn: Connection, ledger_url: str | None = None, interval: float = 2.0,
                     stats: Any = None, final_drain: float = 5.0) -> Sender:
    """One daemon sender thread per ledger in this process (an Airflow task's), and at
    exit a last drain of at most ``final_drain`` seconds; what is left waits in the
    ledger for the next sender."""
    key = ledger_url or "default"
    with _LOCK:
        if key in _BACKGROUND:
            return _BACKGROUND[key][0]
        sender = Sender(conn, session_factory(ledger_url), stats=stats)
        stop = threading.Event()
        each = None
        if stats is not None:
            from ctaoflow.monitoring.metrics import emit_gauges
            each = lambda s: emit_gauges(s.sessions, stats, s)  # noqa: E731
        thread = threading.Thread(target=sender.run, args=(stop, interval, each),
                                  name="ctaoflow-monitoring", daemon=True)
        thread.start()
        _BACKGROUND[key] = (sender, stop, thread)

        def last_drain() -> None:
            if _BACKGROUND.get(key, (None,))[0] is not sender:
                return  # stopped already
            stop.set()
            thread.join(final_drain)
            if not thread.is_alive():
                try:
                    sender.drain(time.monotonic() + final_drain)
                except Exception:  # noqa: BLE001 - the rows wait for the next sender
                    pass

        atexit.register(last_drain)
        return sender


def stop_background(timeout: float = 5.0) -> None:
    """Stop this process's sender threads (tests; a process's exit does it otherwise)."""
    with _LOCK:
        for sender, stop, thread in _BACKGROUND.values():
            stop.set()
            thread.join(timeout)
        _BACKGROUND.clear()
