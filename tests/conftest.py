"""Shared fixtures: an isolated ctaoflow home and a migrated Airflow metadata DB.

Service fixtures live in their own plugin modules and start what they need on
first use (reusing a running service): ``rucio_server``, ``slurm_cluster``,
``postgres_server`` (with ``ledger_postgres``, a fresh database per test); the
lstchain job environment (installed on first use): ``lstchain_env``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

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


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh ctaoflow home (ledger, embedded catalog, job folders) for one test."""
    monkeypatch.setenv("CTAOFLOW_HOME", str(tmp_path / "home"))
    return tmp_path / "home"
