"""The seeds' ctapipe campaign through ctaoflow against the same commands run directly.

The five productions of config/productions/seeds_*.yaml on the real SST-1M sim_telarray
file as four DL0 subsets (tests/science_chain.py): 4 ctapipe-process, 3 x 4 ctapipe-merge,
the energy regressor, the energy applied twice, the (MEANINGLESS) classifier, the final
apply: 20 jobs. ctaoflow runs them on the local backend with 2 slots and an embedded
catalog, driven without Airflow (tests/science_chain.py: drive), production after
production.

value = ctaoflow's makespan: wall seconds from the first sync to the last production
Completed (the DL0 registration before it is not counted).
baseline = the same job wrappers (services/ctapipe/jobs, the same ctapipe commands) run
directly, stage after stage in the same order, 2 at a time (a thread pool of 2), in the
same run. Target: ratio <= 1.3.
ctaoflow_cpu_s: CPU seconds (user + system) of this process during the ctaoflow phase
(the engine: intake, grouping, submission, polling, registration, ledger) plus the local
backend's spool daemon's own (not its jobs').

    flock /tmp/ctaoflow-heavy.lock .venv/bin/python benchmarks/bench_science.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._result import write_result  # noqa: E402
from tests.ctapipe_service import CONFIG, JOBS  # noqa: E402
from tests.science_chain import SIMTEL_DIR, SST1M, SUBSETS, campaign, drive_all, register_dl0  # noqa: E402

SLOTS = 2


def ctaoflow_run(work: Path) -> tuple[float, float, int]:
    """(makespan s, ctaoflow CPU s, jobs) of the campaign through the engine."""
    home = work / "home"
    os.environ["CTAOFLOW_HOME"] = str(home)
    sites = work / "sites.yaml"
    sites.write_text(yaml.safe_dump({"sites": {"local": {
        "backend": "local", "slots": SLOTS, "storages": ["LOCAL-DISK"],
        "options": {"root": str(work / "spool")}}}}))
    os.environ["CTAOFLOW_SITES"] = str(sites)
    from ctaoflow.backends import make_backend
    from ctaoflow.catalog.embedded import EmbeddedCatalog
    from ctaoflow.engine import Engine
    from ctaoflow.sites import load_sites
    from ctaoflow.spec.model import Production

    catalog = EmbeddedCatalog(home / "catalog")
    tag = "bench" + uuid.uuid4().hex[:6]
    engines = [Engine(Production.model_validate(s), catalog, load_sites(), make_backend)
               for s in campaign(tag, "local", "LOCAL-DISK")]
    register_dl0(catalog, tag, "LOCAL-DISK")
    daemon_cpu, stop = _watch_daemon(work / "spool")
    me = psutil.Process()
    cpu0, t0 = sum(me.cpu_times()[:2]), time.monotonic()
    for engine in engines:
        engine.sync()
    drive_all(engines)
    makespan, cpu = time.monotonic() - t0, sum(me.cpu_times()[:2]) - cpu0
    stop.set()
    jobs = sum(j for e in engines for s in e.summary().values() for j in s["jobs"].values())
    return makespan, cpu + daemon_cpu["s"], jobs


def _watch_daemon(spool: Path) -> tuple[dict[str, float], threading.Event]:
    """The spool daemon's own CPU seconds, sampled until ``stop`` (it exits when idle)."""
    seen, stop = {"s": 0.0}, threading.Event()
    total: dict[int, float] = {}

    def watch() -> None:
        while not stop.is_set():
            for p in psutil.process_iter(["cmdline"]):
                cmd = p.info["cmdline"] or []
                if "ctaoflow.backends.local" in cmd and str(spool) in cmd:
                    try:
                        total[p.pid] = sum(p.cpu_times()[:2])
                    except psutil.Error:
                        pass
            seen["s"] = sum(total.values())
            time.sleep(0.5)

    threading.Thread(target=watch, daemon=True).start()
    return seen, stop


def direct_run(work: Path) -> float:
    """Wall seconds of the same wrappers, stage after stage, ``SLOTS`` at a time."""
    out = work / "direct"
    out.mkdir()
    dl0 = SIMTEL_DIR / SST1M
    subsets = [f"{p}_{s}" for p, s in SUBSETS]
    h5 = {k: out / f"{k}.DL2.h5" for k in subsets}
    merged = {(k, m): out / f"{k}_merged{m}.DL2.h5" for k in subsets for m in (1, 2, 3)}
    energy, classifier = out / "energy.pkl", out / "classifier.pkl"
    final = {k: out / f"{k}_energy.DL2.h5" for k in subsets}
    stages = [
        [["process.sh", dl0, h5[k], CONFIG / "process_dl1_dl2.yaml"] for k in subsets],
        *[[["merge.sh", merged[(k, m)], merged[(k, m - 1)] if m > 1 else h5[k]] for k in subsets]
          for m in (1, 2, 3)],
        [["train_energy.sh", merged[("gamma-diffuse_train_en", 3)], energy,
          CONFIG / "train_energy_regressor.yaml"]],
        [["apply_models.sh", merged[(k, 3)], final[k], energy]
         for k in ("gamma-diffuse_train_cl", "proton_train_cl")],
        [["train_classifier.sh", final["gamma-diffuse_train_cl"], final["proton_train_cl"],
          classifier, CONFIG / "train_particle_classifier.yaml"]],
        [["apply_models.sh", merged[("gamma-diffuse_test", 3)], out / "test.DL2.h5", energy,
          classifier]],
    ]
    env = {**os.environ, "CTAPIPE_MEANINGLESS_BACKGROUND": "1"}
    t0 = time.monotonic()
    with ThreadPoolExecutor(SLOTS) as pool:
        for stage in stages:
            for done in pool.map(lambda c: subprocess.run([str(JOBS / c[0]), *map(str, c[1:])], env=env,
                                                          check=False, capture_output=True, text=True),
                                 stage):
                if done.returncode:
                    raise SystemExit(f"direct run failed: {done.args[0]}: {done.stderr[-500:]}")
    return time.monotonic() - t0


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-science-") as tmp:
        work = Path(tmp)
        makespan, cpu, jobs = ctaoflow_run(work)
        baseline = direct_run(work)
    write_result("science_chain_makespan", round(makespan, 1), "s", round(baseline, 1),
                 round(makespan / baseline, 3), ctaoflow_cpu_s=round(cpu, 1), jobs=jobs,
                 slots=SLOTS, target_ratio=1.3)


if __name__ == "__main__":
    main()
