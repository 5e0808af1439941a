"""A self-contained Airflow home for the demo and the tests (no server needed)."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]


def use_airflow_home(home: str | Path, quiet: bool = True) -> Path:
    """Point Airflow at ``home`` (SQLite metadata DB, the project's dags/); call before
    importing airflow. Returns the Airflow home."""
    airflow_home = Path(home) / "airflow"
    airflow_home.mkdir(parents=True, exist_ok=True)
    key_file = airflow_home / "fernet.key"  # connections' secrets are stored encrypted
    if not key_file.exists():
        from cryptography.fernet import Fernet

        key_file.write_bytes(Fernet.generate_key())
        key_file.chmod(0o600)
    os.environ.update({
        "AIRFLOW__CORE__FERNET_KEY": key_file.read_text().strip(),
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT / "plugins"),  # its nightly timetable
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{airflow_home / 'airflow.db'}",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING" if quiet else "INFO",
    })
    return airflow_home


def migrate_metadata_db() -> None:
    """Create or upgrade Airflow's metadata DB (about 15 s the first time)."""
    from airflow.utils.db import upgradedb

    upgradedb()
