"""The seeds' campaign (config/productions/seeds_*.yaml) on real sim_telarray files.

Shared by tests/test_science_chain.py and benchmarks/bench_science.py. The five specs are
run as written, narrowed to one run's inputs: production names and every catalog query
get a unique tag (a shared Rucio never mixes two runs), commands point at
services/ctapipe/jobs and services/ctapipe/config, and jobs go to one site.

The data cannot support everything (see /work/shared/data/simtel/README.md): only the
prod4 SST-1M gamma file (31 showers) has enough events to train on, and no proton file
shares its subarray (which ctapipe's merge, apply and classifier need). So that one file
is registered (hard-linked by the catalog, never copied) as the DL0 of four subsets:
gamma-diffuse train_en, train_cl and test, and proton train_cl, the last one a gamma file
standing in for protons: the classifier's job relabels it as protons (MEANINGLESS model,
metadata quality MEANINGLESS).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from pathlib import Path

import yaml

from ctaoflow.backends import make_backend
from ctaoflow.catalog.base import Catalog, OutputFile
from ctaoflow.engine import ChunkResult, Engine
from ctaoflow.spec.graph import topological_order
from tests.ctapipe_service import CONFIG, JOBS

ROOT = Path(__file__).resolve().parents[1]
PRODUCTIONS = ROOT / "config" / "productions"
SIMTEL_DIR = Path(os.environ.get("CTAOFLOW_SIMTEL_DIR") or ROOT.parent / "shared" / "data" / "simtel")
SST1M = "gamma_20deg_0deg_run102___cta-prod4-sst-1m_desert-2150m-Paranal-sst-1m.simtel.zst"
SPECS = ("seeds_dl0_to_dl2", "seeds_merge", "seeds_train_energy", "seeds_train_classifier",
         "seeds_apply")
SUBSETS = (("gamma-diffuse", "train_en"), ("gamma-diffuse", "train_cl"),
           ("gamma-diffuse", "test"), ("proton", "train_cl"))
DL0 = {"MCCampaign": "PROD6", "array_layout": "Alpha", "site": "LaPalma", "thetaP": 20,
       "phiP": 180, "data_level": 0, "outputType": "Data"}
MEANINGLESS = {"quality": "MEANINGLESS"}


def campaign(tag: str, site: str, storage: str) -> list[dict]:
    """The five specs, tagged and pointed at this repository's job wrappers and ``site``."""
    specs = []
    for name in SPECS:
        spec = yaml.safe_load((PRODUCTIONS / f"{name}.yaml").read_text())
        spec["production"] = f"{name}_{tag}"
        spec["defaults"] = {"sites": [site], "storage": storage, "max_attempts": 1,
                            "poll_interval": 1,
                            "resources": {"cores": 1, "memory": "2GB", "walltime": "30m"}}
        for t in spec["transformations"]:
            job = t["job"]
            job.pop("resources", None)
            params = job.get("parameters", {})
            params["jobs"] = str(JOBS)
            if "config" in params:
                params["config"] = str(CONFIG / Path(params["config"]).name)
            if "query" in t["input"]:
                t["input"]["query"]["tag"] = tag
            for source in job.get("side_inputs", {}).values():
                if isinstance(source, dict):
                    source["tag"] = tag
            if t["name"] == "train_classifier":
                job["env"] = {"CTAPIPE_MEANINGLESS_BACKGROUND": "1"}
                t["outputs"][0]["metadata"].update(MEANINGLESS)
        specs.append(spec)
    return specs


def register_dl0(catalog: Catalog, tag: str, storage: str) -> list[str]:
    """The SST-1M gamma file as the DL0 of the four subsets; returns the LFNs."""
    folder = f"/ctao/ctao/MC/PROD6/DL0/{tag}"
    outputs = [OutputFile(f"{folder}/{particle}_{split}_run102.simtel.zst", str(SIMTEL_DIR / SST1M),
                          {**DL0, "particle": particle, "split": split, "tag": tag,
                           "simtel_file": SST1M, **(MEANINGLESS if particle == "proton" else {})})
               for particle, split in SUBSETS]
    catalog.register(outputs, storage, folder)
    return [o.lfn for o in outputs]


def drive(engine: Engine, timeout: float = 1200, pause: float = 0.5) -> None:
    """Run one production to completion without Airflow, its transformations concurrently
    (as its DAG's task instances would): prepare, submit, poll, collect, finalize."""
    engine.sync()
    order = [t.name for t in topological_order(engine.production)]
    running: dict[tuple[str, int], ChunkResult] = {}
    done: set[str] = set()
    deadline = time.monotonic() + timeout
    while len(done) < len(order):
        assert time.monotonic() < deadline, f"{engine.production.production}: not done: {sorted(set(order) - done)}"
        for (name, chunk), result in list(running.items()):
            statuses = {s: make_backend(engine.sites[s]).poll(ids) for s, ids in result.in_flight.items()}
            if all(st.state.final for by_id in statuses.values() for st in by_id.values()):
                engine.collect(name, chunk, statuses)
                result = engine.submit(name, chunk)
                assert not result.failed, f"{engine.production.production}/{name}: {result.failed}"
            if result.in_flight:
                running[(name, chunk)] = result
            else:
                del running[(name, chunk)]
        for name in order:  # parents first: a child takes in what its parent just made
            if name in done or any(n == name for n, _ in running):
                continue
            chunks = engine.prepare(name)
            for chunk in chunks:
                running[(name, chunk)] = engine.submit(name, chunk, revive=True)
            if not chunks and engine.finalize(name)["status"] == {"Completed": 1}:
                done.add(name)
        time.sleep(pause)


def drive_all(engines: Iterable[Engine], timeout: float = 1200) -> None:
    """The productions one after the other (each waits for its producers anyway)."""
    for engine in engines:
        drive(engine, timeout)
