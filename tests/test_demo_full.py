"""``ctaoflow demo --full`` as a user runs it, on a Rucio server other runs left files in."""

from __future__ import annotations

import random

import pytest

from ctaoflow.catalog.rucio import RucioCatalog
from ctaoflow.demo.inputs import register_demo_inputs
from tests.test_demo_command import PROJECT, demo, warning_lines

pytestmark = [pytest.mark.rucio, pytest.mark.slurm, pytest.mark.slow]


def files_by_status(output: str, transformation: str) -> dict[str, int]:
    """A transformation's file counts from the demo's summary table."""
    line = next(line for line in output.splitlines() if line.startswith(f"{transformation} "))
    counts = map(int, line.split()[2:7])
    return dict(zip(("Unused", "Assigned", "Processed", "Problematic", "MaxReset"), counts))


def test_full_demo_processes_the_inputs_it_registered(rucio_server, slurm_cluster, tmp_path):
    catalog = RucioCatalog(rucio_server["host"], username=rucio_server["username"],
                           password=rucio_server["password"], scope=rucio_server["scope"])
    # DL0 files another run left behind, which the plain demo query also matches
    register_demo_inputs(catalog, gamma=10, proton=5, first_run=random.randrange(10**5, 10**8))
    catalog.close()

    proc = demo(tmp_path / "demo", "--full")
    out, err = proc.communicate(timeout=900)
    assert proc.returncode == 0, out[-3000:] + err[-3000:]
    assert "registered 60 DL0 input files in the Rucio catalog" in out
    assert files_by_status(out, "process_gamma") == {
        "Unused": 0, "Assigned": 0, "Processed": 40, "Problematic": 0, "MaxReset": 0}
    assert files_by_status(out, "process_proton")["Processed"] == 20
    assert out.splitlines()[-3:] == [
        "Left running for the next run:",
        f"  the Rucio server and its PostgreSQL; stop with {PROJECT}/services/rucio/stop.sh",
        f"  Slurm (munged, slurmctld, slurmd); stop with {PROJECT}/services/slurm/stop.sh"]
    assert warning_lines(out + err) == []
