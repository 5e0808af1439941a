"""RucioHook: an Airflow connection of type ``rucio`` turned into a RucioCatalog (its
fields: ``ctaoflow.connections.rucio_catalog``)."""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseHook

from ctaoflow.catalog.rucio import RucioCatalog
from ctaoflow.connections import Connection, rucio_catalog


class RucioHook(BaseHook):
    """Builds the RucioCatalog of an Airflow connection; the password is never logged."""

    conn_name_attr = "rucio_conn_id"
    default_conn_name = "rucio_default"
    conn_type = "rucio"
    hook_name = "Rucio"

    def __init__(self, rucio_conn_id: str = default_conn_name) -> None:
        super().__init__()
        self.rucio_conn_id = rucio_conn_id

    def get_conn(self) -> RucioCatalog:
        """A connected RucioCatalog; raises CatalogError (one line) if the server refuses it."""
        conn = self.get_connection(self.rucio_conn_id)
        return rucio_catalog(Connection(conn.conn_type or "rucio", conn.host, conn.port,
                                        conn.login, conn.password, conn.schema,
                                        conn.extra_dejson), self.rucio_conn_id)

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        return {"hidden_fields": [], "relabeling": {"login": "Username", "schema": "Scheme (http/https)"}}
