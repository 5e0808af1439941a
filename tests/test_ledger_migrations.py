"""The ledger's schema versions: a ledger made by the schema before Alembic (commit
0129e06, frozen in tests/data/ledger_0129e06.py) keeps its rows when opened by this
version, and gets the new column types; on SQLite and on PostgreSQL."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, select, text

from ctaoflow.engine import migrations
from ctaoflow.engine.ledger import FileRow, TransformationRow, dispose_engines, engine_for

OLD = Path(__file__).parent / "data" / "ledger_0129e06.py"
GIB = 1 << 30


def _old_ledger(url: str) -> None:
    """A ledger as 0129e06 made it (``create_all``, no alembic_version), with rows."""
    spec = importlib.util.spec_from_file_location("ledger_0129e06", OLD)
    old = sys.modules.setdefault(spec.name, importlib.util.module_from_spec(spec))
    spec.loader.exec_module(old)  # in sys.modules first: its annotations name its globals
    engine = create_engine(url)
    old.Base.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(old.ProductionRow.__table__.insert(), [{"name": "p", "uid": "abcd1234",
                     "status": "Active", "spec_hash": "h"}])
        conn.execute(old.TransformationRow.__table__.insert(), [
            {"production_id": 1, "name": "t", "type": "processing", "status": "Active",
             "flush_count": 0, "next_chunk": 3, "extra_runs": 0}])
        conn.execute(old.FileRow.__table__.insert(), [
            {"transformation_id": 1, "lfn": f"/ctao/{i}", "size": 1000 + i, "storages": [],
             "meta": {"run": i}, "status": "Unused", "error_count": 0} for i in range(5)])
    engine.dispose()


def _check_upgraded(url: str) -> None:
    engine = engine_for(url)
    with engine.begin() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() \
            == migrations.HEAD
        assert conn.execute(select(TransformationRow.next_chunk, TransformationRow.intake_at)
                            ).one() == (3, None)
        assert conn.execute(select(FileRow.size).order_by(FileRow.id)).scalars().all() == [
            1000, 1001, 1002, 1003, 1004]
        conn.execute(FileRow.__table__.insert(), [{"transformation_id": 1, "lfn": "/ctao/big",
                     "size": 3 * GIB, "storages": [], "meta": {}, "status": "Unused",
                     "error_count": 0}])
        assert conn.execute(select(FileRow.size).where(FileRow.lfn == "/ctao/big")
                            ).scalar() == 3 * GIB
        columns = {c["name"]: c for c in inspect(conn).get_columns("files")}
        indexes = {i["name"] for i in inspect(conn).get_indexes("files")}
        group = {c["name"]: c for c in inspect(conn).get_columns("tasks")}["group"]
    assert "ix_files_transformation_status" in indexes  # 0003, for the UI's counts
    assert "BIGINT" in str(columns["size"]["type"]).upper() or url.startswith("sqlite")
    assert "TEXT" in str(group["type"]).upper() or url.startswith("sqlite")  # 0004
    dispose_engines()


def test_head_names_the_newest_migration() -> None:
    assert ScriptDirectory(str(migrations.HERE)).get_current_head() == migrations.HEAD


def test_a_ledger_made_before_alembic_keeps_its_rows_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    _old_ledger(url)
    _check_upgraded(url)


def test_a_new_sqlite_ledger_is_stamped_at_head(tmp_path: Path) -> None:
    engine = engine_for(f"sqlite:///{tmp_path / 'ledger.db'}")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() \
            == migrations.HEAD
        assert "intake_at" in {c["name"] for c in inspect(conn).get_columns("transformations")}
    dispose_engines()


@pytest.mark.postgres
def test_a_ledger_made_before_alembic_keeps_its_rows_on_postgresql(
        ledger_postgres: str) -> None:
    _old_ledger(ledger_postgres)
    with create_engine(ledger_postgres).connect() as conn:  # the old type: 32-bit
        assert str(inspect(conn).get_columns("files")[3]["type"]) == "INTEGER"
    _check_upgraded(ledger_postgres)
