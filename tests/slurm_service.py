"""pytest plugin: a real single-node Slurm for the tests (``services/slurm/start.sh``).

Loaded by ``pytest_plugins`` in tests/conftest.py.
``slurm_cluster`` reuses a running Slurm or starts one (root; installs the Debian
packages on a fresh machine), saying so in one line on the terminal, and stops it at
the end of the session if it started it, unless SLURM_KEEP=1.
``restart_slurmctld`` restarts the controller only.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from ctaoflow.backends.base import SiteConfig
from tests.service_notice import announce

SERVICE = Path(__file__).resolve().parents[1] / "services" / "slurm"


@dataclass(frozen=True)
class SlurmCluster:
    site: SiteConfig  # a site whose jobs run on this Slurm (partition "debug")
    jobcomp: Path  # the jobcomp/filetxt log: one line per finished job
    conf: Path  # slurm.conf used by the daemons and the client commands


def _running() -> bool:
    """True if the controller answers and the node takes jobs."""
    try:
        state = subprocess.run(["sinfo", "-h", "-N", "-n", "localhost", "-o", "%T"],
                               capture_output=True, text=True, timeout=30, check=False).stdout.strip()
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return False
    return state in ("idle", "mixed", "allocated", "completing")


def _script(name: str) -> None:
    proc = subprocess.run([str(SERVICE / name)], capture_output=True, text=True, timeout=600,
                          check=False)
    if proc.returncode:
        pytest.fail(f"{name} failed: {(proc.stderr or proc.stdout).strip()[-2000:]}")


def _config(key: str) -> str:
    out = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True,
                         timeout=30, check=True).stdout
    match = re.search(rf"^{key}\s*=\s*(.*?)\s*$", out, re.MULTILINE)
    return match[1] if match else ""


@pytest.fixture(scope="session")
def slurm_cluster(pytestconfig: pytest.Config) -> Iterator[SlurmCluster]:
    started = not _running()
    if started:
        installed = Path("/usr/sbin/slurmctld").exists()
        announce(pytestconfig, "slurm_cluster: " + ("starting" if installed else
                 "installing (Debian slurm-wlm, munge; a minute or two) and starting")
                 + " a single-node Slurm: services/slurm/start.sh")
        _script("start.sh")
    conf = Path(os.environ.get("SLURM_CONF", "/etc/slurm/slurm.conf"))
    yield SlurmCluster(site=SiteConfig(name="slurm-local", backend="slurm", queue="debug"),
                       jobcomp=Path(_config("JobCompLoc")), conf=conf)
    if started and os.environ.get("SLURM_KEEP") != "1":
        _script("stop.sh")


def use_slurm_site(cluster: SlurmCluster, folder: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Write ``folder``/sites.yaml with one site, ``slurm``, on ``cluster`` (32 slots, storage
    LOCAL-DISK), point CTAOFLOW_SITES at it and put this virtualenv's python first on PATH
    (for the jobs); returns the site name."""
    sites = folder / "sites.yaml"
    sites.write_text(yaml.safe_dump({"sites": {"slurm": {
        "backend": "slurm", "queue": cluster.site.queue, "slots": 32, "storages": ["LOCAL-DISK"]}}}))
    monkeypatch.setenv("CTAOFLOW_SITES", str(sites))
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    return "slurm"


@pytest.fixture
def restart_slurmctld(slurm_cluster: SlurmCluster) -> Callable[[], None]:
    """Restart slurmctld only (state kept; running jobs go on under slurmd)."""
    return lambda: _script("restart_ctld.sh")
