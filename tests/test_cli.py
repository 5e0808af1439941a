"""The command line as a user meets it: version, help for everything, the environment."""

from __future__ import annotations

import argparse
import importlib.metadata
import re
from pathlib import Path

import pytest

from ctaoflow import cli

CORE = Path(__file__).resolve().parents[1] / "ctaoflow"


def subcommands() -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in cli.parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        cli.main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"ctaoflow {importlib.metadata.version('ctaoflow')}"


def test_every_command_and_argument_says_what_it_is() -> None:
    missing = []
    for name, parser in subcommands().items():
        if not parser.description:
            missing.append(f"{name}: no description")
        missing += [f"{name} {a.dest}: no help" for a in parser._actions
                    if not isinstance(a, argparse._HelpAction) and not a.help]
    assert missing == []


def test_help_names_every_environment_variable_the_core_reads() -> None:
    read = set()
    for path in CORE.rglob("*.py"):
        read |= set(re.findall(r"[\"'](CTAOFLOW_[A-Z_]+)[\"']", path.read_text()))
    read.discard("CTAOFLOW_LOCAL_JOB")  # the local backend's marker on its own job processes
    read.discard("CTAOFLOW_SIM_DURATION_S")  # read from a simulated job's spec env, not ours
    assert {"CTAOFLOW_HOME", "CTAOFLOW_SITES", "CTAOFLOW_LEDGER_TIMEOUT"} <= read
    text = cli.parser().format_help()
    assert [v for v in sorted(read) if v not in text] == []
    assert all(v in parser.format_help() for parser in subcommands().values() for v in read)
