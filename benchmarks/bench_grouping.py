"""Grouping 1,000,000 catalog files into tasks (standard plugin, 5 files per task,
files over 4 storages). Baseline: iterating the same stream of files without grouping.
Time of each untraced, then the peak memory of each under tracemalloc (which slows it)."""

from __future__ import annotations

import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._result import write_result  # noqa: E402
from ctaoflow.catalog.base import CatalogFile  # noqa: E402
from ctaoflow.engine.grouping import standard  # noqa: E402

N = 1_000_000
STORAGES = [("CSCS-DISK",), ("DESY-ZN-DISK",), ("PIC-DISK",), ("FRASCATI-DISK",)]


def files():
    for i in range(N):
        yield CatalogFile(f"/ctao/ctao/mc/dl0/run{i:07d}.simtel.zst", 1_000_000_000,
                          {"run": i}, STORAGES[i % 4])


def measure(consume) -> tuple[float, float, int]:
    """Seconds, peak MB allocated while consuming, and what ``consume`` counted."""
    started = time.perf_counter()
    count = consume()
    seconds = time.perf_counter() - started
    tracemalloc.start()
    consume()
    peak = tracemalloc.get_traced_memory()[1] / 1e6
    tracemalloc.stop()
    return seconds, peak, count


def main() -> None:
    base_s, base_mb, n = measure(lambda: sum(1 for _ in files()))
    group_s, group_mb, tasks = measure(lambda: sum(1 for _ in standard(files(), 5, flush=True)))
    assert n == N and tasks == N // 5
    write_result("grouping_1m_files", round(group_s, 2), "s", baseline=round(base_s, 2),
                 ratio=round(group_s / base_s, 2), tasks=tasks,
                 peak_memory_mb=round(group_mb, 2), baseline_peak_memory_mb=round(base_mb, 2),
                 target="< 2 s, < 1 GB")


if __name__ == "__main__":
    main()
