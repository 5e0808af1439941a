"""What a test run shows while the service fixtures start their services."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]

CONFTEST = '''
import tests.airflow_service, tests.rucio_service, tests.slurm_service

pytest_plugins = ["tests.rucio_service", "tests.slurm_service", "tests.airflow_service"]

# only the steps that would start (or stop) a real service are replaced
tests.rucio_service.run_script = lambda name: None
tests.slurm_service._running = lambda: False
tests.slurm_service._script = lambda name: None
tests.slurm_service._config = lambda key: ""
tests.airflow_service.AirflowCluster.up = lambda self: None
'''

TESTS = '''
def test_rucio(rucio_server): pass
def test_slurm(slurm_cluster): pass
def test_airflow(airflow_cluster): pass
'''


def test_fixtures_say_what_they_start_without_dash_s(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "test_services.py").write_text(TESTS)
    with socket.socket() as sock:  # a port no Rucio server answers on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(PROJECT), "RUCIO_PORT": str(port),
           "RUCIO_BASE": str(tmp_path / "rucio"), "SLURM_KEEP": "1", "TMPDIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:]
    lines = done.stdout.splitlines()
    assert f"rucio_server: installing (PostgreSQL, Rucio; a few minutes) and starting the " \
           f"Rucio server on http://127.0.0.1:{port}: services/rucio/start.sh (left running " \
           "afterwards; services/rucio/stop.sh stops it)" in lines
    assert "slurm_cluster: starting a single-node Slurm: services/slurm/start.sh" in lines
    assert any(line.startswith("airflow_cluster: starting Airflow (api-server, scheduler, "
                               "dag-processor, triggerer) in ") for line in lines), lines
