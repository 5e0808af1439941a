"""pytest plugin: the local Rucio server (services/rucio) as a session fixture.

``rucio_server`` reuses a server already answering ``/ping``; otherwise it runs
``services/rucio/start.sh`` (which installs what is missing on first use), saying so
in one line on the terminal. It leaves
the server running afterwards, whoever started it: stop it with
``services/rucio/stop.sh``. Tests use unique names, so reruns share one server.
Settings (port, credentials, scope) come from ``services/rucio/env.sh`` and the
environment variables it reads.
"""

from __future__ import annotations

import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.service_notice import announce

SERVICE = Path(__file__).resolve().parent.parent / "services" / "rucio"


def rucio_settings() -> dict[str, str]:
    """The variables of services/rucio/env.sh, as the scripts see them."""
    names = ("RUCIO_PORT", "RUCIO_USERNAME", "RUCIO_PASSWORD", "RUCIO_SCOPE", "RUCIO_BASE", "RUCIO_RSES")
    script = f"source {SERVICE / 'env.sh'}; " + "; ".join(f'printf "%s\\0" "${name}"' for name in names)
    values = subprocess.run(["bash", "-c", script], check=True, capture_output=True, text=True).stdout
    return dict(zip(names, values.split("\0")))


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/ping", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def run_script(name: str) -> None:
    """Run services/rucio/<name>; fail the test run with its last lines if it fails."""
    result = subprocess.run(["bash", str(SERVICE / name)], check=False, capture_output=True, text=True)
    if result.returncode:
        tail = (result.stdout + result.stderr).strip().splitlines()[-5:]
        pytest.fail(f"services/rucio/{name} failed: " + " | ".join(tail), pytrace=False)


@pytest.fixture(scope="session")
def rucio_server(pytestconfig: pytest.Config) -> dict[str, Any]:
    """Connection parameters of a running local Rucio server (started if needed)."""
    settings = rucio_settings()
    host = f"http://127.0.0.1:{settings['RUCIO_PORT']}"
    if not answers(host):
        installed = Path(settings["RUCIO_BASE"], "venv", "bin", "gunicorn").exists()
        announce(pytestconfig, "rucio_server: " + ("starting" if installed else
                 "installing (PostgreSQL, Rucio; a few minutes) and starting")
                 + f" the Rucio server on {host}: services/rucio/start.sh (left running "
                 "afterwards; services/rucio/stop.sh stops it)")
        run_script("start.sh")
    return {
        "host": host, "account": "root", "auth_type": "userpass",
        "username": settings["RUCIO_USERNAME"], "password": settings["RUCIO_PASSWORD"],
        "scope": settings["RUCIO_SCOPE"], "rse_dir": f"{settings['RUCIO_BASE']}/rse",
        "rses": settings["RUCIO_RSES"].split(),
    }
