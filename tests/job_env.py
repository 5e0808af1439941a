"""A jobs' software environment installed by a project script (services/<name>/install.sh):
where it lives, whether it is up to date, and installing it from a session fixture."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.service_notice import announce

ROOT = Path(__file__).resolve().parent.parent
STAMP_NAME = ".ctaoflow-installed"  # written by install.sh


@dataclass(frozen=True)
class JobEnv:
    service: str  # the folder under services/
    variable: str  # the environment variable that moves it (default <repo>/var/<service>)
    tool: str  # a program of its bin directory that proves the install
    what: str  # for the one-line notice, e.g. "lstchain 0.12.3 (ctapipe 0.25)"
    minutes: str  # how long an install from nothing takes, e.g. "about 2 minutes"

    @property
    def folder(self) -> Path:
        return ROOT / "services" / self.service

    def path(self) -> Path:
        """Where install.sh puts (and the job wrappers look for) the virtualenv."""
        return Path(os.environ.get(self.variable) or ROOT / "var" / self.service)

    def up_to_date(self, env: Path) -> bool:
        stamp = env / STAMP_NAME
        return (stamp.exists() and stamp.stat().st_mtime > (self.folder / "requirements.txt").stat().st_mtime
                and (env / "bin" / self.tool).exists())

    def install(self, pytestconfig: pytest.Config) -> Path:
        """The bin directory of the installed environment (install.sh run first if needed)."""
        env = self.path()
        if not self.up_to_date(env):
            announce(pytestconfig, f"{self.service}_env: installing {self.what} into {env}: "
                     f"services/{self.service}/install.sh ({self.minutes}; kept afterwards)")
        result = subprocess.run(["bash", str(self.folder / "install.sh")], check=False, capture_output=True, text=True)
        if result.returncode:
            tail = (result.stdout + result.stderr).strip().splitlines()[-5:]
            pytest.fail(f"services/{self.service}/install.sh failed: " + " | ".join(tail), pytrace=False)
        return env / "bin"
