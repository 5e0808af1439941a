"""Airflow's connection store as a ``ctaoflow.connections.Lookup``: the thin resolver
every Airflow-side entry point (and the CLI, where Airflow is set up) hands to
``ctaoflow.connections.resolve``."""

from __future__ import annotations

from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowNotFoundException

from ctaoflow.connections import Connection


def lookup(conn_id: str) -> Connection | None:
    """The Airflow connection ``conn_id`` in ctaoflow's terms; None when it is not defined."""
    try:
        conn = BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        return None
    return Connection(conn.conn_type or "", conn.host, conn.port, conn.login, conn.password,
                      conn.schema, conn.extra_dejson)
