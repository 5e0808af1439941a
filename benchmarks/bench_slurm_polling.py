"""Polling cost on real Slurm: squeue calls per minute as deferred chunks grow 10 -> 1,000.

Starts Slurm with services/slurm/start.sh (reuses a running one). One process plays the
triggerer: N ``operators.triggers.JobsTrigger`` (N = 10, 100, 1,000), each a chunk of
``--per-chunk`` jobs (one Slurm array submitted through ``SlurmBackend.submit``, job
names unique to the run) all at the same site, consumed concurrently (``async for`` over
``trigger.run()``) in one asyncio loop for a ``--window`` s window with
poll_interval ``--interval`` s. The jobs are ``sleep 600`` submitted held (``sbatch
--hold``): PENDING for the whole window, like jobs queued behind others, so that none
finishes and the machine's 2 cores are not busy starting 32 runners (the node runs 32
at once) while the triggerer is measured. The chunks accumulate: the N = 100 window
watches the 10 chunks of the first plus 90 new ones, and so on.

Real squeue invocations are counted by a shim: a temporary directory first on PATH
holding an executable ``squeue`` that appends a line to a counter file and execs the
real one. CPU of the triggerer = ``time.process_time`` (all threads, including the
polling thread) plus the ``RUSAGE_CHILDREN`` delta (the squeue processes), per window.

value = squeue calls per minute at N = 1,000, baseline = the same at N = 10, ratio =
value / baseline (one squeue per site per cycle: ~1; a cycle is the poll plus the
interval, so a slower squeue at 1,000 arrays lowers it slightly). Extras per N: jobs,
calls per minute, squeue calls per poller cycle (must be 1), CPU per 1,000 jobs per
minute. Everything submitted is cancelled afterwards (in a finally) and the queue
drained.

    python benchmarks/bench_slurm_polling.py [--window 30] [--interval 1] [--per-chunk 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._result import write_result  # noqa: E402

TMP = Path(tempfile.mkdtemp(prefix="ctaoflow-bench-poll-"))
os.environ["CTAOFLOW_HOME"] = str(TMP / "home")
from operators.environment import use_airflow_home  # noqa: E402

use_airflow_home(TMP / "home")  # before airflow is imported (by operators.triggers)

from ctaoflow.backends import JobSpec, SiteConfig  # noqa: E402
from ctaoflow.backends.slurm import SlurmBackend  # noqa: E402
from operators.triggers import JobsTrigger, SitePoller  # noqa: E402

SIZES = (10, 100, 1000)
SITE = "bench-poll"


def slurm_config() -> dict[str, str]:
    out = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True,
                         check=True).stdout
    return dict(re.findall(r"^(\w+)\s*=\s*(.*?)\s*$", out, re.MULTILINE))


def install_shim(real: str) -> Path:
    """``<TMP>/bin/squeue`` counting its calls in ``<TMP>/squeue.calls``; first on PATH."""
    counter = TMP / "squeue.calls"
    counter.touch()
    shim = TMP / "bin" / "squeue"
    shim.parent.mkdir()
    shim.write_text(f'#!/bin/sh\necho "$$" >> {counter}\nexec {real} "$@"\n')
    shim.chmod(0o755)
    os.environ["PATH"] = f"{shim.parent}{os.pathsep}{os.environ['PATH']}"
    assert shutil.which("squeue") == str(shim)
    return counter


def calls(counter: Path) -> int:
    return len(counter.read_text().splitlines())


def cpu_now() -> tuple[float, float]:
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time(), children.ru_utime + children.ru_stime


async def window(site: dict, chunks: list[list[str]], seconds: float, interval: float,
                 counter: Path) -> dict:
    """Consume one JobsTrigger per chunk for ``seconds``; squeue calls and CPU meanwhile."""
    fired = []

    async def consume(trigger: JobsTrigger) -> None:
        async for event in trigger.run():
            fired.append(event)

    calls0, (self0, child0), wall0 = calls(counter), cpu_now(), time.perf_counter()
    tasks = [asyncio.create_task(consume(JobsTrigger({SITE: site}, {SITE: ids}, interval)))
             for ids in chunks]
    await asyncio.sleep(seconds)
    wall, (self1, child1), calls1 = time.perf_counter() - wall0, cpu_now(), calls(counter)
    pollers = [p for p in SitePoller._pollers.values() if p.site.name == SITE and p.task and not p.task.done()]
    assert len(pollers) == 1, pollers
    polls = pollers[0].polls
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    assert not fired, f"{len(fired)} triggers fired: a job finished during the window"
    return {"wall": wall, "squeue": calls1 - calls0, "polls": polls,
            "cpu_self": self1 - self0, "cpu_children": child1 - child0}


def cancel_and_drain(backend: SlurmBackend, ids: list[str], real_squeue: str) -> None:
    for start in range(0, len(ids), 1000):
        backend.cancel(ids[start:start + 1000])
    arrays = sorted({i.partition("_")[0] for i in ids}, key=int)
    deadline = time.monotonic() + 180
    while arrays and time.monotonic() < deadline:
        left = []
        for start in range(0, len(arrays), 500):
            out = subprocess.run([real_squeue, "-h", "-t", "PD,R,CG,CF,S", "-j",
                                  ",".join(arrays[start:start + 500]), "-o", "%F"],
                                 capture_output=True, text=True, check=False).stdout
            left += out.split()
        if not left:
            return
        time.sleep(1)
    print(f"warning: jobs of this run still in the queue after 180 s: {sorted(set(left))[:10]}",
          file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--window", type=float, default=30.0, help="seconds per N")
    parser.add_argument("--interval", type=float, default=1.0, help="poll_interval, s")
    parser.add_argument("--per-chunk", type=int, default=5, help="jobs per chunk (array)")
    args = parser.parse_args()

    subprocess.run([str(ROOT / "services/slurm/start.sh")], check=True)
    real_squeue = shutil.which("squeue")
    assert real_squeue, "squeue not found after services/slurm/start.sh"
    config = slurm_config()
    max_jobs = int(config.get("MaxJobCount", "10000"))
    known = len(subprocess.run([real_squeue, "-h", "-t", "all", "-r", "-o", "%i"],
                               capture_output=True, text=True, check=True).stdout.split())
    per_chunk = args.per_chunk
    if (max_jobs - known - 100) // SIZES[-1] < per_chunk:
        per_chunk = max(1, (max_jobs - known - 100) // SIZES[-1])
        print(f"MaxJobCount={max_jobs} with {known} jobs known: {per_chunk} jobs per chunk",
              file=sys.stderr)
    counter = install_shim(real_squeue)

    stamp = time.strftime("%Y%m%dT%H%M%S")
    site = SiteConfig(name=SITE, backend="slurm", queue="debug",
                      options={"sbatch_args": ["--hold"], "spool": str(TMP / "spool")})
    backend = SlurmBackend(site)
    chunks: list[list[str]] = []
    submitted: list[str] = []
    per_size: dict[int, dict] = {}
    submit_s = 0.0
    try:
        for size in SIZES:
            started = time.perf_counter()
            while len(chunks) < size:
                number = len(chunks)
                specs = [JobSpec(f"bench.poll{stamp}.c{number:04d}.{task}.1", ("sleep", "600"),
                                 str(TMP / "work" / f"c{number:04d}" / str(task)),
                                 memory_mb=10, walltime_s=900) for task in range(per_chunk)]
                ids = list(backend.submit(specs).values())
                submitted += ids
                chunks.append(ids)
            submit_s += time.perf_counter() - started
            time.sleep(2)  # let slurmctld settle after the submissions
            measured = asyncio.run(window(site.to_dict(), chunks[:size], args.window,
                                          args.interval, counter))
            jobs = size * per_chunk
            cpu = measured["cpu_self"] + measured["cpu_children"]
            minutes = measured["wall"] / 60
            per_size[size] = {
                "jobs": jobs,
                "squeue_calls": measured["squeue"],
                "squeue_calls_per_min": round(measured["squeue"] / minutes, 1),
                "squeue_calls_per_cycle": round(measured["squeue"] / max(1, measured["polls"]), 2),
                "cpu_s": round(cpu, 3),
                "cpu_self_s": round(measured["cpu_self"], 3),
                "cpu_squeue_s": round(measured["cpu_children"], 3),
                "cpu_s_per_1000_jobs_per_min": round(cpu / minutes / (jobs / 1000), 3),
                "cpu_share_of_one_core": round(cpu / measured["wall"], 4),
            }
            print(json.dumps({"chunks": size, **per_size[size]}), file=sys.stderr)
    finally:
        cancel_and_drain(backend, submitted, real_squeue)
        shutil.rmtree(TMP, ignore_errors=True)

    value = per_size[SIZES[-1]]["squeue_calls_per_min"]
    baseline = per_size[SIZES[0]]["squeue_calls_per_min"]
    write_result(
        "slurm_polling_squeue_per_min", value, "squeue calls/min", baseline=baseline,
        ratio=round(value / baseline, 3), sites=1, window_s=args.window,
        poll_interval_s=args.interval, jobs_per_chunk=per_chunk, held=True,
        max_job_count=max_jobs, submit_s=round(submit_s, 1),
        by_chunks={str(size): stats for size, stats in per_size.items()})


if __name__ == "__main__":
    main()
