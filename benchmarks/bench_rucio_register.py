"""Register 10,000 outputs with 5 metadata keys: RucioCatalog.register vs raw add_replicas.

RucioCatalog.register does everything a job's outputs need: existence check, checksums,
placing each file on the RSE (hard link), add_replicas with metadata, dataset + rule,
attachment. The baseline sends the same DIDs (sizes, checksums, metadata) as bare
``add_replicas`` calls of 1,000 files with the client directly, in the same run, under
fresh names. The two alternate, 1,000 files at a time (one ``register`` call per 1,000,
as the engine calls it once per chunk), so that both see the database grow alike.
Writes benchmarks/results/rucio_register_10k.json and prints it last.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._result import write_result
from ctaoflow.catalog.base import OutputFile
from ctaoflow.catalog.rucio import RucioCatalog, _checksums
from tests.rucio_service import SERVICE, answers, rucio_settings

COUNT = 10_000
CHUNK = 1000
SCOPE = "bench"
STORAGE = "LOCAL-DISK"


def make_outputs(directory: Path, run: str) -> list[OutputFile]:
    outputs = []
    for i in range(COUNT):
        path = directory / f"out_{i:05d}.dl1.h5"
        path.write_bytes(f"event data {i}\n".encode() * (1 + i % 50))
        meta = {"bench": run, "particle": ("gamma", "proton")[i % 2], "zenith": (20, 40, 60)[i % 3],
                "energy": i / 100, "site": f"s{i % 5}"}
        outputs.append(OutputFile(f"/ctao/{SCOPE}/{run}/catalog/out_{i:05d}.dl1.h5", str(path), meta))
    return outputs


def raw_entries(outputs: list[OutputFile], run: str) -> list[dict]:
    entries = []
    for output in outputs:
        size, adler32, md5 = _checksums(output.path)
        name = output.lfn.replace(f"/{run}/catalog/", f"/{run}/raw/")
        entries.append({"scope": SCOPE, "name": name, "bytes": size, "adler32": adler32, "md5": md5,
                        "meta": output.metadata})
    return entries


def main() -> None:
    from rucio.common.exception import Duplicate

    settings = rucio_settings()
    host = f"http://127.0.0.1:{settings['RUCIO_PORT']}"
    if not answers(host):
        subprocess.run(["bash", str(SERVICE / "start.sh")], check=True)
    catalog = RucioCatalog(host, username=settings["RUCIO_USERNAME"], password=settings["RUCIO_PASSWORD"],
                           scope=SCOPE, name="bench")
    try:
        catalog.client.add_scope("root", SCOPE)
    except Duplicate:
        pass
    run = "r" + uuid.uuid4().hex[:8]
    with tempfile.TemporaryDirectory(prefix="ctaoflow-bench-") as tmp:
        outputs = make_outputs(Path(tmp), run)
        entries = raw_entries(outputs, run)

        raw = ours = 0.0
        new = 0
        for i in range(0, COUNT, CHUNK):
            start = time.monotonic()
            catalog.client.add_replicas(rse=STORAGE, files=entries[i:i + CHUNK])
            raw += time.monotonic() - start
            start = time.monotonic()
            new += catalog.register(outputs[i:i + CHUNK], STORAGE, f"/ctao/{SCOPE}/{run}/catalog")
            ours += time.monotonic() - start
        assert new == COUNT, new

        start = time.monotonic()
        assert catalog.register(outputs, STORAGE, f"/ctao/{SCOPE}/{run}/catalog") == 0
        again = time.monotonic() - start
    write_result("rucio_register_10k", round(ours, 2), "s", baseline=round(raw, 2),
                 ratio=round(ours / raw, 2), files=COUNT, metadata_keys=5, batch=CHUNK,
                 catalog_ms_per_file=round(1000 * ours / COUNT, 2),
                 raw_add_replicas_ms_per_file=round(1000 * raw / COUNT, 2),
                 reregister_noop_s=round(again, 2), target="within 1.5x")


if __name__ == "__main__":
    main()
