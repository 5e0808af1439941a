"""``ctaoflow monitoring install | send | backfill | status``: the monitoring commands.

The server is ``$CTAOFLOW_OPENSEARCH`` (a URL) or ``$AIRFLOW_CONN_CTAOFLOW_OPENSEARCH``
(Airflow's URI or JSON form of the ``ctaoflow_opensearch`` connection); the ledger is
``--ledger``, else ``$AIRFLOW_CONN_CTAOFLOW_LEDGER``, else the embedded default.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
import time
from typing import Any, Callable

ENVIRONMENT = """environment:
  CTAOFLOW_OPENSEARCH      the OpenSearch server, http(s)://[user:password@]host:port
  AIRFLOW_CONN_CTAOFLOW_OPENSEARCH
                           the same as an Airflow connection (URI or JSON), when
                           CTAOFLOW_OPENSEARCH is not set
  CTAOFLOW_MONITORING_BACKLOG
                           documents kept at most while OpenSearch is away (1000000)
  AIRFLOW_CONN_CTAOFLOW_LEDGER
                           the ledger (a SQLAlchemy URL), when --ledger is not given
  CTAOFLOW_HOME            the embedded default's state folder (ledger.db)"""


def _connection() -> dict[str, Any]:
    from ctaoflow.monitoring.client import from_environment

    conn = from_environment()
    if conn is None:
        raise ValueError("no OpenSearch server: set CTAOFLOW_OPENSEARCH "
                         "(http(s)://[user:password@]host:port)")
    return conn


def _ledger(args: argparse.Namespace) -> str:
    from ctaoflow.connections import ledger_url, resolve

    return ledger_url(args.ledger) if args.ledger else resolve().ledger_url


def _sender(args: argparse.Namespace):
    from ctaoflow.engine.ledger import session_factory
    from ctaoflow.monitoring.sender import Sender

    return Sender(_connection(), session_factory(_ledger(args)), batch=args.batch)


def cmd_install(args: argparse.Namespace) -> int:
    from ctaoflow.monitoring.client import make_client, where
    from ctaoflow.monitoring.install import install

    conn = _connection()
    for line in install(make_client(conn)):
        print(f"{where(conn)}: {line}")
    return 0


def cmd_send(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s")
    sender = _sender(args)
    if not args.follow:
        sent = sender.drain()
        left = sender.backlog()
        print(f"{sent} document(s) sent to {sender.where}, {left} waiting")
        return 1 if left and sender.down else 0
    stop = threading.Event()
    sender.run(stop, args.interval)  # until interrupted
    return 0


def cmd_backfill(args: argparse.Namespace) -> int:
    from opensearchpy import helpers

    from ctaoflow.engine.ledger import session_factory
    from ctaoflow.monitoring import documents
    from ctaoflow.monitoring.client import make_client, where

    conn = _connection()
    client = make_client(conn, timeout=60)
    started, sent, known, failures, failed = time.monotonic(), 0, 0, 0, []
    with session_factory(_ledger(args))() as session:
        for ok, item in helpers.streaming_bulk(
                client, documents.history(session, args.production), chunk_size=args.batch,
                raise_on_error=False, raise_on_exception=False):
            (_op, result), = item.items()
            if result.get("status") == 409:
                known += 1
            elif ok:
                sent += 1
            else:
                failures += 1
                if len(failed) < 3:
                    failed.append(f"{result.get('_id')}: {result.get('status')} "
                                  f"{str(result.get('error'))[:200]}")
    print(f"{args.production}: {sent} document(s) sent to {where(conn)}, {known} already "
          f"there, {failures} failed ({time.monotonic() - started:.1f} s)")
    for line in failed:
        print(f"  {line}", file=sys.stderr)
    return 1 if failed else 0


def cmd_status(args: argparse.Namespace) -> int:
    from ctaoflow.engine import outbox
    from ctaoflow.engine.ledger import session_factory
    from ctaoflow.monitoring.metrics import gauges

    with session_factory(_ledger(args))() as session:
        values = gauges(session)
    print(f"monitoring {'on' if outbox.on() else 'off'} in this environment; "
          f"{values['ctaoflow.monitoring.backlog']} document(s) waiting, the oldest for "
          f"{values['ctaoflow.monitoring.lag']:.0f} s")
    return 0


def add_commands(sub: Any, command: Callable[..., argparse.ArgumentParser]) -> None:
    """The ``monitoring`` group, made by ``command`` (the ``ctaoflow`` parser's maker of
    subcommands, ``sub`` its subparsers)."""
    group = command("monitoring", "ctaoflow's events in OpenSearch: install the index "
                    "template, send the outbox, backfill a production, status",
                    lambda args: 2, spec=False)  # ctaoflow's environment as its epilog
    inner = group.add_subparsers(dest="monitoring_command", required=True, metavar="COMMAND",
                                 help="install, send, backfill or status")

    def sub_command(name: str, text: str, func: Callable[[argparse.Namespace], int]
                    ) -> argparse.ArgumentParser:
        p = inner.add_parser(name, help=text, description=text[0].upper() + text[1:] + ".",
                             epilog=ENVIRONMENT,
                             formatter_class=argparse.RawDescriptionHelpFormatter)
        p.add_argument("--ledger", help="the ledger's SQLAlchemy URL (default: "
                       "$AIRFLOW_CONN_CTAOFLOW_LEDGER, else $CTAOFLOW_HOME/ledger.db)")
        p.add_argument("--batch", type=int, default=2000, help="documents per bulk request")
        p.set_defaults(func=func)
        return p

    sub_command("install", "install the index template and the ISM retention policy of "
                "config/monitoring/ on the server", cmd_install)
    p = sub_command("send", "send the documents waiting in the ledger's outbox", cmd_send)
    p.add_argument("--follow", action="store_true", help="keep sending as changes come "
                   "(a deployment's sender service); stop with Ctrl-C")
    p.add_argument("--interval", type=float, default=2.0, help="seconds between rounds")
    p = sub_command("backfill", "send a production's ledger history (jobs, events, file "
                    "and production states); twice duplicates nothing", cmd_backfill)
    p.add_argument("production", help="the production's name")
    sub_command("status", "whether monitoring is on here, and the documents waiting",
                cmd_status)
