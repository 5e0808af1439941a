"""Monitoring in an Airflow task: the ``ctaoflow_opensearch`` connection (conn type
``opensearch``, as apache-airflow-providers-opensearch's: host, port, login, password,
schema https or extra ``use_ssl``/``verify_certs``) turns it on.

With the connection, the engine writes its outbox rows, and a background thread of the
task process sends them (``ctaoflow.monitoring.sender``) and reports ctaoflow's gauges
through Airflow's own metrics (StatsD when ``[metrics] statsd_on``). Without it, nothing
is recorded or sent (the embedded defaults).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from ctaoflow.engine import outbox
from ctaoflow.monitoring import client
from operators.hooks.production import _connection

CONN_ID = "ctaoflow_opensearch"


def opensearch_connection(conn_id: str = CONN_ID) -> dict[str, Any] | None:
    """The connection's fields, or None when Airflow has no such connection."""
    conn = _connection(conn_id)
    if conn is None:
        return None
    return client.from_fields(host=conn.host, port=conn.port, login=conn.login,
                              password=conn.password, schema=conn.schema,
                              extra=conn.extra_dejson)


@cache
def start(ledger_url: str | None) -> bool:
    """Once per process and ledger: monitoring on and its sender running, when the
    connection exists; True then."""
    conn = opensearch_connection()
    if conn is None:
        return False
    from airflow.sdk.observability.stats import Stats

    from ctaoflow.monitoring.sender import start_background

    outbox.enable(True)
    start_background(conn, ledger_url, stats=Stats)
    return True
