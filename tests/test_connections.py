"""One ledger and one catalog for every entry point: the connection forms users write,
and ``ctaoflow status`` reading the PostgreSQL ledger its connection names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from ctaoflow import cli
from ctaoflow.catalog.embedded import EmbeddedCatalog
from ctaoflow.connections import Connection, ConnectionError, catalog, ledger_url, resolve
from tests.engine_driver import DATA, engine_for

PG = "postgresql+psycopg://ctao:s%40cret@db.example:5432/ledger"


@pytest.mark.parametrize("written", [
    "postgres://ctao:s%40cret@db.example:5432/ledger",  # Airflow's get_uri
    "postgresql://ctao:s%40cret@db.example:5432/ledger",
    "postgresql+psycopg2://ctao:s%40cret@db.example:5432/ledger",
    PG])
def test_postgresql_urls_in_every_form_name_the_installed_driver(written: str) -> None:
    assert ledger_url(written) == PG


def test_a_sqlite_url_is_kept(tmp_path: Path) -> None:
    assert ledger_url(f"sqlite:///{tmp_path}/l.db") == f"sqlite:///{tmp_path}/l.db"


def test_no_connection_is_the_sqlite_ledger_under_the_home(home: Path) -> None:
    assert resolve().ledger_url == f"sqlite:///{home / 'ledger.db'}"
    assert isinstance(catalog(resolve().catalog), EmbeddedCatalog)


def test_a_json_connection_in_the_environment(home: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_CTAOFLOW_LEDGER", json.dumps({
        "conn_type": "postgres", "host": "db.example", "port": 5432, "login": "ctao",
        "password": "s@cret", "schema": "ledger"}))
    assert resolve().ledger_url == PG


def test_a_uri_connection_in_the_environment_and_the_explicit_url(
        home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_CTAOFLOW_LEDGER", "postgres://ctao:s%40cret@db.example:5432/ledger")
    assert resolve().ledger_url == PG
    monkeypatch.setenv("CTAOFLOW_LEDGER_URL", f"sqlite:///{home}/other.db")
    assert resolve().ledger_url == f"sqlite:///{home}/other.db"


def test_an_airflow_connection_of_type_postgres(home: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.models.connection import Connection as AirflowConnection

    from operators.hooks.connections import lookup

    stored = AirflowConnection(conn_id="ctaoflow_ledger", conn_type="postgres",
                               host="db.example", port=5432, login="ctao",
                               password="s@cret", schema="ledger")
    assert stored.get_uri().startswith("postgres://")  # what SQLAlchemy 2 refuses
    monkeypatch.setenv("AIRFLOW_CONN_LEDGER_IN_AIRFLOW", stored.as_json())
    found = lookup("ledger_in_airflow")  # through Airflow's own secrets search
    assert found == Connection("postgres", "db.example", 5432, "ctao", "s@cret", "ledger", {})
    monkeypatch.delenv("AIRFLOW_CONN_LEDGER_IN_AIRFLOW")
    assert resolve(lambda conn_id: found).ledger_url == PG
    assert lookup("ledger_in_airflow") is None


def test_a_rucio_catalog_connection_and_wrong_types_say_the_fix(home: Path) -> None:
    with pytest.raises(ConnectionError, match="give it type rucio"):
        catalog(Connection("postgres", "db"))
    with pytest.raises(ConnectionError, match="give it type postgres"):
        ledger_url(Connection("mysql", "db"))
    with pytest.raises(ConnectionError, match="not a URI"):
        Connection.parse("ctaoflow_catalog", "db.example")
    rucio = Connection.parse("ctaoflow_catalog", json.dumps({
        "conn_type": "rucio", "host": "http://127.0.0.1", "port": 1, "login": "u",
        "password": "p"}))
    assert (rucio.conn_type, rucio.host, rucio.port) == ("rucio", "http://127.0.0.1", 1)


@pytest.mark.postgres
def test_status_reads_the_postgresql_ledger_of_the_connection(
        home: Path, ledger_postgres: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from ctaoflow.demo.inputs import register_demo_inputs

    data = yaml.safe_load((DATA / "chain.yaml").read_text())
    spec = tmp_path / "chain.yaml"
    spec.write_text(yaml.safe_dump(data))
    engine = engine_for(data, ledger_postgres)
    register_demo_inputs(engine.catalog, gamma=7, proton=0)
    engine.sync()
    engine.prepare("process_gamma")
    monkeypatch.setenv("AIRFLOW_CONN_CTAOFLOW_LEDGER",
                       ledger_postgres.replace("postgresql+psycopg://", "postgres://"))
    with pytest.raises(SystemExit) as done:
        cli.main(["status", str(spec)])
    out = capsys.readouterr().out
    assert done.value.code == 0
    assert "Assigned" in out and "Unused" in out  # 5 grouped, 2 waiting: from PostgreSQL
    assert not (home / "ledger.db").exists()  # the SQLite default was never opened
