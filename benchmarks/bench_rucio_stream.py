"""Stream a 100,000-DID query through RucioCatalog.query vs bare list_dids iteration.

Each variant runs in its own subprocess; we report its wall time and peak RSS. The
consumer counts the files and groups them by 5 (as a job grouping would). Baseline (the
issue's): bare ``list_dids``, names only. The grouping needs each file's size, metadata
and replica storages, which a names listing does not carry, so a second baseline,
``same_content``, fetches them with the bare client as plainly as possible: for every
1,000 names, ``get_metadata_bulk`` then ``list_replicas`` (the same calls with the same
arguments as the catalog), one after the other. The 100,000 DIDs are registered once
(minutes) in their own scope ``bench`` (so that they do not slow the tests' queries)
and reused: setup is skipped when the marker dataset exists. Writes benchmarks/results/rucio_stream_100k.json and prints it last.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._result import write_result
from tests.rucio_service import SERVICE, answers, rucio_settings

COUNT = 100_000
TAG = "stream100k"
SCOPE = "bench"
MARKER = f"/ctao/{SCOPE}/{TAG}/complete"


def connect(settings: dict[str, str]):
    from ctaoflow.catalog.rucio import RucioCatalog

    return RucioCatalog(f"http://127.0.0.1:{settings['RUCIO_PORT']}", username=settings["RUCIO_USERNAME"],
                        password=settings["RUCIO_PASSWORD"], scope=SCOPE, name="bench")


def setup(settings: dict[str, str]) -> None:
    """Register the DIDs (5 metadata keys each) unless a previous run finished doing so."""
    from rucio.common.exception import DataIdentifierNotFound, Duplicate

    from ctaoflow.catalog.base import CatalogFile

    catalog = connect(settings)
    try:
        catalog.client.add_scope("root", SCOPE)
    except Duplicate:
        pass
    try:
        catalog.client.get_did(SCOPE, MARKER)
        return
    except DataIdentifierNotFound:
        pass
    start = time.monotonic()
    files = (CatalogFile(f"/ctao/{SCOPE}/{TAG}/f{i:06d}.h5", 1000 + i % 7,
                         {"bench": TAG, "particle": ("gamma", "proton")[i % 2], "zenith": (20, 40, 60)[i % 3],
                          "energy": i / 1000, "site": f"s{i % 5}"}) for i in range(COUNT))
    new = catalog.add_files(files, "LOCAL-DISK")
    catalog.client.add_dataset(SCOPE, MARKER)
    print(f"setup: registered {new} DIDs in {time.monotonic() - start:.0f}s", file=sys.stderr)


def consume(variant: str) -> None:
    """Subprocess body: iterate the query, count and group by 5; print count, groups, seconds."""
    settings = rucio_settings()
    catalog = connect(settings)
    start = time.monotonic()
    if variant == "catalog":
        from ctaoflow.spec.query import Query

        items = catalog.query(Query.parse({"bench": TAG}))
    elif variant == "same_content":
        items = same_content(catalog.client)
    else:
        items = catalog.client.list_dids(SCOPE, {"bench": TAG}, did_type="file")
    count = groups = pending = 0
    for _ in items:
        count += 1
        pending += 1
        if pending == 5:
            groups, pending = groups + 1, 0
    print(json.dumps({"count": count, "groups": groups + (pending > 0), "seconds": time.monotonic() - start}))


def same_content(client) -> Iterator[tuple[str, int, dict, list[str]]]:
    """Name, size, metadata and RSEs of each file with plain client calls, page by page."""
    names = client.list_dids(SCOPE, {"bench": TAG}, did_type="file")
    while page := [{"scope": SCOPE, "name": n} for n in itertools.islice(names, 1000)]:
        meta = {m["name"]: m for m in client.get_metadata_bulk(page, plugin="ALL")}
        rses = {r["name"]: list(r["rses"]) for r in client.list_replicas(page, sort="random")}
        for did in page:
            yield did["name"], meta[did["name"]]["bytes"], meta[did["name"]], rses[did["name"]]


def measure(variant: str) -> dict[str, float]:
    """Run ``consume(variant)`` in a child; its time and peak RSS (MB)."""
    proc = subprocess.Popen([sys.executable, __file__, "--consume", variant], stdout=subprocess.PIPE, text=True)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    if status:
        raise SystemExit(f"{variant} consumer failed")
    result = json.loads(out.strip().splitlines()[-1])
    return {**result, "peak_rss_mb": usage.ru_maxrss / 1024}


def main() -> None:
    settings = rucio_settings()
    if not answers(f"http://127.0.0.1:{settings['RUCIO_PORT']}"):
        subprocess.run(["bash", str(SERVICE / "start.sh")], check=True)
    setup(settings)
    bare = measure("list_dids")
    plain = measure("same_content")
    ours = measure("catalog")
    assert ours["count"] == bare["count"] == plain["count"] == COUNT, (ours, bare, plain)
    write_result("rucio_stream_100k", round(ours["seconds"], 2), "s",
                 baseline=round(bare["seconds"], 2),
                 ratio=round(ours["seconds"] / bare["seconds"], 2), dids=COUNT,
                 groups_of_5=ours["groups"], catalog_peak_rss_mb=round(ours["peak_rss_mb"], 1),
                 list_dids_peak_rss_mb=round(bare["peak_rss_mb"], 1),
                 same_content_s=round(plain["seconds"], 2),
                 ratio_vs_same_content=round(ours["seconds"] / plain["seconds"], 2),
                 same_content_peak_rss_mb=round(plain["peak_rss_mb"], 1),
                 catalog_fetches="names streamed; per 1000: get_metadata_bulk, and list_replicas "
                                 "overlapped with the next page's metadata",
                 list_dids_fetches="names only, whole response buffered by rucio-clients",
                 target="< 500 MB peak, within 1.2x")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--consume":
        consume(sys.argv[2])
    else:
        main()
