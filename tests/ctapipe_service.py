"""pytest plugin: the ctapipe 0.32 job environment (services/ctapipe) as a session fixture.

``ctapipe_env`` runs ``services/ctapipe/install.sh`` when the environment is missing or
older than ``services/ctapipe/requirements.txt`` (saying so in one line on the terminal;
about a minute from nothing) and returns the environment's ``bin`` directory. The
environment lives at ``$CTAOFLOW_CTAPIPE_ENV`` (default ``var/ctapipe``) and is kept.
``inspect_h5`` reads ctapipe files back with ctapipe itself, in that environment.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.job_env import JobEnv

CTAPIPE = JobEnv("ctapipe", "CTAOFLOW_CTAPIPE_ENV", "ctapipe-process", "ctapipe 0.32.0 (Python 3.12)",
                 "about a minute")
SERVICE = CTAPIPE.folder
JOBS = SERVICE / "jobs"
CONFIG = SERVICE / "config"


@pytest.fixture(scope="session")
def ctapipe_env(pytestconfig: pytest.Config) -> Path:
    """The bin directory of an installed ctapipe 0.32.0 environment (installed if needed)."""
    return CTAPIPE.install(pytestconfig)


INSPECT = r"""
import json, sys, warnings
warnings.filterwarnings("ignore")
import tables
from ctapipe.io import TableLoader, read_table
from ctapipe.reco import Reconstructor

full, out = set(sys.argv[1].split(",")), {}
for path in sys.argv[2:]:
    if path.endswith(".pkl"):
        model = Reconstructor.read(path)
        out[path] = {"model": type(model).__name__, "prefix": model.prefix}
        continue
    with tables.open_file(path) as f:
        nodes = sorted(n._v_pathname for n in f.walk_nodes("/", "Table"))
    out[path] = {"events": len(read_table(path, "/dl1/event/subarray/trigger")), "tables": nodes}
    if path in full:
        with TableLoader(path) as loader:
            events = loader.read_subarray_events(dl2=True, simulated=True)
        out[path].update(events=len(events), columns=sorted(events.colnames),
                         primaries=sorted({int(p) for p in events["true_shower_primary_id"]}))
print(json.dumps(out))
"""


def inspect_h5(bin_dir: Path, paths: list[str], full: list[str] = ()) -> dict[str, dict]:
    """Path -> what ctapipe reads in it: for an HDF5 file its tables and subarray events
    (ctapipe's read_table; for those in ``full`` by TableLoader, with their DL2 and simulated
    columns and true primaries), for a model pickle its reconstructor class."""
    done = subprocess.run([str(bin_dir / "python"), "-c", INSPECT, ",".join(full), *paths],
                          check=False, capture_output=True, text=True)
    if done.returncode:
        pytest.fail(f"reading {len(paths)} file(s) with ctapipe failed: {done.stderr[-1500:]}", pytrace=False)
    return json.loads(done.stdout.strip().splitlines()[-1])
