"""Register the demo production's DL0 input files in a catalog."""

from __future__ import annotations

import random
import tempfile
from pathlib import Path

from ctaoflow.catalog.base import Catalog, OutputFile
from ctaoflow.demo.payload import _write


def register_demo_inputs(catalog: Catalog, gamma: int = 40, proton: int = 20,
                         first_run: int = 1000, storage: str = "LOCAL-DISK",
                         extra: dict | None = None,
                         folder: str = "/ctao/ctao/demo/DL0") -> list[str]:
    """Make ``gamma`` + ``proton`` small DL0 files and register them with metadata.

    LFNs are ``<folder>/<particle>/<file>``, and ``folder`` is their dataset; ``folder``
    follows ``/ctao/<scope>/...``. Run numbers start at
    ``first_run``; the same arguments give the same LFNs, so
    registering twice is a no-op. ``extra`` metadata is added to every file (e.g. a
    tag that keeps one test's inputs apart on a shared catalog). Returns the LFNs.
    """
    outputs = []
    with tempfile.TemporaryDirectory() as tmp:
        for particle, count, offset in (("gamma", gamma, 0), ("proton", proton, 50000)):
            for i in range(count):
                run = first_run + offset + i
                rng = random.Random(run)
                path = Path(tmp) / f"{particle}_run{run:06d}.DL0.json"
                scale = 1.5 if particle == "gamma" else 1.0
                _write(str(path), events=[{"id": f"{run}.{e}", "particle": particle,
                                           "image": [scale * rng.random() for _ in range(8)]}
                                          for e in range(10)])
                outputs.append(OutputFile(
                    lfn=f"{folder}/{particle}/{path.name}", path=str(path),
                    metadata={"data_level": "DL0", "particle": particle, "run": run,
                              "zenith": 20 if i % 2 == 0 else 40, "site": "North",
                              **(extra or {})}))
        catalog.register(outputs, storage, folder)
    return [o.lfn for o in outputs]
