"""The ledger's schema versions (Alembic), applied when a ledger is opened.

A new ledger gets the current tables and is stamped ``head``; a ledger of an older
version is upgraded in place. A ledger created before Alembic (by ``create_all``, no
``alembic_version`` table) is stamped ``BASELINE`` — its schema — and then upgraded, so
its rows stay. Two processes opening one ledger at once: the first migrates, the other
waits (a PostgreSQL advisory lock; a lock file beside a SQLite ledger).
"""

from __future__ import annotations

import fcntl
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from sqlalchemy import Connection, Engine, MetaData, inspect, text

if TYPE_CHECKING:
    from alembic.config import Config

HERE = Path(__file__).resolve().parent
BASELINE = "0001"  # the schema of commit 0129e06, created without Alembic
HEAD = "0004"  # the newest version in versions/ (a test checks): known without Alembic
_LOCK_KEY = 0x63746166  # the advisory lock of a PostgreSQL ledger's migrations


def upgrade(engine: Engine, metadata: MetaData) -> None:
    """Bring the ledger behind ``engine`` to the newest schema version, rows kept
    (Alembic is imported only when there is something to do)."""
    with engine.connect() as conn:  # the usual case, without a lock (or a lock file)
        if _version(conn) == HEAD:
            return
    with _exclusive(engine), engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
        current = _version(conn)
        if current == HEAD:
            return
        from alembic import command

        config = _config(conn, metadata)
        if current is None and "productions" not in inspect(conn).get_table_names():
            metadata.create_all(conn)
            command.stamp(config, "head")
            return
        if current is None:
            command.stamp(config, BASELINE)
        command.upgrade(config, "head")


def _version(conn: Connection) -> str | None:
    """The ledger's schema version; None before Alembic (or for a new ledger)."""
    if "alembic_version" not in inspect(conn).get_table_names():
        return None
    return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def _config(conn: Connection, metadata: MetaData) -> "Config":
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(HERE))
    config.attributes.update(connection=conn, metadata=metadata)
    return config


@contextmanager
def _exclusive(engine: Engine) -> Iterator[None]:
    """Hold a lock file beside a SQLite ledger file while it is migrated."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:" \
            or database.startswith("file:") or not Path(database).parent.is_dir():
        yield
        return
    with open(f"{database}.migrate-lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
