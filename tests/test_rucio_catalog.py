"""RucioCatalog against the real local Rucio server (services/rucio); names are unique per run."""

from __future__ import annotations

import os
import random
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ctaoflow.catalog.base import CatalogError, CatalogFile, OutputFile
from ctaoflow.catalog.rucio import RucioCatalog, unsupported
from ctaoflow.spec.query import Query

pytestmark = pytest.mark.rucio

SERVICE = Path(__file__).resolve().parent.parent / "services" / "rucio"
RUN = "t" + uuid.uuid4().hex[:10]  # never numeric-looking: Rucio would recast it
RUN0 = random.randrange(10**6, 10**9)  # run numbers of this test run
BASE = f"/ctao/ctao/tests/{RUN}"
N_INPUTS = 40


def _metadata(i: int) -> dict[str, Any]:
    meta: dict[str, Any] = {"tag": RUN, "particle": ("gamma", "proton", "electron")[i % 3],
                            "energy": i * 0.5, "zenith": (20, 40, 60)[i % 3], "run_number": RUN0 + i // 4}
    if i % 5 == 0:
        meta["quality"] = "bad" if i % 10 == 0 else "good"
    return meta


INPUTS = {f"{BASE}/in/file_{i:03d}.h5": _metadata(i) for i in range(N_INPUTS)}


def _expected(spec: dict[str, Any]) -> set[str]:
    """LFNs matching ``spec`` with Rucio semantics (a condition needs its key present)."""
    query = Query.parse(spec)
    return {lfn for lfn, meta in INPUTS.items()
            if all(c.key in meta and c.matches(meta) for c in query.conditions)}


@pytest.fixture(scope="module")
def catalog(rucio_server: dict[str, Any]) -> Iterator[RucioCatalog]:
    cat = RucioCatalog(rucio_server["host"], username=rucio_server["username"],
                       password=rucio_server["password"], scope=rucio_server["scope"], name="rucio_test")
    yield cat
    cat.close()


@pytest.fixture(scope="module")
def inputs(catalog: RucioCatalog) -> dict[str, dict[str, Any]]:
    """40 catalog entries with metadata on LOCAL-DISK, plus a dataset carrying the same tag."""
    files = [CatalogFile(lfn, 1000 + i, meta) for i, (lfn, meta) in enumerate(INPUTS.items())]
    assert catalog.add_files(files, "LOCAL-DISK", f"{BASE}/in") == N_INPUTS
    catalog.client.set_metadata_bulk("ctao", f"{BASE}/in", {"tag": RUN, "particle": "gamma"})
    return INPUTS


def _outputs(tmp_path: Path, prefix: str, count: int, start: int = 0) -> list[OutputFile]:
    outputs = []
    for i in range(start, start + count):
        path = tmp_path / f"{prefix}_{i}.dl1.h5"
        path.write_bytes(f"{prefix} output {i}\n".encode() * (i + 1))
        outputs.append(OutputFile(f"{BASE}/{prefix}/out_{i:03d}.dl1.h5", str(path),
                                  {"tag": RUN, "kind": prefix, "index": i, "run_number": RUN0 + i}))
    return outputs


def _lfns(catalog: RucioCatalog, spec: dict[str, Any]) -> set[str]:
    return {f.lfn for f in catalog.query(Query.parse(spec))}


@pytest.mark.parametrize("spec", [
    {"particle": "gamma"},
    {"particle": {"!=": "gamma"}},
    {"energy": {">": 10}},
    {"energy": {"<": 3}},
    {"energy": {">=": 10, "<=": 12.5}},
    {"zenith": [20, 60]},
    {"particle": {"nin": ["gamma", "electron"]}},
    {"quality": {"!=": "bad"}},
    {"particle": ["gamma", "proton"], "zenith": {"in": [20, 40]}, "energy": {">": 5}},
    {"particle": {"!=": "gamma", "nin": ["proton", "muon"]}},
    {"zenith": {"=": 40, "in": [40, 60]}},
], ids=lambda spec: str(spec))
def test_every_operator(catalog: RucioCatalog, inputs: dict, spec: dict[str, Any]) -> None:
    spec = {"tag": RUN, **spec}
    assert not unsupported(Query.parse(spec))
    expected = _expected(spec)
    assert expected, "the spec should select something"
    assert _lfns(catalog, spec) == expected


def test_column_and_custom_keys_split(catalog: RucioCatalog, inputs: dict) -> None:
    mixed = {"tag": RUN, "particle": "gamma", "run_number": {">=": RUN0 + 2, "<": RUN0 + 5}}
    assert _lfns(catalog, mixed) == _expected(mixed) != set()
    columns_only = {"run_number": [RUN0 + 1, RUN0 + 3]}
    assert _lfns(catalog, columns_only) == _expected(columns_only) != set()


def test_query_returns_files_only_with_metadata_and_storages(catalog: RucioCatalog, inputs: dict) -> None:
    files = list(catalog.query(Query.parse({"tag": RUN, "particle": "gamma"})))
    assert {f.lfn for f in files} == _expected({"particle": "gamma"})  # not the dataset
    first = min(files, key=lambda f: f.lfn)
    assert first == CatalogFile(f"{BASE}/in/file_000.h5", 1000, storages=("LOCAL-DISK",))
    assert first.metadata == INPUTS[first.lfn]


def test_query_streams_by_pages(rucio_server: dict[str, Any], inputs: dict) -> None:
    small = RucioCatalog(rucio_server["host"], username=rucio_server["username"],
                         password=rucio_server["password"], page_size=7, name="rucio_pages")
    stream = small.query(Query.parse({"tag": RUN}))
    assert iter(stream) is stream  # a generator, not a list
    first = next(stream)
    rest = list(stream)
    assert {first.lfn, *(f.lfn for f in rest)} == set(INPUTS)
    assert len(rest) == N_INPUTS - 1
    small.close()


def test_unsupported_reports_what_rucio_cannot_express() -> None:
    problems = unsupported(Query.parse({"a.b": 1, "name": "x", "flag": {">": True}, "run": "123",
                                        "p": "gam*", "version": 3, "run_number": "x", "ok": "gamma"}))
    assert len(problems) == 7 and all("\n" not in p for p in problems)
    assert not any(p.startswith("ok") for p in problems)
    assert unsupported(Query.parse({"a": list(range(9)), "b": list(range(9))}))  # 81 filter groups


def test_register_places_files_with_metadata_dataset_and_rule(
        catalog: RucioCatalog, rucio_server: dict[str, Any], tmp_path: Path) -> None:
    outputs = _outputs(tmp_path, "reg", 12)
    dataset = f"{BASE}/reg"
    assert catalog.register(outputs, "CSCS-DISK", dataset) == 12
    found = {f.lfn: f for f in catalog.query(Query.parse({"tag": RUN, "kind": "reg"}))}
    assert set(found) == {o.lfn for o in outputs}
    for output in outputs:
        assert found[output.lfn].metadata == output.metadata
        assert found[output.lfn].storages == ("CSCS-DISK",)
        assert found[output.lfn].size == os.path.getsize(output.path)
    content = list(catalog.client.list_content("ctao", dataset))
    assert sorted(c["name"] for c in content) == sorted(o.lfn for o in outputs)
    rules = list(catalog.client.list_did_rules("ctao", dataset))
    assert [(r["rse_expression"], r["state"]) for r in rules] == [("CSCS-DISK", "OK")]

    paths = catalog.local_paths([o.lfn for o in outputs] + [f"{BASE}/no/such/file"])
    assert set(paths) == {o.lfn for o in outputs}
    for output in outputs:
        assert paths[output.lfn].startswith(f"{rucio_server['rse_dir']}/CSCS-DISK/")
        assert Path(paths[output.lfn]).read_bytes() == Path(output.path).read_bytes()


def test_reregister_is_a_noop(catalog: RucioCatalog, tmp_path: Path) -> None:
    outputs = _outputs(tmp_path, "again", 6)
    dataset = f"{BASE}/again"
    assert catalog.register(outputs[:4], "PIC-DISK", dataset) == 4
    assert catalog.register(outputs, "PIC-DISK", dataset) == 2
    assert catalog.register(outputs, "PIC-DISK", dataset) == 0
    replicas = list(catalog.client.list_replicas([{"scope": "ctao", "name": o.lfn} for o in outputs]))
    assert sorted(len(r["rses"]) for r in replicas) == [1] * 6
    assert len(list(catalog.client.list_content("ctao", dataset))) == 6
    assert len(list(catalog.client.list_did_rules("ctao", dataset))) == 1


def test_register_refuses_a_known_lfn_with_another_size(catalog: RucioCatalog, tmp_path: Path) -> None:
    [output] = _outputs(tmp_path, "clash", 1)
    catalog.register([output], "LOCAL-DISK", f"{BASE}/clash")
    Path(output.path).write_bytes(b"different content")
    with pytest.raises(CatalogError, match="already registered with"):
        catalog.register([output], "LOCAL-DISK", f"{BASE}/clash")


def _one_line(error: CatalogError, *, names: str, secret: str) -> None:
    message = str(error)
    assert "\n" not in message and names in message and secret not in message
    assert error.__cause__ is None and error.__suppress_context__


def test_wrong_password_is_one_line_without_the_password(rucio_server: dict[str, Any]) -> None:
    secret = "wrong-" + uuid.uuid4().hex
    with pytest.raises(CatalogError) as caught:
        RucioCatalog(rucio_server["host"], username=rucio_server["username"], password=secret,
                     name="rucio_bad_password")
    _one_line(caught.value, names="rucio_bad_password", secret=secret)
    assert rucio_server["host"] in str(caught.value) and "authenticat" in str(caught.value).lower()


def test_unreachable_server_is_one_line(rucio_server: dict[str, Any]) -> None:
    secret = "secret-" + uuid.uuid4().hex
    start = time.monotonic()
    with pytest.raises(CatalogError) as caught:
        RucioCatalog("http://127.0.0.1:9", username="someone", password=secret, name="rucio_nowhere")
    _one_line(caught.value, names="rucio_nowhere", secret=secret)
    assert "127.0.0.1:9" in str(caught.value) and time.monotonic() - start < 15


class _StopsRucioAfter(list):
    """Outputs whose iteration stops the Rucio server once ``after`` of them were read,
    i.e. in the middle of one ``register`` call, between two of its bulk pages."""

    def __init__(self, outputs: list[OutputFile], after: int) -> None:
        super().__init__(outputs)
        self.after = after

    def __iter__(self):
        for i, output in enumerate(super().__iter__()):
            if i == self.after:
                subprocess.run(["bash", str(SERVICE / "stop.sh")], check=True, capture_output=True)
            yield output


def test_server_stopped_mid_registration_loses_and_duplicates_nothing(
        rucio_server: dict[str, Any], tmp_path: Path) -> None:
    catalog = RucioCatalog(rucio_server["host"], username=rucio_server["username"],
                           password=rucio_server["password"], scope=rucio_server["scope"],
                           name="rucio_test", page_size=5)
    outputs = _outputs(tmp_path, "restart", 30)
    dataset = f"{BASE}/restart"
    try:
        with pytest.raises(CatalogError) as caught:
            catalog.register(_StopsRucioAfter(outputs, after=10), "DESY-ZN-DISK", dataset)
        _one_line(caught.value, names="rucio_test", secret=rucio_server["password"])
    finally:
        subprocess.run(["bash", str(SERVICE / "start.sh")], check=True, capture_output=True)
    assert len(list(catalog.client.list_content("ctao", dataset))) == 10  # two pages landed
    assert catalog.register(outputs, "DESY-ZN-DISK", dataset) == 20
    assert catalog.register(outputs, "DESY-ZN-DISK", dataset) == 0
    names = [c["name"] for c in catalog.client.list_content("ctao", dataset)]
    assert sorted(names) == sorted(o.lfn for o in outputs)
    assert _lfns(catalog, {"tag": RUN, "kind": "restart"}) == {o.lfn for o in outputs}
    catalog.close()
