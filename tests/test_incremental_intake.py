"""Incremental intake on the embedded catalog: a cycle lists names and fetches metadata
and replicas only for names the transformation does not know; replicas of unused files
are refreshed where grouping uses them. Catalog calls counted on the real catalog."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from pathlib import Path
from typing import Iterator, Sequence

import pytest
from sqlalchemy import select

from ctaoflow import settings
from ctaoflow.backends import make_backend
from ctaoflow.catalog.base import CatalogFile
from ctaoflow.catalog.embedded import EmbeddedCatalog
from ctaoflow.demo.inputs import register_demo_inputs
from ctaoflow.engine import Engine
from ctaoflow.engine.ledger import FileRow, TaskRow, TransformationRow
from ctaoflow.sites import load_sites
from ctaoflow.spec.model import Production
from ctaoflow.spec.query import Query

pytestmark = pytest.mark.ledgers  # [sqlite] and [postgres] (tests/conftest.py)

SPEC = {"production": "inc", "defaults": {"sites": ["local"]}, "transformations": [{
    "name": "process", "input": {"query": {"data_level": "DL0"}},
    "grouping": {"plugin": "standard", "group_size": 4},
    "job": {"command": ["true"]}, "outputs": [{"name": "{task}.json"}]}]}
# "process" reads the outputs of "make", which is not complete: no partial group is emitted
CHAINED = {**SPEC, "transformations": [
    {**SPEC["transformations"][0], "name": "make", "input": {"query": {"data_level": "RAW"}}},
    {**SPEC["transformations"][0], "input": {"from": "make"}}]}
MADE = {"production": "inc", "transformation": "make"}


class CountingCatalog(EmbeddedCatalog):
    """The embedded catalog, counting what intake asks of it."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.calls: Counter = Counter()
        self.fetched: list[str] = []

    def query(self, query: Query) -> Iterator[CatalogFile]:
        self.calls["query"] += 1
        return super().query(query)

    def names(self, query: Query, since: dt.datetime | None = None) -> Iterator[str]:
        self.calls["names"] += 1
        return super().names(query, since)

    def files(self, query: Query, lfns: Sequence[str]) -> Iterator[CatalogFile]:
        self.calls["files"] += 1
        self.fetched += lfns
        return super().files(query, lfns)

    def storages(self, lfns: Sequence[str]) -> dict[str, tuple[str, ...]]:
        self.calls["storages"] += 1
        return super().storages(lfns)


def _engine(spec: dict = SPEC) -> tuple[Engine, CountingCatalog]:
    catalog = CountingCatalog(settings.home() / "catalog")
    return Engine(Production.model_validate(spec), catalog, load_sites(), make_backend), catalog


def test_a_second_cycle_fetches_only_the_new_names(home: Path) -> None:
    engine, catalog = _engine()
    register_demo_inputs(catalog, gamma=10, proton=0)
    engine.prepare("process")
    assert len(catalog.fetched) == 10 and catalog.calls["query"] == 0
    catalog.fetched.clear()
    new = register_demo_inputs(catalog, gamma=3, proton=0, first_run=5000)
    engine.prepare("process")
    assert sorted(catalog.fetched) == sorted(new)  # 3 fetched, not 13
    catalog.fetched.clear()
    engine.prepare("process")
    assert catalog.fetched == [] and catalog.calls["files"] == 2  # nothing new: no fetch
    with engine.sessions() as session:
        assert len(session.scalars(select(FileRow)).all()) == 13
        (intake_at,) = session.scalars(select(TransformationRow.intake_at)).all()
    assert intake_at is not None and abs(intake_at - dt.datetime.utcnow()) < dt.timedelta(minutes=5)


def test_a_new_replica_of_an_unused_file_changes_its_group(home: Path) -> None:
    engine, catalog = _engine(CHAINED)
    lfns = register_demo_inputs(catalog, gamma=6, proton=0, extra=MADE)
    engine.prepare("process")  # one task of 4 on LOCAL-DISK; 2 files wait
    with engine.sessions() as session:
        waiting = session.scalars(select(FileRow.lfn).where(FileRow.status == "Unused")).all()
    assert len(waiting) == 2
    with catalog.db:  # the two waiting files and two new ones get a replica at CSCS
        catalog.db.executemany("UPDATE files SET storages = ? WHERE lfn = ?",
                               [("CSCS-DISK,LOCAL-DISK", lfn) for lfn in waiting])
    extra = register_demo_inputs(catalog, gamma=2, proton=0, first_run=7000, extra=MADE)
    with catalog.db:
        catalog.db.executemany("UPDATE files SET storages = ? WHERE lfn = ?",
                               [("CSCS-DISK,LOCAL-DISK", lfn) for lfn in extra])
    engine.prepare("process")
    with engine.sessions() as session:
        groups = {task.index: sorted(session.scalars(select(FileRow.lfn)
                                                     .where(FileRow.task_id == task.id)))
                  for task in session.scalars(select(TaskRow))}
        storages = set(json.dumps(s) for s in session.scalars(
            select(FileRow.storages).where(FileRow.lfn.in_(waiting))))
    assert storages == {json.dumps(["CSCS-DISK", "LOCAL-DISK"])}
    assert groups[1] == sorted(waiting + extra)  # grouped with the new files at CSCS
    assert set(groups[0]) <= set(lfns)


def test_files_checks_the_query_on_the_names_given(home: Path) -> None:
    catalog = EmbeddedCatalog(settings.home() / "catalog")
    lfns = register_demo_inputs(catalog, gamma=2, proton=2)
    gammas = [f.lfn for f in catalog.files(Query.parse({"particle": "gamma"}), lfns)]
    assert len(gammas) == 2 and all("gamma" in lfn for lfn in gammas)
    assert list(catalog.names(Query.parse({"particle": "proton"}))) == sorted(
        lfn for lfn in lfns if "proton" in lfn)
