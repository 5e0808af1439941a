"""Incremental intake against the real local Rucio server: ``names`` with ``since`` lists
only DIDs created after it (``created_after``), and a second intake cycle fetches
metadata and replicas only for the new names."""

from __future__ import annotations

import datetime as dt
import random
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from ctaoflow.backends import make_backend
from ctaoflow.catalog.base import CatalogFile
from ctaoflow.catalog.rucio import RucioCatalog
from ctaoflow.engine import Engine
from ctaoflow.engine.intake import INTAKE_MARGIN
from ctaoflow.sites import load_sites
from ctaoflow.spec.model import Production
from ctaoflow.spec.query import Query

pytestmark = pytest.mark.rucio
RUN = "i" + uuid.uuid4().hex[:10]
RUN_NUMBER = random.randrange(10**6, 10**9)  # a DID column: created_after applies
BASE = f"/ctao/ctao/tests/{RUN}"


class CountingRucio(RucioCatalog):
    """The Rucio catalog, recording the names whose metadata intake fetched."""

    fetched: list[str]

    def files(self, query: Query, lfns: Sequence[str]) -> Iterator[CatalogFile]:
        self.fetched += lfns
        return super().files(query, lfns)


@pytest.fixture
def catalog(rucio_server: dict[str, Any]) -> Iterator[CountingRucio]:
    cat = CountingRucio(rucio_server["host"], username=rucio_server["username"],
                        password=rucio_server["password"], scope=rucio_server["scope"],
                        name="rucio_incremental")
    cat.fetched = []
    yield cat
    cat.close()


def _add(catalog: RucioCatalog, first: int, count: int, tag: str) -> list[str]:
    files = [CatalogFile(f"{BASE}/in/f{i:04d}.h5", 3 << 30,
                         {"tag": tag, "data_level": "DL0", "run_number": RUN_NUMBER + first})
             for i in range(first, first + count)]
    assert catalog.add_files(files, "LOCAL-DISK", f"{BASE}/in") == count
    return [f.lfn for f in files]


def test_names_since_lists_only_dids_created_after(catalog: CountingRucio) -> None:
    old = _add(catalog, 0, 4, "names")
    time.sleep(1.5)
    middle = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    time.sleep(1.5)
    new = _add(catalog, 4, 3, "names")
    columns = Query.parse({"run_number": {"in": [RUN_NUMBER, RUN_NUMBER + 4]}})
    assert sorted(catalog.names(columns)) == sorted(old + new)
    assert sorted(catalog.names(columns, since=middle)) == sorted(new)
    custom = Query.parse({"tag": "names"})  # custom keys: Rucio lists every match
    assert set(old + new) <= set(catalog.names(custom, since=middle))
    (big,) = catalog.files(custom, new[:1])
    assert big.size == 3 << 30 and big.storages == ("LOCAL-DISK",)


def test_a_second_cycle_fetches_only_new_dids(catalog: CountingRucio, home: Path) -> None:
    production = Production.model_validate({
        "production": f"inc_{RUN}", "defaults": {"sites": ["local"]}, "transformations": [{
            "name": "process", "input": {"query": {"tag": f"cycle{RUN}", "data_level": "DL0"}},
            "grouping": {"plugin": "standard", "group_size": 2},
            "job": {"command": ["true"]}, "outputs": [{"name": "{task}.json"}]}]})
    engine = Engine(production, catalog, load_sites(), make_backend)
    first = _add(catalog, 100, 6, f"cycle{RUN}")
    engine.prepare("process")
    assert sorted(catalog.fetched) == sorted(first)
    catalog.fetched.clear()
    with engine.sessions.begin() as session:  # the last intake was long ago: all relisted,
        row = engine.row(session, "process")  # known names are still not fetched again
        row.intake_at -= 10 * INTAKE_MARGIN
    second = _add(catalog, 200, 2, f"cycle{RUN}")
    engine.prepare("process")
    assert sorted(catalog.fetched) == sorted(second)
    assert engine.summary()["process"]["files"] == {"Assigned": 8}
