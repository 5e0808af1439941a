"""JobsTrigger and its shared SitePoller, run as the triggerer runs them (one event loop)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from ctaoflow.backends import BACKENDS, JobSpec, JobStatus, SiteConfig, make_backend
from ctaoflow.backends.simulated import SimulatedBackend
from operators.triggers import JobsTrigger, SitePoller


class CountingBackend(SimulatedBackend):
    """The simulated backend on a clock of its own per site that each poll moves on by
    one second (so jobs of N seconds are seen done by the Nth poll), recording the ids
    each poll asks about; the first poll of a site fails when asked."""

    polls: dict[str, list[list[str]]] = {}

    @property
    def clock(self) -> Callable[[], float]:
        return lambda: float(len(self.polls.get(self.site.name, ())))

    def poll(self, job_ids: Sequence[str]) -> dict[str, JobStatus]:
        self.polls.setdefault(self.site.name, []).append(list(job_ids))
        if len(self.polls[self.site.name]) == 1 and self.site.options.get("first_poll_fails"):
            raise ValueError("unexpected answer from the batch system")
        return super().poll(job_ids)


@pytest.fixture(autouse=True)
def counting_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(BACKENDS, "counting", f"{__name__}:CountingBackend")
    monkeypatch.setattr(CountingBackend, "polls", {})
    monkeypatch.setattr(SitePoller, "_pollers", {})


def site(tmp_path: Path, name: str, **options) -> SiteConfig:
    return SiteConfig(name=name, backend="counting", slots=100, options={
        "state_dir": str(tmp_path), "duration_s": 3, "duration_sigma": 0.0, **options})


def chunks(config: SiteConfig, count: int, per_chunk: int) -> list[list[str]]:
    backend = make_backend(config)
    return [list(backend.submit([JobSpec(f"p.t.{c}.{j}.1", ("true",), "/w")
                                 for j in range(per_chunk)]).values()) for c in range(count)]


async def fire(triggers: list[JobsTrigger], timeout: float = 20) -> list[dict]:
    async def first_event(trigger: JobsTrigger) -> dict:
        async for event in trigger.run():
            return event.payload
        raise AssertionError("the trigger ended without an event")
    return await asyncio.wait_for(asyncio.gather(*map(first_event, triggers)), timeout)


def test_triggers_of_one_site_share_one_poll_per_cycle(tmp_path: Path) -> None:
    a, b = site(tmp_path, "A"), site(tmp_path, "B")
    jobs = {"A": chunks(a, 20, 5), "B": chunks(b, 20, 5)}
    triggers = [JobsTrigger(sites={s.name: s.to_dict()}, jobs={s.name: ids}, poll_interval=0.01)
                for s in (a, b) for ids in jobs[s.name]]
    events = asyncio.run(fire(triggers))
    for trigger, event in zip(triggers, events):
        [(name, ids)] = trigger.jobs.items()
        assert set(event["statuses"][name]) == set(ids)
        assert {s["state"] for s in event["statuses"][name].values()} == {"DONE"}
    # jobs of 3 polls: each site is polled 3 times, each time about all of its 20 chunks
    for name in "AB":
        everything = sorted(i for ids in jobs[name] for i in ids)
        assert [sorted(ids) for ids in CountingBackend.polls[name]] == [everything] * 3


def test_an_unexpected_poll_error_is_retried_not_a_hang(tmp_path: Path) -> None:
    config = site(tmp_path, "FLAKY", first_poll_fails=True)
    [ids] = chunks(config, 1, 3)
    [event] = asyncio.run(fire([JobsTrigger(sites={"FLAKY": config.to_dict()},
                                            jobs={"FLAKY": ids}, poll_interval=0.01)]))
    assert {s["state"] for s in event["statuses"]["FLAKY"].values()} == {"DONE"}
    assert len(CountingBackend.polls["FLAKY"]) == 3  # failed, then polled until done


def test_each_poll_of_a_site_is_timed_as_an_airflow_metric(tmp_path: Path, monkeypatch) -> None:
    import operators.triggers

    timings: list[tuple[str, float]] = []

    class Recorder:
        @staticmethod
        def timing(name: str, value) -> None:
            timings.append((name, value.total_seconds()))

    monkeypatch.setattr(operators.triggers, "Stats", Recorder)
    a = site(tmp_path, "CSCS.site")
    triggers = [JobsTrigger(sites={"CSCS.site": a.to_dict()}, jobs={"CSCS.site": ids},
                            poll_interval=0.01) for ids in chunks(a, 2, 3)]
    asyncio.run(fire(triggers))
    assert [name for name, _ in timings] == ["ctaoflow.poll.latency.CSCS_site"] * 3
    assert all(0 <= seconds < 5 for _, seconds in timings)
