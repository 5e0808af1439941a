"""A second intake cycle over a 100,000-DID Rucio query of which 1,000 are new, against a
names-only ``list_dids`` of the same query in the same run.

The DIDs (``--dids``, default 100,000; 1 % more are added before the second cycle) are
registered in their own scope ``inc``, tagged by their count and reused by later runs
(~10 min for 100,000). The first cycle takes every DID into a fresh SQLite ledger; the
second lists names, fetches metadata and replicas of the new ones only and groups them.
Baseline: ``RucioCatalog.names`` of the same query, names only, best of 3. Target:
ratio <= 1.5. Needs the local Rucio server (services/rucio/start.sh). Writes
benchmarks/results/rucio_incremental_<dids>.json and prints it last.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._result import write_result  # noqa: E402
from tests.rucio_service import answers, rucio_settings  # noqa: E402

SCOPE = "inc"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dids", type=int, default=100_000, help="DIDs of the query")
    dids = parser.parse_args().dids
    new_count = max(1, dids // 100)
    settings = rucio_settings()
    host = f"http://127.0.0.1:{settings['RUCIO_PORT']}"
    if not answers(host):
        sys.exit(f"no Rucio server at {host}: run services/rucio/start.sh first")
    os.environ["CTAOFLOW_HOME"] = tempfile.mkdtemp(prefix="ctaoflow-inc-")
    from rucio.common.exception import Duplicate

    from ctaoflow.backends import make_backend
    from ctaoflow.catalog.base import CatalogFile
    from ctaoflow.catalog.rucio import RucioCatalog
    from ctaoflow.engine import Engine
    from ctaoflow.sites import load_sites
    from ctaoflow.spec.model import Production
    from ctaoflow.spec.query import Query

    catalog = RucioCatalog(host, username=settings["RUCIO_USERNAME"],
                           password=settings["RUCIO_PASSWORD"], scope=SCOPE, name="bench")
    try:
        catalog.client.add_scope("root", SCOPE)
    except Duplicate:
        pass
    tag = f"n{dids}"

    def register(first: int, count: int, run: str) -> float:
        started = time.monotonic()
        catalog.add_files((CatalogFile(f"/ctao/{SCOPE}/{tag}/{run}/f{i:07d}.h5", 1000 + i,
                                       {"inc": tag if run == "base" else f"{tag}_{run}",
                                        "particle": "gamma"})
                           for i in range(first, first + count)), "LOCAL-DISK")
        return time.monotonic() - started

    setup_s = register(0, dids, "base")  # known DIDs are skipped: fast when reused
    run = uuid.uuid4().hex[:8]  # this run's new DIDs carry their own value of 'inc'
    query = {"inc": {"in": [tag, f"{tag}_{run}"]}}
    production = Production.model_validate({
        "production": f"inc_{run}", "defaults": {"sites": ["local"]}, "transformations": [{
            "name": "process", "input": {"query": query},
            "grouping": {"plugin": "standard", "group_size": 100},
            "job": {"command": ["true"]}, "outputs": [{"name": "{task}.json"}]}]})
    engine = Engine(production, catalog, load_sites(), make_backend)
    started = time.monotonic()
    engine.prepare("process")
    first_s = time.monotonic() - started
    register_new_s = register(0, new_count, run)
    started = time.monotonic()
    engine.prepare("process")
    second_s = time.monotonic() - started
    files = engine.summary()["process"]["files"]
    assert sum(files.values()) == dids + new_count, files
    names_s = []
    for _ in range(3):
        started = time.monotonic()
        listed = sum(1 for _ in catalog.names(Query.parse(query)))
        names_s.append(time.monotonic() - started)
    assert listed == dids + new_count, listed
    write_result(f"rucio_incremental_{dids}", round(second_s, 2), "s",
                 baseline=round(min(names_s), 2), ratio=round(second_s / min(names_s), 2),
                 dids=dids, new=new_count, first_cycle_s=round(first_s, 2),
                 setup_s=round(setup_s, 1), register_new_s=round(register_new_s, 1),
                 names_runs_s=[round(s, 2) for s in names_s], target="ratio <= 1.5")


if __name__ == "__main__":
    main()
