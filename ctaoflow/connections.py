"""The one place where the ledger and the catalog of an entry point come from.

Every entry point (the DAGs' hook, the CLI, the report task, ``plan``, ``audit``,
monitoring) resolves ``ctaoflow_ledger`` and ``ctaoflow_catalog`` through ``resolve``:
``$CTAOFLOW_LEDGER_URL`` first (ledger only), then ``$AIRFLOW_CONN_CTAOFLOW_LEDGER`` /
``$AIRFLOW_CONN_CTAOFLOW_CATALOG`` (a URI or Airflow's JSON form), then the ``lookup``
given (Airflow's connection store, ``operators.hooks.connections``), else the embedded
defaults under ``$CTAOFLOW_HOME``. No Airflow here: connections arrive as ``Connection``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable
from urllib.parse import parse_qsl, unquote, urlsplit

from ctaoflow import settings
from ctaoflow.catalog.base import Catalog

if TYPE_CHECKING:
    from ctaoflow.catalog.rucio import RucioCatalog

LEDGER, CATALOG = "ctaoflow_ledger", "ctaoflow_catalog"
LEDGER_ENV = "CTAOFLOW_LEDGER_URL"
# how users write PostgreSQL (Airflow's get_uri gives postgres://) -> SQLAlchemy 2's name
_POSTGRES = {"postgres": "postgresql+psycopg", "postgresql": "postgresql+psycopg",
             "postgresql+psycopg2": "postgresql+psycopg"}


class ConnectionError(ValueError):  # noqa: A001 - the configuration's, not the OS's
    """A connection cannot be read; the message names it and the fix."""


@dataclass(frozen=True)
class Connection:
    """What an Airflow connection says, in Airflow's fields."""

    conn_type: str
    host: str | None = None
    port: int | None = None
    login: str | None = None
    password: str | None = None
    schema: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, conn_id: str, value: str) -> "Connection":
        """An ``AIRFLOW_CONN_*`` value: a URI (``type://login:pw@host:port/schema?extra``)
        or Airflow's JSON form."""
        text = value.strip()
        if text.startswith("{"):
            try:
                data = json.loads(text)
                extra = data.get("extra") or {}
                return cls(data.get("conn_type", ""), data.get("host"),
                           int(data["port"]) if data.get("port") else None, data.get("login"),
                           data.get("password"), data.get("schema"),
                           json.loads(extra) if isinstance(extra, str) else dict(extra))
            except (ValueError, TypeError, AttributeError) as exc:
                raise ConnectionError(f"connection {conn_id}: not Airflow's JSON form ({exc}); "
                                      'write {"conn_type": ..., "host": ...} or a URI') from None
        if "://" not in text:
            raise ConnectionError(f"connection {conn_id}: {text[:40]!r} is not a URI; write "
                                  "e.g. postgresql://user:password@host:5432/ledger")
        parts = urlsplit(text)
        return cls(parts.scheme.replace("-", "_"), unquote(parts.hostname or "") or None,
                   parts.port, unquote(parts.username) if parts.username else None,
                   unquote(parts.password) if parts.password else None,
                   unquote(parts.path.lstrip("/")) or None, dict(parse_qsl(parts.query)))


Lookup = Callable[[str], Connection | None]


def from_environment(conn_id: str) -> Connection | str | None:
    """``$AIRFLOW_CONN_<CONN_ID>``: Airflow's JSON form parsed, a URI as written."""
    value = os.environ.get(f"AIRFLOW_CONN_{conn_id.upper()}", "").strip()
    if value.startswith("{"):
        return Connection.parse(conn_id, value)
    return value or None


def ledger_url(conn: Connection | str | None) -> str:
    """The SQLAlchemy URL of a ledger connection in any form users write (``postgres://``,
    ``postgresql://``, ``postgresql+psycopg://``, ``sqlite:///path``, a Connection of type
    postgres or sqlite); ``ledger.default_url()`` for None."""
    if conn is None:
        from ctaoflow.engine.ledger import default_url

        return default_url()
    if isinstance(conn, str):
        scheme, sep, rest = conn.partition("://")
        if not sep:
            raise ConnectionError(f"ledger URL {conn[:40]!r}: not a URL; write e.g. "
                                  "postgresql://user:password@host:5432/ledger")
        return f"{_POSTGRES.get(scheme, scheme)}://{rest}"
    if conn.conn_type == "sqlite":
        return f"sqlite:///{conn.host or conn.schema}"
    if conn.conn_type not in _POSTGRES:
        raise ConnectionError(f"connection {LEDGER}: type {conn.conn_type!r}; give it type "
                              "postgres (or a sqlite:/// URI)")
    from sqlalchemy.engine import URL

    return URL.create("postgresql+psycopg", conn.login, conn.password, conn.host, conn.port,
                      conn.schema).render_as_string(hide_password=False)


def catalog(conn: Connection | str | None) -> Catalog:
    """The catalog of a connection: Rucio for type rucio (see ``rucio_catalog``), the
    embedded catalog under ``$CTAOFLOW_HOME`` for None."""
    if conn is None:
        from ctaoflow.catalog.embedded import EmbeddedCatalog

        return EmbeddedCatalog(settings.home() / "catalog")
    if isinstance(conn, str):
        conn = Connection.parse(CATALOG, conn)
    if conn.conn_type != "rucio":
        raise ConnectionError(f"connection {CATALOG}: type {conn.conn_type!r}; give it type "
                              "rucio, or remove it for the embedded catalog")
    return rucio_catalog(conn, CATALOG)


def rucio_catalog(conn: Connection, name: str) -> "RucioCatalog":
    """A RucioCatalog from a connection: host (``http(s)://host`` or a bare name; schema
    the scheme), port, login, password, and in extra ``auth_host``, ``account`` (root),
    ``auth_type`` (userpass), ``token``, ``scope`` (ctao), ``ca_cert``,
    ``rule_expression``, ``prefer`` (list of RSEs)."""
    from ctaoflow.catalog.rucio import RucioCatalog

    extra, host = conn.extra, conn.host or ""
    if "://" not in host:
        host = f"{conn.schema or 'https'}://{host}"
    if conn.port:
        host = f"{host.rstrip('/')}:{conn.port}"
    return RucioCatalog(
        host, auth_host=extra.get("auth_host"), account=extra.get("account", "root"),
        auth_type=extra.get("auth_type", "userpass"), username=conn.login,
        password=conn.password, token=extra.get("token"), scope=extra.get("scope", "ctao"),
        ca_cert=extra.get("ca_cert"), rule_expression=extra.get("rule_expression"),
        prefer=extra.get("prefer", ()), metadata_plugin=extra.get("metadata_plugin", "JSON"),
        name=name)


@dataclass(frozen=True)
class Resolved:
    """An entry point's ledger URL and catalog connection (None: embedded)."""

    ledger_url: str
    catalog: Connection | str | None


def resolve(lookup: Lookup | None = None, ledger: str = LEDGER,
            catalog_id: str = CATALOG) -> Resolved:
    """The ledger and catalog every entry point uses (see the module's docstring)."""

    def find(conn_id: str) -> Connection | str | None:
        return from_environment(conn_id) or (lookup(conn_id) if lookup else None)

    explicit = os.environ.get(LEDGER_ENV)
    return Resolved(ledger_url(explicit or find(ledger)), find(catalog_id))
