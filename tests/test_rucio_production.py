"""The demo production with its inputs in a real Rucio server, through real Airflow."""

from __future__ import annotations

import json
import random
import uuid
from pathlib import Path

import pytest
import yaml
from sqlalchemy import func, select

from ctaoflow.catalog.rucio import RucioCatalog
from ctaoflow.demo.inputs import register_demo_inputs
from ctaoflow.engine import summarize
from ctaoflow.engine.ledger import JobRow, session_factory
from ctaoflow.spec.query import Query
from ctaoflow.spec.validation import load_production

pytestmark = pytest.mark.rucio
PROJECT = Path(__file__).parents[1]


@pytest.fixture
def rucio_demo(rucio_server, airflow_db, home, tmp_path, monkeypatch):
    """The demo spec renamed and narrowed to this test's inputs, with the catalog
    connection pointing at the local Rucio server."""
    tag = "t" + uuid.uuid4().hex[:8]
    spec = yaml.safe_load((PROJECT / "config/productions/demo.yaml").read_text())
    spec["production"] = f"rucio_{tag}"
    for t in spec["transformations"]:
        if "query" in t["input"] and "from" not in t["input"]:
            t["input"]["query"]["tag"] = tag
    folder = tmp_path / "productions"
    folder.mkdir()
    (folder / "demo.yaml").write_text(yaml.safe_dump(spec))
    monkeypatch.setenv("CTAOFLOW_PRODUCTIONS", str(folder))
    monkeypatch.setenv("AIRFLOW_CONN_CTAOFLOW_CATALOG", json.dumps({
        "conn_type": "rucio", "host": rucio_server["host"], "login": rucio_server["username"],
        "password": rucio_server["password"], "extra": {"account": "root"}}))
    catalog = RucioCatalog(rucio_server["host"], username=rucio_server["username"],
                           password=rucio_server["password"], scope=rucio_server["scope"],
                           name="test")
    # fresh run numbers, hence fresh LFNs: the server outlives test sessions
    register_demo_inputs(catalog, gamma=10, proton=5, first_run=random.randrange(10**5, 10**8),
                         extra={"tag": tag})
    yield spec["production"], folder / "demo.yaml", catalog
    catalog.close()


def test_demo_with_inputs_in_rucio(rucio_demo) -> None:
    from airflow.utils.cli import get_bagged_dag

    name, spec_path, catalog = rucio_demo
    assert get_bagged_dag(None, name).test().state == "success"
    production = load_production(spec_path)
    summary = summarize(production)
    assert all(s["status"] == {"Completed": 1} for s in summary.values()), summary

    # outputs: inherited + own metadata, in the transformation's dataset, with a rule
    dl1 = list(catalog.query(Query.parse({"production": name, "transformation": "process_gamma"})))
    assert len(dl1) == 2
    assert {f.metadata["particle"] for f in dl1} == {"gamma"}
    assert {f.metadata["data_level"] for f in dl1} == {"DL1"}
    assert {f.metadata["campaign"] for f in dl1} == {"demo"}
    dataset = f"{production.output_base}/process_gamma"
    content = {d["name"] for d in catalog.client.list_content("ctao", dataset)}
    assert content == {f.lfn for f in dl1}
    rules = list(catalog.client.list_did_rules("ctao", dataset))
    assert rules and rules[0]["rse_expression"] == "LOCAL-DISK"
    # children found them by query
    assert summary["merge_gamma"]["files"] == {"Processed": 2}
    (model,) = catalog.query(Query.parse({"production": name, "transformation": "train_classifier"}))
    assert model.metadata["model"] == "classifier"

    # a rerun registers nothing twice and runs no job again
    sessions = session_factory()
    with sessions() as session:
        jobs_before = session.scalar(select(func.count()).select_from(JobRow))
    assert get_bagged_dag(None, name).test().state == "success"
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(JobRow)) == jobs_before
    again = list(catalog.query(Query.parse({"production": name})))
    assert len(again) == len({f.lfn for f in again}) == sum(
        s["jobs"]["Done"] for s in summary.values())
