"""Metadata queries and the embedded catalog: same semantics, bulk and idempotent."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from ctaoflow.catalog.base import CatalogError, OutputFile
from ctaoflow.catalog.embedded import EmbeddedCatalog
from ctaoflow.spec.query import Query


def test_parse_forms_and_round_trip() -> None:
    query = Query.parse({"particle": "gamma", "run": [1, 2], "zenith": {">=": 20, "<=": 40},
                         "site": {"nin": ["South"]}})
    assert str(query) == ("particle = 'gamma' AND run in (1, 2) AND site nin ('South',) "
                          "AND zenith >= 20 AND zenith <= 40")
    assert Query.parse(query.to_dict()) == query
    assert query.matches({"particle": "gamma", "run": 2, "zenith": 30})
    assert not query.matches({"particle": "gamma", "run": 2, "zenith": 50})
    assert not query.matches({"particle": "gamma", "run": 3, "zenith": 30})


@pytest.mark.parametrize("bad, message", [
    ({"zenith": {"~": 3}}, "zenith: unknown operator '~'"),
    ({"run": {"in": 3}}, "run: 'in' needs a non-empty list"),
    ({"run": {">": [1]}}, "run: '>' needs a string or a number"),
])
def test_bad_queries_name_the_key(bad: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        Query.parse(bad)


def _register(catalog: EmbeddedCatalog, tmp: Path, metas: list[dict]) -> list[str]:
    outputs = []
    for i, meta in enumerate(metas):
        path = tmp / f"f{i}.dat"
        path.write_text(str(i))
        outputs.append(OutputFile(lfn=f"/ctao/test/f{i:04d}.dat", path=str(path), metadata=meta))
    catalog.register(outputs, "LOCAL-DISK", "/ctao/test")
    return [o.lfn for o in outputs]


def test_embedded_catalog_agrees_with_condition_semantics(tmp_path: Path) -> None:
    rng = random.Random(7)
    values = [1, 2, 20, 40, 2.5, "a", "b", "20", True]
    metas = [{k: rng.choice(values) for k in ("x", "y") if rng.random() < 0.8}
             for _ in range(300)]
    catalog = EmbeddedCatalog(tmp_path / "cat")
    _register(catalog, tmp_path, metas)
    for op in ("=", "!=", ">", "<", ">=", "<="):
        for operand in (2, 20, "a", 2.5):
            query = Query.parse({"x": {op: operand}})
            expected = sorted(f"/ctao/test/f{i:04d}.dat" for i, m in enumerate(metas)
                              if query.matches(m))
            assert sorted(f.lfn for f in catalog.query(query)) == expected, str(query)
    for op in ("in", "nin"):
        query = Query.parse({"y": {op: [1, "a", 40]}, "x": {"!=": "b"}})
        expected = sorted(f"/ctao/test/f{i:04d}.dat" for i, m in enumerate(metas)
                          if query.matches(m))
        assert sorted(f.lfn for f in catalog.query(query)) == expected, str(query)


def test_register_is_idempotent_and_refuses_different_content(tmp_path: Path) -> None:
    catalog = EmbeddedCatalog(tmp_path / "cat")
    lfns = _register(catalog, tmp_path, [{"a": 1}, {"a": 2}])
    again = [OutputFile(lfn=lfn, path=str(tmp_path / f"f{i}.dat"), metadata={"a": 1})
             for i, lfn in enumerate(lfns)]
    assert catalog.register(again, "LOCAL-DISK", "/ctao/test") == 0
    assert catalog.dataset("/ctao/test") == lfns
    paths = catalog.local_paths(lfns)
    assert Path(paths[lfns[1]]).read_text() == "1"
    (tmp_path / "f1.dat").write_text("longer content")
    changed = OutputFile(lfn=lfns[1], path=str(tmp_path / "f1.dat"), metadata={})
    (Path(paths[lfns[1]])).unlink()  # a lost replica is re-placed ...
    with pytest.raises(CatalogError, match="already registered with 1 bytes"):
        catalog.register([changed], "LOCAL-DISK", "/ctao/test")  # ... but not with other bytes


def test_lfn_cannot_escape_the_storage(tmp_path: Path) -> None:
    catalog = EmbeddedCatalog(tmp_path / "cat")
    (tmp_path / "x").write_text("x")
    with pytest.raises(CatalogError, match="leaves the storage folder"):
        catalog.register([OutputFile(lfn="/ctao/../../../etc/x", path=str(tmp_path / "x"))],
                         "LOCAL-DISK", "d")
