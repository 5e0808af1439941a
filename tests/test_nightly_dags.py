"""A nightly production through Airflow: its timetable (nights as partitions) and one
night's DAG run with ``dag.test()``; tests/test_nightly_airflow.py runs nights on a real
scheduler and triggerer."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

from ctaoflow.engine import summarize
from ctaoflow.spec.nights import for_night
from ctaoflow.spec.validation import load_production
from tests import nightly_data as data
from tests.engine_driver import DATA

pytestmark = pytest.mark.ledgers  # [sqlite] and [postgres] (tests/conftest.py)

SPEC = DATA / "nightly_small.yaml"


def nightly_dag(monkeypatch: pytest.MonkeyPatch, folder: Path):
    from airflow.utils.cli import get_bagged_dag

    folder.mkdir(exist_ok=True)
    shutil.copy(SPEC, folder / SPEC.name)
    monkeypatch.setenv("CTAOFLOW_PRODUCTIONS", str(folder))
    return get_bagged_dag(None, "nightly_small")


def test_the_timetable_runs_each_morning_for_the_night_before(
        airflow_db, home, monkeypatch, tmp_path) -> None:
    from airflow.timetables.base import TimeRestriction
    from airflow.utils.types import DagRunType

    dag = nightly_dag(monkeypatch, tmp_path / "productions")
    timetable = dag.timetable
    assert timetable.summary == "nightly at 0 7 * * * (Atlantic/Canary)"
    start = dt.datetime(2026, 12, 1, 12, tzinfo=dt.timezone.utc)
    info = timetable.next_dagrun_info_v2(last_dagrun_info=None,
                                         restriction=TimeRestriction(start, None, True))
    # 07:00 in La Palma (WET, UTC+0 in winter) on the morning after the night
    assert info.run_after == dt.datetime(2026, 12, 2, 7, tzinfo=dt.timezone.utc)
    assert info.partition_key == "2026-12-01"
    assert timetable.generate_run_id(run_type=DagRunType.SCHEDULED, run_after=info.run_after,
                                     data_interval=None, partition_key="2026-12-01") \
        == "night__2026-12-01"
    summer = timetable.next_dagrun_info_v2(
        last_dagrun_info=None, restriction=TimeRestriction(
            dt.datetime(2026, 7, 1, 12, tzinfo=dt.timezone.utc), None, True))
    assert summer.run_after == dt.datetime(2026, 7, 2, 6, tzinfo=dt.timezone.utc)  # WEST
    assert summer.partition_key == "2026-07-01"
    assert [t.task_id for t in dag.tasks][:2] == ["sync", "night_data"]
    assert dag.max_active_runs == 2


def test_one_night_through_dag_test(airflow_db, home, monkeypatch, tmp_path) -> None:
    catalog = data.catalog()
    data.models(catalog, tmp_path)
    data.run_summary(catalog, tmp_path, "20261201", {2001: 2})
    data.subruns(catalog, tmp_path, "20261201", 2001, range(2))
    data.subruns(catalog, tmp_path, "20261202", 2002, range(2))
    dag = nightly_dag(monkeypatch, tmp_path / "productions")
    run = dag.test(run_conf={"night": "2026-12-01"})
    assert run.state == "success"
    counts = summarize(for_night(load_production(SPEC), "20261201"))
    assert counts["subrun"]["files"] == {"Processed": 2}
    assert counts["night_check"]["tasks"] == {"Done": 1}
    assert summarize(for_night(load_production(SPEC), "20261202"))["subrun"]["files"] == {}

    without = dag.test()  # a nightly run must name its night
    assert without.state == "failed"


def test_a_backfill_takes_whole_nights_oldest_first(airflow_db, home, monkeypatch, tmp_path) -> None:
    dag = nightly_dag(monkeypatch, tmp_path / "productions")
    utc = dt.timezone.utc
    infos = list(dag.timetable.iter_partition_dagrun_infos(
        earliest=dt.datetime(2026, 11, 30, tzinfo=utc), latest=dt.datetime(2026, 12, 2, tzinfo=utc)))
    assert [i.partition_key for i in infos] == ["2026-11-30", "2026-12-01", "2026-12-02"]
