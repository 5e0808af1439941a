"""pytest plugin: the lstchain 0.12.3 job environment (services/lstchain) as a session fixture.

``lstchain_env`` runs ``services/lstchain/install.sh`` when the environment is missing or
older than ``services/lstchain/requirements.txt`` (saying so in one line on the terminal;
about two minutes from nothing) and returns the environment's ``bin`` directory. The
environment lives at ``$CTAOFLOW_LSTCHAIN_ENV`` (default ``var/lstchain``) and is kept.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.job_env import JobEnv

LSTCHAIN = JobEnv("lstchain", "CTAOFLOW_LSTCHAIN_ENV", "lstchain_mc_r0_to_dl1",
                  "lstchain 0.12.3 (ctapipe 0.25)", "about 2 minutes")
ROOT = LSTCHAIN.folder.parents[1]
SERVICE = LSTCHAIN.folder
JOBS = SERVICE / "jobs"
SIMTEL_DIR = Path(os.environ.get("CTAOFLOW_SIMTEL_DIR") or "/work/shared/data/simtel")
GAMMA = "history_meta_75.simtel.zst"  # 1 gamma shower, seen by the 4 LSTs (tel 1-4)
PROTON = "run202_proton_za20deg_azm0deg-North-Prod5_test-production-5-mini.simtel.zst"
R0_CONFIG = SERVICE / "config" / "mc_r0_to_dl1_four_lsts.json"
TRAIN_CONFIG = SERVICE / "config" / "train_tiny_meaningless.json"
CACHE = ROOT / "var" / "lstchain-cache"


@pytest.fixture(scope="session")
def lstchain_env(pytestconfig: pytest.Config) -> Path:
    """The bin directory of an installed lstchain 0.12.3 environment (installed if needed)."""
    return LSTCHAIN.install(pytestconfig)


def job(bin_dir: Path, script: str, *args: object) -> str:
    """Run services/lstchain/jobs/<script>; fail the test with its last lines if it fails."""
    env = {**os.environ, "CTAOFLOW_LSTCHAIN_ENV": str(bin_dir.parent)}
    done = subprocess.run(["bash", str(JOBS / script), *map(str, args)], env=env,
                          check=False, capture_output=True, text=True)
    if done.returncode:
        pytest.fail(f"{script} failed ({done.returncode}): " + (done.stdout + done.stderr)[-1500:], pytrace=False)
    return done.stdout


@pytest.fixture(scope="session")
def simtel_dir() -> Path:
    missing = [name for name in (GAMMA, PROTON) if not (SIMTEL_DIR / name).is_file()]
    if missing:
        pytest.skip(f"sim_telarray files {missing} not in {SIMTEL_DIR} (set CTAOFLOW_SIMTEL_DIR)")
    return SIMTEL_DIR


@pytest.fixture(scope="session")
def meaningless_models(lstchain_env: Path, simtel_dir: Path) -> dict[str, Path]:
    """A MEANINGLESS model set (tarball) and the two DL1 files it was trained on, made once per
    content and cached under var/lstchain-cache."""
    digest = hashlib.sha256()
    for part in (SERVICE / "requirements.txt", R0_CONFIG, TRAIN_CONFIG, JOBS / "train_models.sh",
                 JOBS / "subrun_r0_to_dl1_mc.sh"):
        digest.update(part.read_bytes())
    digest.update(f"{GAMMA}|{PROTON}".encode())
    key = digest.hexdigest()[:12]
    made = {"models": CACHE / f"MEANINGLESS-lst-models-{key}.tar",
            "gamma": CACHE / f"training-{key}" / "gamma.dl1.h5", "proton": CACHE / f"training-{key}" / "proton.dl1.h5"}
    for name, source in (("gamma", GAMMA), ("proton", PROTON)):
        if not made[name].exists():
            made["models"].unlink(missing_ok=True)
            job(lstchain_env, "subrun_r0_to_dl1_mc.sh", simtel_dir / source, made[name], R0_CONFIG)
    if not made["models"].exists():
        job(lstchain_env, "train_models.sh", made["gamma"], made["proton"], made["models"], TRAIN_CONFIG)
    return made


# runs in the lstchain environment (the test's own environment has no PyTables)
READER = r"""
import json, sys, tables, pandas as pd
result = []
for path, key in zip(sys.argv[1::2], sys.argv[2::2]):
    with tables.open_file(path) as h5:
        rows = {n._v_pathname: int(n.nrows) for n in h5.walk_nodes("/", "Table")}
        sources = ([s.decode() if isinstance(s, bytes) else s for s in h5.root.source_filenames.filenames.read()]
                   if "/source_filenames" in h5 else None)
    frame = pd.read_hdf(path, key=key)
    result.append({"rows": rows, "sources": sources, "columns": list(frame.columns),
                   "table": {c: frame[c].tolist() for c in frame.columns}})
print(json.dumps(result, default=str))
"""

def read(bin_dir: Path, *files: tuple[Path, str]) -> list[dict]:
    """Row counts of every table, /source_filenames and the table ``key`` of each (path, key),
    read in one start of the lstchain environment's Python (pandas and PyTables cost seconds)."""
    args = [str(part) for path_key in files for part in path_key]
    out = subprocess.run([str(bin_dir / "python"), "-c", READER, *args], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)
