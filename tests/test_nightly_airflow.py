"""Nightly productions on a real Airflow scheduler and triggerer: nights backfilled with
Airflow's own backfill, a late subrun, a timed-out night, a rerun and a reprocessing.

The jobs here are shell commands (the mechanics); tests/test_nightly_lstchain.py runs
the same shape with real lstchain.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
import yaml
from sqlalchemy import func, select

from ctaoflow.catalog.embedded import EmbeddedCatalog
from ctaoflow.engine import summarize
from ctaoflow.engine.ledger import JobRow, NightRow, ProductionRow, session_factory
from ctaoflow.spec.nights import for_night
from ctaoflow.spec.query import Query
from ctaoflow.spec.validation import load_production
from tests import nightly_data as data
from tests.engine_driver import DATA

pytestmark = pytest.mark.nightly
SPEC = DATA / "nightly_small.yaml"
DAG = "nightly_small"


def runs_of(cluster, dag_id: str) -> dict[str, dict]:
    """The DAG's runs by partition key (the night)."""
    runs = cluster.rest(f"dags/{dag_id}/dagRuns?limit=100")["dag_runs"]
    return {r["partition_key"]: r for r in runs if r.get("partition_key")}


def wait_nights(cluster, keys: list[str], timeout: float = 300) -> dict[str, dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = runs_of(cluster, DAG)
        if all(runs.get(k, {}).get("state") in ("success", "failed") for k in keys):
            return runs
        time.sleep(2)
    raise TimeoutError(f"nights {keys} not done after {timeout} s: "
                       f"{ {k: runs.get(k, {}).get('state') for k in keys} }; see {cluster.logs}")


@pytest.mark.airflow
def test_nights_backfilled_late_timed_out_rerun_and_reprocessed(airflow_cluster, tmp_path) -> None:
    cluster = airflow_cluster
    home = Path(cluster.env["CTAOFLOW_HOME"])
    spec_file = cluster.productions / SPEC.name
    shutil.copy(SPEC, spec_file)
    catalog = EmbeddedCatalog(home / "catalog")
    sessions = session_factory(f"sqlite:///{home / 'ledger.db'}")
    spec = load_production(SPEC)
    data.models(catalog, tmp_path)
    for night, runs in (("20261101", {1101: 2, 1102: 1}), ("20261102", {1201: 2})):
        data.run_summary(catalog, tmp_path, night, runs)
        for run, count in runs.items():
            data.subruns(catalog, tmp_path, night, run, range(count))
    cluster.wait_for_dag(DAG)

    # two nights with Airflow's backfill, one at a time, oldest first
    cluster.airflow("backfill", "create", "--dag-id", DAG, "--from-date", "2026-11-01",
                    "--to-date", "2026-11-02", "--max-active-runs", "1")
    runs = wait_nights(cluster, ["2026-11-01", "2026-11-02"])
    assert [runs[k]["state"] for k in ("2026-11-01", "2026-11-02")] == ["success", "success"]
    assert all(runs[k]["run_type"] == "backfill" for k in ("2026-11-01", "2026-11-02"))
    assert runs["2026-11-01"]["end_date"] <= runs["2026-11-02"]["start_date"]
    first = summarize(for_night(spec, "20261101"), sessions)
    second = summarize(for_night(spec, "20261102"), sessions)
    assert first["subrun"]["files"] == {"Processed": 3} and first["merge"]["tasks"] == {"Done": 2}
    assert second["subrun"]["files"] == {"Processed": 2} and second["merge"]["tasks"] == {"Done": 1}
    assert first["night_check"]["jobs"] == second["night_check"]["jobs"] == {"Done": 1}
    outputs = {f.lfn for f in catalog.query(Query.parse({"production": "nightly_small.20261102.v1"}))}
    assert outputs and all("/20261102/" in lfn for lfn in outputs)
    with sessions() as session:
        jobs_before = session.execute(select(JobRow.name, JobRow.status, JobRow.backend_id)
                                      .order_by(JobRow.name)).all()

    # a late subrun: the night waits (deferred) until the run summary's subruns are all in
    data.run_summary(catalog, tmp_path, "20261103", {1301: 3})
    data.subruns(catalog, tmp_path, "20261103", 1301, range(2))
    cluster.rest(f"dags/{DAG}/dagRuns", {"logical_date": None, "partition_key": "2026-11-03"})
    deadline = time.monotonic() + 120
    while True:
        assert time.monotonic() < deadline, "the night never started waiting"
        with sessions() as session:
            if session.scalar(select(func.count()).select_from(NightRow)
                              .where(NightRow.night == "20261103")):
                break
        time.sleep(1)
    time.sleep(3)
    assert runs_of(cluster, DAG)["2026-11-03"]["state"] == "running"
    data.subruns(catalog, tmp_path, "20261103", 1301, range(2, 3))
    assert wait_nights(cluster, ["2026-11-03"])["2026-11-03"]["state"] == "success"
    late = summarize(for_night(spec, "20261103"), sessions)
    assert late["merge"]["files"] == {"Processed": 3} and late["merge"]["tasks"] == {"Done": 1}

    # a night whose last subrun never comes: processed at the timeout, the gap reported
    data.run_summary(catalog, tmp_path, "20261104", {1401: 2})
    data.subruns(catalog, tmp_path, "20261104", 1401, range(1))
    cluster.rest(f"dags/{DAG}/dagRuns", {"logical_date": None, "partition_key": "2026-11-04"})
    assert wait_nights(cluster, ["2026-11-04"])["2026-11-04"]["state"] == "success"
    with sessions() as session:
        night = session.scalar(select(NightRow).where(NightRow.night == "20261104"))
        assert (night.status, night.missing) == ("TimedOut", ["run 1401: 1 of 2 subruns"])
    assert summarize(for_night(spec, "20261104"), sessions)["dl2"]["jobs"] == {"Done": 1}

    # clearing a finished night's run resumes it: nothing is submitted again
    run_id = runs_of(cluster, DAG)["2026-11-01"]["dag_run_id"]
    cluster.rest(f"dags/{DAG}/dagRuns/{run_id}/clear", {"dry_run": False})
    time.sleep(3)
    assert cluster.wait_run(DAG, run_id, timeout=300) == "success"
    with sessions() as session:
        night_jobs = session.execute(select(JobRow.name, JobRow.status, JobRow.backend_id)
                                     .order_by(JobRow.name)).all()
    assert [j for j in night_jobs if ".20261101." in j[0]] == [
        j for j in jobs_before if ".20261101." in j[0]]

    # reprocessing the night under a new version: new outputs beside the old, old rows kept
    raw = yaml.safe_load(SPEC.read_text())
    raw["nightly"]["version"] = "v2"
    spec_file.write_text(yaml.safe_dump(raw, sort_keys=False))
    v2 = load_production(spec_file)
    cluster.rest(f"dags/{DAG}/dagRuns", {"logical_date": None, "partition_key": "2026-11-01",
                                         "dag_run_id": "reprocess_v2__2026-11-01"})
    assert cluster.wait_run(DAG, "reprocess_v2__2026-11-01", timeout=300) == "success"
    assert summarize(for_night(v2, "20261101"), sessions)["dl2"]["jobs"] == {"Done": 2}
    assert summarize(for_night(spec, "20261101"), sessions) == first
    with sessions() as session:
        after = session.execute(select(JobRow.name, JobRow.status, JobRow.backend_id)
                                .order_by(JobRow.name)).all()
        names = set(session.scalars(select(ProductionRow.name)))
    assert [j for j in after if ".20261101.v1-" in j[0]] == [
        j for j in jobs_before if ".20261101.v1-" in j[0]]
    assert {"nightly_small.20261101.v1", "nightly_small.20261101.v2"} <= names
    old = {f.lfn for f in catalog.query(Query.parse({"production": "nightly_small.20261101.v1"}))}
    new = {f.lfn for f in catalog.query(Query.parse({"production": "nightly_small.20261101.v2"}))}
    assert len(old) == len(new) == 3 + 2 + 2 + 1 and not old & new
    assert all("/v2/20261101/" in lfn for lfn in new)
