"""pytest plugin: the ledger's PostgreSQL cluster (services/postgres) as fixtures.

``postgres_server`` (session) reuses a cluster already answering on its port; otherwise
it runs ``services/postgres/start.sh`` (which installs postgresql-15 on first use),
saying so in one line. The cluster is left running: ``services/postgres/stop.sh`` stops
it. ``ledger_postgres`` gives each test a fresh, empty database's URL; the databases are
dropped at the end of the session.
"""

from __future__ import annotations

import socket
import subprocess
import time
import uuid
from pathlib import Path
from typing import Iterator

import pytest

from tests.service_notice import announce

SERVICE = Path(__file__).resolve().parent.parent / "services" / "postgres"


def postgres_settings() -> dict[str, str]:
    """The variables of services/postgres/env.sh, as the scripts see them."""
    names = ("LEDGER_PG_PORT", "LEDGER_PG_USER", "LEDGER_PG_PASSWORD", "LEDGER_PG_DB")
    script = f"source {SERVICE / 'env.sh'}; " + "; ".join(f'printf "%s\\0" "${n}"' for n in names)
    values = subprocess.run(["bash", "-c", script], check=True, capture_output=True,
                            text=True).stdout
    return dict(zip(names, values.split("\0")))


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class PostgresServer:
    """The running cluster: URLs of the ledger role, and fresh databases made on demand."""

    def __init__(self, port: str, user: str, password: str, database: str) -> None:
        self.base = f"postgresql+psycopg://{user}:{password}@127.0.0.1:{port}"
        self.database = database
        self.made: list[str] = []

    def url(self, database: str | None = None) -> str:
        return f"{self.base}/{database or self.database}"

    def fresh(self) -> str:
        """The URL of a new, empty database, collating text as a deployment's server usually
        does (ICU en-US, not the cluster's C), so an ORDER BY on names is tested as it runs."""
        name = f"ledger_{uuid.uuid4().hex[:12]}"
        self._admin(f"CREATE DATABASE \"{name}\" TEMPLATE template0 LOCALE 'C.UTF-8' "
                    "LOCALE_PROVIDER icu ICU_LOCALE 'en-US'")
        self.made.append(name)
        return self.url(name)

    def drop(self, url: str) -> None:
        """Drop the database of ``url`` (one ``fresh`` made), closing its connections."""
        import psycopg

        name = url.rsplit("/", 1)[1]
        for attempt in range(20):  # FORCE cannot end an autovacuum worker: it ends soon
            try:
                self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                break
            except (psycopg.errors.InsufficientPrivilege, psycopg.errors.ObjectInUse):
                if attempt == 19:
                    raise
                time.sleep(0.5)
        self.made.remove(name)

    def drop_all(self) -> None:
        for name in list(self.made):
            self.drop(self.url(name))

    def _admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(self.url().replace("+psycopg", ""), autocommit=True) as conn:
            conn.execute(sql)


@pytest.fixture(scope="session")
def postgres_server(pytestconfig: pytest.Config) -> Iterator[PostgresServer]:
    """The ledger's PostgreSQL cluster, started if needed; fresh databases dropped after."""
    settings = postgres_settings()
    if not _listening(int(settings["LEDGER_PG_PORT"])):
        announce(pytestconfig, f"postgres_server: starting PostgreSQL on 127.0.0.1:"
                 f"{settings['LEDGER_PG_PORT']}: services/postgres/start.sh (left running "
                 "afterwards; services/postgres/stop.sh stops it)")
        result = subprocess.run(["bash", str(SERVICE / "start.sh")], check=False,
                                capture_output=True, text=True)
        if result.returncode:
            tail = (result.stdout + result.stderr).strip().splitlines()[-5:]
            pytest.fail("services/postgres/start.sh failed: " + " | ".join(tail), pytrace=False)
    server = PostgresServer(*settings.values())
    yield server
    from ctaoflow.engine.ledger import dispose_engines

    dispose_engines()
    server.drop_all()


@pytest.fixture
def ledger_postgres(postgres_server: PostgresServer) -> str:
    """The SQLAlchemy URL of a fresh, empty PostgreSQL database for one test's ledger."""
    return postgres_server.fresh()
