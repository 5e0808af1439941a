"""An opensearch-py client from a connection, and where it points without its secret.

A connection is a URL (``https://user:password@host:9200``, from
``$CTAOFLOW_OPENSEARCH``) or the fields of an Airflow ``opensearch`` connection (as the
provider's hook reads them: ``host``, ``port``, ``login``, ``password``, and in its
extra ``use_ssl``, ``verify_certs``; ``schema`` https also means TLS), which the Airflow
layer resolves from the ``ctaoflow_opensearch`` connection, or
``$AIRFLOW_CONN_CTAOFLOW_OPENSEARCH`` (URI or JSON) outside Airflow.
"""

from __future__ import annotations

import json
import os
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from opensearchpy import OpenSearch

Connection = dict[str, Any]


def _true(value: Any) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def from_url(url: str) -> Connection:
    """The fields of a URL: http(s)://[user:password@]host[:port][?verify_certs=false];
    Airflow's ``opensearch://`` URI form takes ``use_ssl`` from its query."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    if parts.scheme not in ("http", "https", "opensearch") or not parts.hostname:
        raise ValueError(f"OpenSearch connection {parts.scheme or '?'}://{parts.hostname or '?'}"
                         ": give http(s)://host:port (or an opensearch:// Airflow URI)")
    tls = parts.scheme == "https" or _true(query.get("use_ssl", False))
    return {"host": parts.hostname, "port": parts.port or 9200,
            "login": unquote(parts.username) if parts.username else None,
            "password": unquote(parts.password) if parts.password else None,
            "use_ssl": tls, "verify_certs": _true(query.get("verify_certs", tls))}


def from_environment() -> Connection | None:
    """``$CTAOFLOW_OPENSEARCH`` (a URL), else ``$AIRFLOW_CONN_CTAOFLOW_OPENSEARCH``
    (Airflow's URI or JSON form); None when neither is set."""
    url = os.environ.get("CTAOFLOW_OPENSEARCH")
    if url:
        return from_url(url)
    airflow = os.environ.get("AIRFLOW_CONN_CTAOFLOW_OPENSEARCH")
    if not airflow:
        return None
    if airflow.lstrip().startswith("{"):
        return from_fields(**json.loads(airflow))
    return from_url(airflow)


def from_fields(host: str | None = None, port: int | None = None, login: str | None = None,
                password: str | None = None, schema: str | None = None,
                extra: dict | str | None = None, **_: Any) -> Connection:
    """The fields of an Airflow ``opensearch`` connection."""
    extra = json.loads(extra) if isinstance(extra, str) and extra else (extra or {})
    if not host:
        raise ValueError("OpenSearch connection: no host; give the connection a host")
    if "://" in host:  # a host given with its scheme
        base = from_url(host)
        host, schema = base["host"], "https" if base["use_ssl"] else schema
    tls = _true(extra.get("use_ssl", False)) or (schema or "").lower() == "https"
    return {"host": host, "port": int(port or 9200), "login": login or None,
            "password": password or None, "use_ssl": tls,
            "verify_certs": _true(extra.get("verify_certs", tls))}


def where(conn: Connection) -> str:
    """The server as logs may show it: scheme, host and port, never the login or password."""
    return f"{'https' if conn.get('use_ssl') else 'http'}://{conn['host']}:{conn['port']}"


def make_client(conn: Connection, timeout: float = 10.0) -> OpenSearch:
    """A client that fails fast (no transport retries: the outbox is the retry)."""
    args: dict[str, Any] = {"hosts": [{"host": conn["host"], "port": conn["port"]}],
                            "use_ssl": bool(conn.get("use_ssl")),
                            "verify_certs": bool(conn.get("verify_certs")),
                            "ssl_show_warn": False, "timeout": timeout, "max_retries": 0,
                            "retry_on_timeout": False}
    if conn.get("login"):
        args["http_auth"] = (conn["login"], conn.get("password") or "")
    return OpenSearch(**args)
