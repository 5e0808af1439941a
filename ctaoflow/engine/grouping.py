"""Grouping plugins: cut a transformation's unused files into tasks.

Every plugin follows DIRAC's rule: a group smaller than its target is emitted only
when the transformation is flushed (its parents are complete, or by hand). Plugins are
generators over files sorted by LFN, so the same files always give the same groups.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Callable, Iterable, Iterator

from ctaoflow.catalog.base import CatalogFile
from ctaoflow.spec.model import Grouping

Group = list[CatalogFile]


def standard(files: Iterable[CatalogFile], group_size: int, flush: bool) -> Iterator[Group]:
    """``group_size`` files per task, grouped by identical replica storages."""
    by_location: dict[tuple[str, ...], Group] = defaultdict(list)
    for file in files:
        bucket = by_location[file.storages]
        bucket.append(file)
        if len(bucket) == group_size:
            yield bucket
            by_location[file.storages] = []
    if flush:
        yield from (bucket for _, bucket in sorted(by_location.items()) if bucket)


def by_size(files: Iterable[CatalogFile], size_gb: float, max_files: int | None,
            flush: bool) -> Iterator[Group]:
    """Tasks of about ``size_gb``; a file of that size or more is a task of its own (the
    smaller files read before it keep waiting for theirs)."""
    limit = size_gb * 1e9
    by_location: dict[tuple[str, ...], tuple[Group, int]] = {}
    for file in files:
        if file.size >= limit:
            yield [file]
            continue
        bucket, total = by_location.get(file.storages, ([], 0))
        bucket.append(file)
        total += file.size
        if total >= limit or (max_files and len(bucket) >= max_files):
            yield bucket
            bucket, total = [], 0
        by_location[file.storages] = (bucket, total)
    if flush:
        yield from (bucket for _, (bucket, _) in sorted(by_location.items()) if bucket)


def by_metadata(files: Iterable[CatalogFile], key: str, group_size: int | None,
                flush: bool) -> Iterator[Group]:
    """One task per value of ``key`` (e.g. a run), or tasks of ``group_size`` within it.

    Without ``group_size`` a value's files are complete only at flush: files of a
    run may still be arriving.
    """
    by_value: dict[object, Group] = defaultdict(list)
    for file in files:
        bucket = by_value[file.metadata.get(key)]
        bucket.append(file)
        if group_size and len(bucket) == group_size:
            yield bucket
            by_value[file.metadata.get(key)] = []
    if flush:
        yield from (by_value[v] for v in sorted(by_value, key=repr) if by_value[v])


def everything(files: Iterable[CatalogFile], flush: bool) -> Iterator[Group]:
    """All files in one task (training): emitted only at flush."""
    if flush:
        group = list(files)
        if group:
            yield group


def plugin(grouping: Grouping) -> Callable[[Iterable[CatalogFile], bool], Iterator[Group]]:
    """The grouping function of a spec: ``f(files, flush) -> groups``."""
    if grouping.plugin == "standard":
        return lambda files, flush: standard(files, grouping.group_size, flush)
    if grouping.plugin == "by_size":
        return lambda files, flush: by_size(files, grouping.size_gb or 1.0,
                                            grouping.max_files, flush)
    if grouping.plugin == "by_metadata":
        size = grouping.group_size if "group_size" in grouping.model_fields_set else None
        return lambda files, flush: by_metadata(files, grouping.key or "run", size, flush)
    return everything
