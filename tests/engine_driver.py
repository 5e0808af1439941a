"""Drive an Engine without Airflow: the loop the chunk operator runs, inline."""

from __future__ import annotations

import time
from pathlib import Path

import yaml

from ctaoflow import settings
from ctaoflow.backends import make_backend
from ctaoflow.catalog.embedded import EmbeddedCatalog
from ctaoflow.engine import Engine
from ctaoflow.spec.graph import topological_order
from ctaoflow.sites import load_sites
from ctaoflow.spec.model import Production

DATA = Path(__file__).parent / "data" / "productions"


def engine_for(spec: str | Path | dict, ledger_url: str | None = None) -> Engine:
    data = spec if isinstance(spec, dict) else yaml.safe_load(Path(spec).read_text())
    catalog = EmbeddedCatalog(settings.home() / "catalog")
    return Engine(Production.model_validate(data), catalog, load_sites(), make_backend,
                  ledger_url=ledger_url)


def run_chunk(engine: Engine, name: str, chunk: int, timeout: float = 60.0) -> None:
    result = engine.submit(name, chunk, revive=True)
    deadline = time.monotonic() + timeout
    while result.in_flight:
        assert time.monotonic() < deadline, f"{name} chunk {chunk} still running"
        statuses = {s: make_backend(engine.sites[s]).poll(ids)
                    for s, ids in result.in_flight.items()}
        if all(st.state.final for by_id in statuses.values() for st in by_id.values()):
            engine.collect(name, chunk, statuses)
            result = engine.submit(name, chunk)
        else:
            time.sleep(0.1)


def run_all(engine: Engine) -> None:
    engine.sync()
    for t in topological_order(engine.production):
        for chunk in engine.prepare(t.name):
            run_chunk(engine, t.name, chunk)
        engine.finalize(t.name)
