"""The file catalog interface: query by metadata, locate replicas, register outputs."""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

from ctaoflow.spec.query import Query


@dataclass(frozen=True)
class CatalogFile:
    """A file known to the catalog: its LFN, size in bytes, metadata and replica storages."""

    lfn: str
    size: int
    metadata: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    storages: tuple[str, ...] = ()


@dataclass(frozen=True)
class OutputFile:
    """A file a job produced, to be registered under ``lfn`` with ``metadata``."""

    lfn: str
    path: str  # where the job left it on local disk
    metadata: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


class CatalogError(RuntimeError):
    """A catalog call failed; the message is one line and names the endpoint."""


class Catalog(ABC):
    """What ctaoflow needs from a file catalog. Every call is bulk."""

    @abstractmethod
    def query(self, query: Query) -> Iterator[CatalogFile]:
        """Stream the files matching ``query`` (never the whole result in memory)."""

    def names(self, query: Query, since: dt.datetime | None = None) -> Iterator[str]:
        """Stream the LFNs that may match ``query``, without metadata or replicas (more is
        allowed: ``files`` checks). With ``since`` (naive UTC), a catalog that records
        when files were registered leaves out those registered before it."""
        return (f.lfn for f in self.query(query))

    def files(self, query: Query, lfns: Sequence[str]) -> Iterator[CatalogFile]:
        """The files among ``lfns`` that match ``query``, with metadata and replicas."""
        wanted = set(lfns)
        return (f for f in self.query(query) if f.lfn in wanted)

    def storages(self, lfns: Sequence[str]) -> dict[str, tuple[str, ...]]:
        """The replica storages of each known LFN now (for files whose replicas change)."""
        return {f.lfn: f.storages for f in self.files(Query(()), lfns)}

    @abstractmethod
    def local_paths(self, lfns: Sequence[str]) -> dict[str, str]:
        """Map LFNs to a path a job on this machine can read (its nearest replica)."""

    @abstractmethod
    def register(self, outputs: Sequence[OutputFile], storage: str, dataset: str) -> int:
        """Store and register ``outputs`` on ``storage``, attach them to ``dataset``.

        Idempotent: an LFN already registered with the same size is skipped, never
        duplicated. Returns how many files were newly registered.
        """

    def dataset_closed(self, dataset: str) -> bool:
        """Whether ``dataset`` exists and is closed: no file will be added to it."""
        raise CatalogError(f"{type(self).__name__}: datasets cannot be closed here; use "
                           "another completeness condition")

    def close(self) -> None:
        """Release connections."""
