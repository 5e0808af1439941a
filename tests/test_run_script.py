"""The README's test command, ``./run.sh test``, and the pytest options it reads."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]


def test_run_sh_test_lists_the_slowest_tests(tmp_path: Path) -> None:
    venv = tmp_path / "venv"  # this interpreter, stamped as installed: run.sh installs nothing
    (venv / "bin").mkdir(parents=True)
    python = venv / "bin" / "python"
    python.write_text(f'#!/bin/sh\nexec {sys.executable} "$@"\n')
    python.chmod(0o755)
    (venv / ".installed").touch()
    done = subprocess.run(
        ["./run.sh", "test", "tests/test_grouping.py", "-q", "-p", "no:cacheprovider"],
        cwd=PROJECT, env={**os.environ, "CTAOFLOW_VENV": str(venv)},
        capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "slowest 20 durations" in done.stdout


def test_tests_print_no_starlette_warning(tmp_path: Path) -> None:
    test = tmp_path / "test_execution_api.py"
    test.write_text("import airflow  # sets up Airflow's logging at collection, as the suite does\n"
                    "\n\ndef test_import():  # the import that makes Starlette warn\n"
                    "    import airflow.api_fastapi.execution_api.app  # noqa: F401\n")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-c", "pyproject.toml", str(test), "-p",
         "no:cacheprovider"],
        cwd=PROJECT, env={**os.environ, "PYTHONPATH": str(PROJECT)},
        capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:]
    assert "1 passed" in done.stdout
    assert "Warning" not in done.stdout + done.stderr
