"""``ctaoflow demo`` as a user runs it: a subprocess, its output as printed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[1]


def demo(home: Path, *options: str) -> subprocess.Popen:
    """``ctaoflow demo --home home [options]`` in a subprocess, text output piped."""
    bin_dir = str(Path(sys.executable).parent)  # local jobs run `python -m ctaoflow.runner`
    env = {**os.environ, "PYTHONPATH": str(PROJECT), "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    return subprocess.Popen([sys.executable, "-m", "ctaoflow.cli", "demo", "--home", str(home),
                             *options],
                            cwd=PROJECT, env=env, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


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


@pytest.mark.slow
def test_second_demo_in_the_same_home_says_so_in_one_line(tmp_path: Path) -> None:
    home = tmp_path / "demo"
    first = demo(home)
    assert first.stdout.readline() == f"ctaoflow demo: state in {home}\n"  # it holds the lock
    second = demo(home)
    out, err = second.communicate(timeout=120)
    assert second.returncode == 1
    assert out == ""
    assert err.splitlines() == [
        f"ctaoflow demo: a demo is already running in {home} (pid {first.pid}); wait for it "
        "to end, or pass --home DIR to run another one elsewhere"]
    out, err = first.communicate(timeout=600)
    assert first.returncode == 0, out[-2000:] + err[-2000:]
    assert "DAG run success" in out
    assert warning_lines(out + err) == []
