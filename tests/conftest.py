"""Shared fixtures: an isolated ctaoflow home and a migrated Airflow metadata DB.

Service fixtures live in their own plugin modules and start what they need on
first use (reusing a running service): ``rucio_server``, ``slurm_cluster``,
``postgres_server`` (with ``ledger_postgres``, a fresh database per test); the
lstchain job environment (installed on first use): ``lstchain_env``.

``home`` runs a test on both ledgers, ``[sqlite]`` and ``[postgres]``, in modules marked
``ledgers`` (see ``pytest_generate_tests``): ``pytest -m postgres`` runs their PostgreSQL half.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Iterator

import pytest

pytest_plugins = ["tests.rucio_service", "tests.postgres_service", "tests.slurm_service",
                  "tests.airflow_service", "tests.distributed_service", "tests.lstchain_service",
                  "tests.ctapipe_service", "tests.browser_service"]

# Airflow reads its configuration at import: point it at a private home first.
_SESSION_HOME = Path(tempfile.mkdtemp(prefix="ctaoflow-tests-"))
os.environ.setdefault("CTAOFLOW_HOME", str(_SESSION_HOME))
from operators.environment import use_airflow_home  # noqa: E402

use_airflow_home(_SESSION_HOME)


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """Airflow's SQLite metadata DB, migrated once per session."""
    from operators.environment import migrate_metadata_db

    migrate_metadata_db()
    return Path(os.environ["AIRFLOW_HOME"])


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Tests marked ``ledgers`` (most engine modules, by a module-level ``pytestmark``) that
    use ``home`` run twice: ``[sqlite]`` and ``[postgres]`` (marked ``postgres``: a fresh
    database on the ledger's PostgreSQL server). ``sqlite_only`` keeps one test on SQLite."""
    node = metafunc.definition
    if ("home" in metafunc.fixturenames and node.get_closest_marker("ledgers")
            and not node.get_closest_marker("sqlite_only")):
        metafunc.parametrize("home", ["sqlite", pytest.param("postgres",
                                                             marks=pytest.mark.postgres)],
                             indirect=True)


@pytest.fixture
def home(request: pytest.FixtureRequest, tmp_path: Path,
         monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh ctaoflow home (ledger, embedded catalog, job folders) for one test; with the
    ``postgres`` parameter its ledger is a fresh PostgreSQL database
    (``$CTAOFLOW_LEDGER_URL``), dropped after the test."""
    monkeypatch.setenv("CTAOFLOW_HOME", str(tmp_path / "home"))
    if getattr(request, "param", "sqlite") != "postgres":
        yield tmp_path / "home"
        return
    server = request.getfixturevalue("postgres_server")
    url = server.fresh()
    monkeypatch.setenv("CTAOFLOW_LEDGER_URL", url)
    yield tmp_path / "home"
    from ctaoflow.engine.ledger import dispose_engines

    dispose_engines()
    server.drop(url)
    assert not (tmp_path / "home" / "ledger.db").exists(), "a SQLite ledger was opened too"
