"""RucioHook: an Airflow connection of type ``rucio`` turned into a RucioCatalog.

Connection fields: host (``http(s)://host``, or a bare host name), port, login
(userpass identity), password, and in ``extra``: ``auth_host``, ``account`` (default
``root``), ``auth_type`` (``userpass`` | ``oidc`` | ``token``), ``token``, ``scope``
(default ``ctao``), ``ca_cert``, ``rule_expression``, ``prefer`` (list of RSEs).
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseHook

from ctaoflow.catalog.rucio import RucioCatalog


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
        extra: dict[str, Any] = conn.extra_dejson
        host = conn.host or ""
        if "://" not in host:
            host = f"{conn.schema or 'https'}://{host}"
        if conn.port:
            host = f"{host.rstrip('/')}:{conn.port}"
        return RucioCatalog(
            host, auth_host=extra.get("auth_host"), account=extra.get("account", "root"),
            auth_type=extra.get("auth_type", "userpass"), username=conn.login,
            password=conn.password, token=extra.get("token"), scope=extra.get("scope", "ctao"),
            ca_cert=extra.get("ca_cert"), rule_expression=extra.get("rule_expression"),
            prefer=extra.get("prefer", ()), name=self.rucio_conn_id)

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        return {"hidden_fields": [], "relabeling": {"login": "Username", "schema": "Scheme (http/https)"}}
