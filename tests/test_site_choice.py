"""Site choice: replicas first, within slot limits; failed and paused sites avoided."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select

from ctaoflow.backends import JobState, SiteConfig, make_backend
from ctaoflow.catalog.base import OutputFile
from ctaoflow.catalog.embedded import EmbeddedCatalog
from ctaoflow.engine import Engine
from ctaoflow.engine.ledger import EventRow, JobRow, SiteRow
from ctaoflow.ops import report
from ctaoflow.spec.model import Production
from tests.engine_driver import engine_for
from tests.test_simulated_backend import Clock

pytestmark = pytest.mark.ledgers  # [sqlite] and [postgres] (tests/conftest.py)


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


def _simulated_sites(home: Path, clock: Clock, name: str, defaults: dict,
                     **options: dict) -> tuple[Engine, dict[str, SiteConfig]]:
    """An engine over simulated sites on a virtual clock (site name -> model options),
    running a one-file-per-task transformation with a 10-minute walltime."""
    sites = {site: SiteConfig(site, "simulated", slots=100, storages=(f"{site}-DISK",),
                              options={"state_dir": str(home / "sim"), "duration_sigma": 0.0,
                                       **model})
             for site, model in options.items()}
    production = Production.model_validate({
        "production": name, "defaults": {"sites": list(sites), **defaults,
                                         "resources": {"walltime": "10m"}},
        "transformations": [{"name": "t", "input": {"query": {"data_level": "DL0"}},
                             "grouping": {"group_size": 1},
                             "job": {"command": ["sim_telarray"]},
                             "outputs": [{"name": "{task}"}]}]})
    engine = Engine(production, EmbeddedCatalog(home / "catalog"), sites,
                    lambda site: make_backend(site, {"clock": clock}))
    return engine, sites


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


def test_work_waits_while_every_allowed_site_is_paused(home, monkeypatch) -> None:
    engine = _setup(home, monkeypatch, {"A": 10, "B": 10})
    _register(engine, home, "A-DISK", 3, 0)
    engine.sync()
    until = {"A": dt.datetime.utcnow() + dt.timedelta(hours=2),
             "B": dt.datetime.utcnow() + dt.timedelta(hours=1)}
    with engine.sessions.begin() as session:
        session.add_all(SiteRow(name=n, paused_until=t, reason="test") for n, t in until.items())
    result = engine.submit("t", engine.prepare("t")[0])
    assert _sites(engine) == {}
    assert result.in_flight == {} and result.held_until == until["B"]
    text = report.as_text(report.build(engine.production))
    assert "3 task(s) wait: every site allowed to them is paused" in text
    with engine.sessions.begin() as session:  # B's pause ends: the work goes there
        session.get(SiteRow, "B").paused_until = dt.datetime.utcnow() - dt.timedelta(seconds=1)
    result = engine.submit("t", 0)
    assert result.held_until is None and _sites(engine) == {"B": 3}


def test_a_paused_sites_queued_work_moves_elsewhere(home) -> None:
    """Site A's jobs wait 600 s in its queue, then run past their walltime (TIMEOUT);
    B runs jobs in 10 s. Both are modelled by the simulated backend on a virtual clock."""
    clock = Clock()
    engine, sites = _simulated_sites(home, clock, "moving", {"chunk_size": 5},
                                     A={"queue_wait_s": 600, "duration_s": 10_000},
                                     B={"duration_s": 10})
    _register(engine, home, "A-DISK", 10, 0)
    engine.sync()
    assert engine.prepare("t") == [0, 1]
    first = engine.submit("t", 0).in_flight
    clock.now += 1300  # chunk 0 waited 600 s, ran out of its 600 s walltime; chunk 1 queues
    second = engine.submit("t", 1).in_flight
    assert set(first) == set(second) == {"A"}

    poll = lambda ids: make_backend(sites["A"], {"clock": clock}).poll(ids)  # noqa: E731
    engine.collect("t", 0, {"A": poll(first["A"])})  # 5 TIMEOUTs in a row: A is paused
    assert {s.state for s in poll(second["A"]).values()} == {JobState.CANCELLED}
    engine.collect("t", 1, {"A": poll(second["A"])})
    for chunk in (0, 1):
        assert set(engine.submit("t", chunk).in_flight) == {"B"}
    with engine.sessions() as session:
        jobs = session.scalars(select(JobRow).order_by(JobRow.id)).all()
        moved = session.scalars(select(EventRow.message).where(EventRow.kind == "moved")).all()
    assert [j.state for j in jobs[:10]] == ["TIMEOUT"] * 5 + ["CANCELLED"] * 5
    assert [j.site for j in jobs[10:]] == ["B"] * 10
    assert moved == ["5 queued job(s) cancelled at paused site A, to run elsewhere"]


def test_an_infrastructure_retry_goes_to_another_site(home) -> None:
    """Site A holds the replicas but runs every job past its walltime (TIMEOUT, an
    infrastructure failure); the retry goes to B, though A would win on replicas."""
    clock = Clock()
    engine, sites = _simulated_sites(home, clock, "retry", {}, A={"duration_s": 10_000},
                                     B={"duration_s": 10})
    _register(engine, home, "A-DISK", 2, 0)
    engine.sync()
    [chunk] = engine.prepare("t")
    first = engine.submit("t", chunk).in_flight
    assert set(first) == {"A"}
    clock.now += 700  # past the 600 s walltime
    engine.collect("t", chunk, {"A": make_backend(sites["A"], {"clock": clock}).poll(first["A"])})
    assert set(engine.submit("t", chunk).in_flight) == {"B"}
    with engine.sessions() as session:
        jobs = session.scalars(select(JobRow).order_by(JobRow.id)).all()
    assert [(j.site, j.attempt, j.failure_class) for j in jobs] == [
        ("A", 1, "infrastructure"), ("A", 1, "infrastructure"), ("B", 2, None), ("B", 2, None)]
