"""The engine's face to the Airflow layer: one production, four steps per transformation.

``prepare`` (intake: new input files into the ledger, grouped into tasks and chunks),
``submit`` and ``collect`` (one chunk of jobs, repeated until every task is final) and
``finalize`` (completion and counts). Each step commits the ledger before the side
effect it guards, so a step killed anywhere is re-entered without a duplicate.
"""

from __future__ import annotations

from pathlib import Path

from ctaoflow import settings
from ctaoflow.backends.base import JobStatus, SiteConfig
from ctaoflow.catalog.base import Catalog
from ctaoflow.engine import collection, completion, intake, submission
from ctaoflow.engine.context import BackendFactory, Context
from ctaoflow.engine.ledger import session_factory
from ctaoflow.engine.submission import ChunkResult
from ctaoflow.spec.model import Production


class Engine(Context):
    """Runs one production against a catalog, a set of sites and a ledger."""

    def __init__(self, production: Production, catalog: Catalog,
                 sites: dict[str, SiteConfig], backend_for: BackendFactory,
                 ledger_url: str | None = None, workroot: str | Path | None = None) -> None:
        super().__init__(production, catalog, sites, backend_for, session_factory(ledger_url),
                         Path(workroot or settings.home() / "work"))

    def prepare(self, name: str) -> list[int]:
        """Take in new input files, group them into tasks; return chunks with work."""
        return intake.prepare(self, name)

    def submit(self, name: str, chunk: int, revive: bool = False) -> ChunkResult:
        """Submit the chunk's tasks that need a job; reconnect to jobs already submitted."""
        return submission.submit(self, name, chunk, revive)

    def label(self, name: str, chunk: int) -> str:
        """What the chunk holds: ``chunk 3: tasks 300-399 @ CSCS``."""
        return submission.label(self, name, chunk)

    def state(self, name: str, chunk: int) -> ChunkResult:
        """The chunk now: jobs in flight per site, tasks done, tasks failed."""
        return submission.state(self, name, chunk)

    def collect(self, name: str, chunk: int, statuses: dict[str, dict[str, JobStatus]]) -> None:
        """Record final job states: register outputs of done jobs, retry or fail others."""
        collection.collect(self, name, chunk, statuses)

    def finalize(self, name: str) -> dict[str, dict[str, int]]:
        """Complete the transformation when nothing is left; return its counts."""
        return completion.finalize(self, name)

    def summary(self) -> dict[str, dict[str, dict[str, int]]]:
        """Files, tasks and jobs by status, per transformation."""
        return completion.summarize(self.production, self.sessions)
