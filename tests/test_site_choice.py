"""Site choice: replicas first, within slot limits; failed and paused sites avoided."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path

import yaml
from sqlalchemy import select

from ctaoflow.catalog.base import OutputFile
from ctaoflow.ledger import JobRow, SiteRow
from tests.engine_driver import engine_for


def _setup(home: Path, monkeypatch, slots: dict[str, int]) -> object:
    sites = {name: {"backend": "local", "slots": n, "storages": [f"{name}-DISK"],
                    "options": {"root": str(home / f"spool-{name}")}} for name, n in slots.items()}
    path = home.parent / "sites.yaml"
    path.write_text(yaml.safe_dump({"sites": sites}))
    monkeypatch.setenv("CTAOFLOW_SITES", str(path))
    engine = engine_for({"production": "where", "defaults": {"sites": list(slots)},
                         "transformations": [{
                             "name": "t", "input": {"query": {"data_level": "DL0"}},
                             "grouping": {"group_size": 1},
                             "job": {"command": ["sleep", "30"]},
                             "outputs": [{"name": "{task}"}]}]})
    return engine


def _register(engine, home: Path, storage: str, count: int, first: int) -> None:
    src = home / "src"
    src.mkdir(parents=True, exist_ok=True)
    outputs = []
    for i in range(first, first + count):
        (src / str(i)).write_text(str(i))
        outputs.append(OutputFile(f"/ctao/x/{i:04d}", str(src / str(i)), {"data_level": "DL0"}))
    engine.catalog.register(outputs, storage, "/ctao/x")


def _sites(engine) -> Counter:
    with engine.sessions() as session:
        jobs = session.scalars(select(JobRow)).all()
    for site in {j.site for j in jobs}:  # no need to let them sleep
        engine.backend_for(engine.sites[site]).cancel([j.backend_id for j in jobs
                                                       if j.site == site])
    return Counter(j.site for j in jobs)


def test_jobs_go_to_their_replicas_until_the_site_is_full(home, monkeypatch) -> None:
    engine = _setup(home, monkeypatch, {"A": 3, "B": 10})
    _register(engine, home, "A-DISK", 5, 0)
    _register(engine, home, "B-DISK", 2, 100)
    engine.sync()
    engine.submit("t", engine.prepare("t")[0])
    assert _sites(engine) == {"A": 3, "B": 4}


def test_a_paused_site_gets_no_new_jobs(home, monkeypatch) -> None:
    engine = _setup(home, monkeypatch, {"A": 10, "B": 10})
    _register(engine, home, "A-DISK", 4, 0)
    engine.sync()
    with engine.sessions.begin() as session:
        session.add(SiteRow(name="A", paused_until=dt.datetime.utcnow() + dt.timedelta(hours=1)))
    engine.submit("t", engine.prepare("t")[0])
    assert _sites(engine) == {"B": 4}
