"""5,500 concurrent simulated jobs over 4 sites tracked by one triggerer loop: CPU and latency.

Four sites with the ``simulated`` backend (jobs modelled, not run; slots 1,500, 1,500,
1,500 and 1,000, so all 5,500 run at once, mean run time ``--duration`` s, lognormal
sigma ``--sigma``) get 55 chunks of 100 jobs (15, 15, 15 and 10 chunks) submitted through
``SimulatedBackend.submit``. One asyncio loop then plays the triggerer: 55
``operators.triggers.JobsTrigger`` (poll_interval ``--interval`` s) consumed concurrently
until every one has fired. ``SimulatedBackend.poll`` is wrapped (from here, the
backend is untouched) to time each poll: wall time and CPU of the polling thread.

Measured during tracking: the process CPU (``time.process_time``), CPU per cycle (one
cycle = one bulk poll per site), the per-site poll latency, and the detection latency
users feel: for each chunk, the time from its last job's modelled end (read from the
backend's SQLite state) to its trigger firing.

Baseline (same run, same workload): the same 5,500 job names submitted again to a fresh
state directory (same seed, so the same modelled durations), tracked by a bare loop that
calls ``backend.poll`` directly for the 4 sites once per cycle on the ids not yet final
(what SitePoller asks for), sleeping the same interval, until all are final; no
triggers, no asyncio. value = the triggerer's CPU, baseline = the bare loop's CPU,
ratio = value / baseline: the cost of the trigger machinery (SitePoller, 55 triggers
waking every cycle, the thread hop) over the irreducible polling. CPU rather than
latency because both loops make the same poll call per cycle (the latencies are
reported for both as extras), while CPU is what one triggerer on 2 cores can afford.

    python benchmarks/bench_simulated_5500.py [--duration 30] [--sigma 0.25] [--interval 1]
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._result import write_result  # noqa: E402

TMP = Path(tempfile.mkdtemp(prefix="ctaoflow-bench-sim-"))
atexit.register(shutil.rmtree, TMP, ignore_errors=True)
os.environ["CTAOFLOW_HOME"] = str(TMP / "home")
from operators.environment import use_airflow_home  # noqa: E402

use_airflow_home(TMP / "home")  # before airflow is imported (by operators.triggers)

from ctaoflow.backends import JobSpec, SiteConfig  # noqa: E402
from ctaoflow.backends.simulated import SimulatedBackend  # noqa: E402
from operators.triggers import JobsTrigger, SitePoller  # noqa: E402

SLOTS = {"SIM-A": 1500, "SIM-B": 1500, "SIM-C": 1500, "SIM-D": 1000}
CHUNK = 100

# --- instrumentation of SimulatedBackend.poll (this process only) --------------------
_poll = SimulatedBackend.poll
_records: list[tuple[str, float, float, int]] = []  # site, wall s, thread CPU s, ids
_lock = threading.Lock()


def _timed_poll(self, job_ids):
    wall, cpu = time.perf_counter(), time.thread_time()
    result = _poll(self, job_ids)
    record = (self.site.name, time.perf_counter() - wall, time.thread_time() - cpu, len(job_ids))
    with _lock:
        _records.append(record)
    return result


SimulatedBackend.poll = _timed_poll


def sites(state_dir: Path, duration: float, sigma: float) -> dict[str, SiteConfig]:
    return {name: SiteConfig(name=name, backend="simulated", slots=slots,
                             options={"state_dir": str(state_dir), "seed": 5500,
                                      "duration_s": duration, "duration_sigma": sigma})
            for name, slots in SLOTS.items()}


def submit(configs: dict[str, SiteConfig]) -> list[tuple[str, list[str]]]:
    """55 chunks of 100 jobs, as the operators submit them: [(site, ids)] per chunk."""
    chunks = []
    for name, config in configs.items():
        backend = SimulatedBackend(config)
        for number in range(SLOTS[name] // CHUNK):
            specs = [JobSpec(f"bench.sim5500.{name}.c{number:02d}.{task:03d}.1",
                             ("sim_telarray",), "/unused") for task in range(CHUNK)]
            chunks.append((name, list(backend.submit(specs).values())))
    return chunks


def modelled_ends(configs: dict[str, SiteConfig]) -> dict[tuple[str, str], float]:
    ends = {}
    for name, config in configs.items():
        path = Path(config.options["state_dir"]) / f"{name}.sqlite"
        with sqlite3.connect(path) as db:
            for job_id, end in db.execute("SELECT id, end FROM jobs"):
                ends[(name, str(job_id))] = end
    return ends


def poll_stats(records: list[tuple[str, float, float, int]]) -> dict[str, dict]:
    out = {}
    for name in SLOTS:
        mine = [r for r in records if r[0] == name]
        if mine:
            walls = sorted(r[1] for r in mine)
            out[name] = {"polls": len(mine),
                         "wall_ms_median": round(statistics.median(walls) * 1e3, 2),
                         "wall_ms_max": round(walls[-1] * 1e3, 2),
                         "thread_cpu_ms_median": round(statistics.median(r[2] for r in mine) * 1e3, 2),
                         "ids_first_poll": mine[0][3]}
    return out


async def track(configs: dict[str, SiteConfig], chunks: list[tuple[str, list[str]]],
                interval: float) -> dict[int, float]:
    """All 55 triggers at once until each fires; chunk index -> time.time() of firing."""
    site_dicts = {name: config.to_dict() for name, config in configs.items()}
    fired: dict[int, float] = {}

    async def consume(index: int, name: str, ids: list[str]) -> None:
        trigger = JobsTrigger({name: site_dicts[name]}, {name: ids}, poll_interval=interval)
        async for event in trigger.run():
            fired[index] = time.time()
            statuses = event.payload["statuses"][name]
            assert len(statuses) == len(ids) and all(
                s["state"] in ("DONE", "FAILED", "TIMEOUT") for s in statuses.values()), statuses

    await asyncio.gather(*(consume(i, name, ids) for i, (name, ids) in enumerate(chunks)))
    pollers = [p for p in SitePoller._pollers.values() if p.site.name in SLOTS]
    assert len(pollers) == len(SLOTS), [p.site.name for p in pollers]
    return fired


def bare(configs: dict[str, SiteConfig], chunks: list[tuple[str, list[str]]],
         interval: float) -> int:
    """Direct polls, one per site per cycle, until all final; returns the cycles."""
    backends = {name: SimulatedBackend(config) for name, config in configs.items()}
    pending = {name: [i for site, ids in chunks if site == name for i in ids] for name in configs}
    cycles = 0
    while any(pending.values()):
        for name, ids in pending.items():
            if ids:
                statuses = backends[name].poll(ids)
                pending[name] = [i for i in ids if not statuses[i].state.final]
        cycles += 1
        time.sleep(interval)
    return cycles


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=30.0, help="mean modelled run time, s")
    parser.add_argument("--sigma", type=float, default=0.25, help="lognormal sigma of run time")
    parser.add_argument("--interval", type=float, default=1.0, help="poll interval, s")
    args = parser.parse_args()

    # ---- the triggerer
    ours = sites(TMP / "triggerer", args.duration, args.sigma)
    started = time.perf_counter()
    chunks = submit(ours)
    submit_s = time.perf_counter() - started
    assert sum(len(ids) for _, ids in chunks) == 5500 and len(chunks) == 55
    _records.clear()
    wall, cpu = time.perf_counter(), time.process_time()
    fired = asyncio.run(track(ours, chunks, args.interval))
    cpu_ours, wall_ours = time.process_time() - cpu, time.perf_counter() - wall
    ours_polls = list(_records)
    ends = modelled_ends(ours)
    latencies = sorted(fired[i] - max(ends[(name, j)] for j in ids)
                       for i, (name, ids) in enumerate(chunks))
    cycles_ours = max(sum(1 for r in ours_polls if r[0] == name) for name in SLOTS)

    # ---- the baseline: same names and seed, fresh state, bare polling loop
    theirs = sites(TMP / "bare", args.duration, args.sigma)
    bare_chunks = submit(theirs)
    _records.clear()
    wall, cpu = time.perf_counter(), time.process_time()
    cycles_bare = bare(theirs, bare_chunks, args.interval)
    cpu_bare, wall_bare = time.process_time() - cpu, time.perf_counter() - wall
    bare_polls = list(_records)

    poll_cpu_ours = sum(r[2] for r in ours_polls)
    write_result(
        "simulated_5500_triggerer_cpu", round(cpu_ours, 3), "s CPU",
        baseline=round(cpu_bare, 3), ratio=round(cpu_ours / cpu_bare, 2),
        jobs=5500, sites=SLOTS, chunks=len(chunks), poll_interval_s=args.interval,
        modelled_duration_s={"mean": args.duration, "sigma": args.sigma},
        tracking_wall_s=round(wall_ours, 1), bare_wall_s=round(wall_bare, 1),
        cycles=cycles_ours, bare_cycles=cycles_bare,
        cpu_ms_per_cycle=round(cpu_ours / cycles_ours * 1e3, 2),
        bare_cpu_ms_per_cycle=round(cpu_bare / cycles_bare * 1e3, 2),
        cpu_share_of_one_core=round(cpu_ours / wall_ours, 4),
        cpu_in_backend_poll_s=round(poll_cpu_ours, 3),
        cpu_outside_backend_poll_s=round(cpu_ours - poll_cpu_ours, 3),
        detection_latency_s={"median": round(statistics.median(latencies), 3),
                             "p95": round(latencies[int(0.95 * (len(latencies) - 1))], 3),
                             "max": round(latencies[-1], 3), "min": round(latencies[0], 3)},
        poll_latency_per_site=poll_stats(ours_polls),
        bare_poll_latency_per_site=poll_stats(bare_polls),
        submit_s=round(submit_s, 2))


if __name__ == "__main__":
    main()
