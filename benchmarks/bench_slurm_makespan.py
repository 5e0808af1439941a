"""Makespan of 1,000 ``sleep 1`` jobs on real Slurm: SlurmBackend vs one direct array.

Both runs submit the same 1,000 commands with the same resources and poll every ~1 s
until all are final; the makespan is from submission to the poll that sees all final.
Starts Slurm with services/slurm/start.sh if needed (32 advertised CPUs by default).
Writes benchmarks/results/slurm_makespan.json and prints it last.

    python benchmarks/bench_slurm_makespan.py [--jobs 1000]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._result import write_result  # noqa: E402
from ctaoflow.backends import JobSpec, SiteConfig
from ctaoflow.backends.slurm import SlurmBackend

FINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY",
         "BOOT_FAIL", "DEADLINE", "PREEMPTED"}
CORES, MEMORY_MB, WALLTIME_S = 1, 100, 600


def poll_until(done: Callable[[], bool], start: float) -> float:
    """Seconds from ``start`` to the first ~1 s poll at which ``done()`` holds."""
    while not done():
        time.sleep(1)
    return time.monotonic() - start


def through_backend(jobs: int, work: Path) -> float:
    backend = SlurmBackend(SiteConfig(name="bench", backend="slurm", queue="debug"))
    specs = [JobSpec(f"bench.sleep.{i:05d}.1", ("sleep", "1"), str(work / f"{i:05d}"),
                     cores=CORES, memory_mb=MEMORY_MB, walltime_s=WALLTIME_S)
             for i in range(jobs)]
    start = time.monotonic()
    ids = list(backend.submit(specs).values())
    return poll_until(lambda: all(s.state.final for s in backend.poll(ids).values()), start)


def direct_array(jobs: int, work: Path) -> float:
    start = time.monotonic()
    array_id = subprocess.run(
        ["sbatch", "--parsable", f"--array=0-{jobs - 1}", "--job-name=bench-direct",
         f"--chdir={work}", f"--output={work}/%a.log", f"--cpus-per-task={CORES}",
         f"--mem={MEMORY_MB}M", f"--time={WALLTIME_S // 60}", "--partition=debug", "--wrap", "sleep 1"],
        capture_output=True, text=True, check=True).stdout.strip().split(";")[0]

    def done() -> bool:
        out = subprocess.run(["squeue", "-h", "-t", "all", "-r", "-j", array_id, "-o", "%T"],
                             capture_output=True, text=True, check=True).stdout.split()
        return len(out) == jobs and all(state in FINAL for state in out)
    return poll_until(done, start)


def wait_idle() -> None:
    while subprocess.run(["squeue", "-h", "-t", "PD,R,CG,CF", "-o", "%i"],
                         capture_output=True, text=True, check=True).stdout.strip():
        time.sleep(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000)
    args = parser.parse_args()
    subprocess.run([str(ROOT / "services/slurm/start.sh")], check=True)
    cpus = subprocess.run(["sinfo", "-h", "-N", "-n", "localhost", "-o", "%c"],
                          capture_output=True, text=True, check=True).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="bench-slurm-") as tmp:
        wait_idle()
        (Path(tmp) / "direct").mkdir()
        baseline = direct_array(args.jobs, Path(tmp) / "direct")
        wait_idle()
        value = through_backend(args.jobs, Path(tmp) / "backend")
    write_result("slurm_makespan", round(value, 2), "s", baseline=round(baseline, 2),
                 ratio=round(value / baseline, 3), jobs=args.jobs, slurm_cpus=cpus,
                 compared="SlurmBackend vs one direct sbatch --array", target="within 1.2x")


if __name__ == "__main__":
    main()
