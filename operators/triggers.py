"""JobsTrigger: waits, in the triggerer, until a chunk's batch jobs are all final.

Polling is shared: every JobsTrigger of a triggerer process watching the same site
registers its job ids with one ``SitePoller``, which asks the batch system about all of
them in one call per cycle (one ``squeue`` per site, however many chunks wait), and
times it (``ctaoflow.poll.latency.<site>`` through Airflow's metrics).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any, AsyncIterator

from airflow.sdk.observability.stats import Stats
from airflow.triggers.base import BaseTrigger, TriggerEvent

from ctaoflow.backends import BackendError, JobStatus, SiteConfig
from ctaoflow.monitoring.metrics import poll_latency
from operators.hooks.production import backend_for

log = logging.getLogger(__name__)


class SitePoller:
    """One polling loop per site per process, shared by all triggers watching it."""

    _pollers: dict[str, "SitePoller"] = {}

    def __init__(self, site: SiteConfig, interval: float) -> None:
        self.site, self.interval = site, interval
        self.watched: dict[str, int] = {}  # job id -> number of triggers watching it
        self.statuses: dict[str, JobStatus] = {}
        self.cycle = asyncio.Condition()
        self.polls = 0
        self.task: asyncio.Task | None = None

    @classmethod
    def for_site(cls, site: SiteConfig, interval: float) -> "SitePoller":
        key = json.dumps(site.to_dict(), sort_keys=True)
        poller = cls._pollers.get(key)
        if poller is None or poller.task is None or poller.task.done():
            poller = cls._pollers[key] = cls(site, interval)
        poller.interval = min(poller.interval, interval)
        return poller

    def watch(self, ids: list[str]) -> None:
        for job_id in ids:
            self.watched[job_id] = self.watched.get(job_id, 0) + 1
        if self.task is None:
            self.task = asyncio.get_running_loop().create_task(self._loop())

    def unwatch(self, ids: list[str]) -> None:
        for job_id in ids:
            self.watched[job_id] -= 1
            if not self.watched[job_id]:
                del self.watched[job_id]
                self.statuses.pop(job_id, None)

    async def wait_cycle(self) -> None:
        async with self.cycle:
            await self.cycle.wait()

    async def _loop(self) -> None:
        backend = None
        while self.watched:
            ids = [i for i in self.watched if not (i in self.statuses and self.statuses[i].state.final)]
            if ids:
                try:
                    backend = backend or await asyncio.to_thread(backend_for, self.site)
                    started = time.monotonic()
                    self.statuses.update(await asyncio.to_thread(backend.poll, ids))
                    poll_latency(Stats, self.site.name, time.monotonic() - started)
                    self.polls += 1
                except BackendError as exc:  # the batch system is down: try again next cycle
                    log.warning("%s; polling again in %.0f s", exc, self.interval)
                except Exception:  # a bug must not leave the waiting triggers hanging
                    log.exception("site %s: polling failed; polling again in %.0f s",
                                  self.site.name, self.interval)
            async with self.cycle:
                self.cycle.notify_all()
            await asyncio.sleep(self.interval)
        self.task = None


class JobsTrigger(BaseTrigger):
    """Fires once every job of ``jobs`` (site name -> backend ids) is final."""

    def __init__(self, sites: dict[str, dict[str, Any]], jobs: dict[str, list[str]],
                 poll_interval: float = 5.0) -> None:
        super().__init__()
        self.sites, self.jobs, self.poll_interval = sites, jobs, poll_interval

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return ("operators.triggers.JobsTrigger",
                {"sites": self.sites, "jobs": self.jobs, "poll_interval": self.poll_interval})

    async def run(self) -> AsyncIterator[TriggerEvent]:
        pollers = {name: SitePoller.for_site(SiteConfig.from_dict(self.sites[name]),
                                             self.poll_interval) for name in self.jobs}
        for name, ids in self.jobs.items():
            pollers[name].watch(ids)
        try:
            while True:
                statuses = {name: {i: pollers[name].statuses.get(i) for i in ids}
                            for name, ids in self.jobs.items()}
                if all(s is not None and s.state.final
                       for by_id in statuses.values() for s in by_id.values()):
                    yield TriggerEvent({"statuses": {
                        name: {i: s.to_dict() for i, s in by_id.items()}
                        for name, by_id in statuses.items()}})
                    return
                waits = [asyncio.ensure_future(p.wait_cycle()) for p in pollers.values()]
                _, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                for waiting in pending:
                    waiting.cancel()
        finally:
            for name, ids in self.jobs.items():
                pollers[name].unwatch(ids)
