"""``ctaoflow demo`` as a user runs it: a subprocess, its output as printed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]


def demo(home: Path, **popen: object) -> subprocess.Popen:
    """``ctaoflow demo --home home`` in a subprocess, text output piped."""
    bin_dir = str(Path(sys.executable).parent)  # local jobs run `python -m ctaoflow.runner`
    env = {**os.environ, "PYTHONPATH": str(PROJECT), "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    return subprocess.Popen([sys.executable, "-m", "ctaoflow.cli", "demo", "--home", str(home)],
                            cwd=PROJECT, env=env, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, **popen)


def warning_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if "Warning" in line or "[warning" in line]


def test_demo_prints_no_warning(tmp_path: Path) -> None:
    """Up to the DAG run: the metadata DB, Airflow's API modules, the inputs."""
    proc = demo(tmp_path / "demo")
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if line.startswith("[3/4]"):
            break
    proc.terminate()
    rest, err = proc.communicate(timeout=60)
    assert seen and seen[-1].startswith("[3/4]"), "".join(seen) + err
    assert warning_lines("".join(seen) + rest + err) == []
