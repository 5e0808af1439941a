"""Grouping plugins: sizes, locality, flush rule, determinism."""

from __future__ import annotations

from ctaoflow.catalog.base import CatalogFile
from ctaoflow.engine.grouping import by_metadata, by_size, everything, plugin, standard
from ctaoflow.spec.model import Grouping


def files(n: int, storages=("A",), size=1, **meta) -> list[CatalogFile]:
    return [CatalogFile(f"/f{i:03d}", size, {**meta, "run": i // 3}, storages) for i in range(n)]


def lfns(groups) -> list[list[str]]:
    return [[f.lfn for f in g] for g in groups]


def test_standard_emits_partial_groups_only_on_flush() -> None:
    assert [len(g) for g in standard(files(12), 5, flush=False)] == [5, 5]
    assert [len(g) for g in standard(files(12), 5, flush=True)] == [5, 5, 2]


def test_standard_groups_by_replica_location() -> None:
    mixed = files(4, ("A",)) + [CatalogFile(f"/g{i}", 1, {}, ("B",)) for i in range(4)]
    groups = list(standard(sorted(mixed, key=lambda f: f.lfn), 3, flush=True))
    assert all(len({f.storages for f in g}) == 1 for g in groups)
    assert sorted(len(g) for g in groups) == [1, 1, 3, 3]


def test_by_size_respects_size_and_max_files() -> None:
    big = [CatalogFile("/big", int(5e9), {}, ("A",))]
    groups = list(by_size(big + files(7, size=int(4e8)), 1.0, 2, flush=True))
    assert [len(g) for g in groups] == [1, 2, 2, 2, 1]
    assert lfns(groups)[0] == ["/big"]


def test_by_metadata_one_task_per_run_on_flush() -> None:
    assert list(by_metadata(files(7), "run", None, flush=False)) == []
    assert lfns(by_metadata(files(7), "run", None, flush=True)) == [
        ["/f000", "/f001", "/f002"], ["/f003", "/f004", "/f005"], ["/f006"]]
    assert [len(g) for g in by_metadata(files(7), "run", 2, flush=False)] == [2, 2]


def test_all_is_one_group_at_flush() -> None:
    assert list(everything(files(4), flush=False)) == []
    assert [len(g) for g in everything(files(4), flush=True)] == [4]


def test_plugin_is_deterministic() -> None:
    group = plugin(Grouping(plugin="standard", group_size=4))
    assert lfns(group(files(30), True)) == lfns(group(files(30), True))


def test_by_size_gives_a_big_file_a_task_of_its_own() -> None:
    small = [CatalogFile(f"/{name}", int(4e8), {}, ("A",)) for name in "ac"]
    big = CatalogFile("/b", int(5e9), {}, ("A",))
    mixed = sorted([*small, big], key=lambda f: f.lfn)
    assert lfns(by_size(mixed, 1.0, None, flush=False)) == [["/b"]]
    assert lfns(by_size(mixed, 1.0, None, flush=True)) == [["/b"], ["/a", "/c"]]
