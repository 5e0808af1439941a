"""pytest plugin: the lstchain 0.12.3 job environment (services/lstchain) as a session fixture.

``lstchain_env`` runs ``services/lstchain/install.sh`` when the environment is missing or
older than ``services/lstchain/requirements.txt`` (saying so in one line on the terminal;
about two minutes from nothing) and returns the environment's ``bin`` directory. The
environment lives at ``$CTAOFLOW_LSTCHAIN_ENV`` (default ``var/lstchain``) and is kept.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.service_notice import announce

ROOT = Path(__file__).resolve().parent.parent
SERVICE = ROOT / "services" / "lstchain"
JOBS = SERVICE / "jobs"
STAMP_NAME = ".ctaoflow-installed"  # written by install.sh


def lstchain_env_path() -> Path:
    """Where install.sh puts (and the job wrappers look for) the lstchain virtualenv."""
    return Path(os.environ.get("CTAOFLOW_LSTCHAIN_ENV") or ROOT / "var" / "lstchain")


def up_to_date(env: Path) -> bool:
    stamp = env / STAMP_NAME
    return (stamp.exists() and stamp.stat().st_mtime > (SERVICE / "requirements.txt").stat().st_mtime
            and (env / "bin" / "lstchain_mc_r0_to_dl1").exists())


@pytest.fixture(scope="session")
def lstchain_env(pytestconfig: pytest.Config) -> Path:
    """The bin directory of an installed lstchain 0.12.3 environment (installed if needed)."""
    env = lstchain_env_path()
    if not up_to_date(env):
        announce(pytestconfig, f"lstchain_env: installing lstchain 0.12.3 (ctapipe 0.25) into {env}: "
                 "services/lstchain/install.sh (about 2 minutes; kept afterwards)")
    result = subprocess.run(["bash", str(SERVICE / "install.sh")], check=False, capture_output=True, text=True)
    if result.returncode:
        tail = (result.stdout + result.stderr).strip().splitlines()[-5:]
        pytest.fail("services/lstchain/install.sh failed: " + " | ".join(tail), pytrace=False)
    return env / "bin"
