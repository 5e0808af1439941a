"""The sites file: every mistake one line at its place, the whole file refused."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from ctaoflow import cli
from ctaoflow.sites import SitesError, load_sites

ROOT = Path(__file__).resolve().parents[1]
NAME_RULE = "start with a letter or digit, then letters, digits, '.', '_' or '-' (63 at most)"


def errors_of(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "sites.yaml"
    path.write_text(textwrap.dedent(text))
    with pytest.raises(SitesError) as info:
        load_sites(path)
    assert str(info.value).splitlines() == info.value.errors
    return [line.replace(f"{path}:", "S:", 1) for line in info.value.errors]


def test_the_project_sites_file_is_valid() -> None:
    sites = load_sites(ROOT / "config" / "sites.yaml")
    assert sites["local"].storages == ("LOCAL-DISK",) and sites["CSCS"].slots == 1500


def test_every_site_mistake_is_one_line_at_its_place(tmp_path: Path) -> None:
    assert errors_of(tmp_path, """\
        sites:
          local: {backend: local, slots: 8}
          local: {backend: slurm, slots: 8}
          CSCS: {backend: slrum, slots: -1, storages: CSCS-DISK, queue: 5}
          ../x: {backend: local}
          PIC: {backend: htcondor, slot: 3, status: paused, options: [a], storages: [../D]}
          K8S: {connection: k}
          BAD: local
          Z: {backend: local, queue: "a\\0b", slots: true}
        extra: 1
        """) == [
        "S:3:3: sites.local: duplicate key (first written at line 2); keep only one of them",
        ("S:4:19: sites.CSCS.backend: unknown backend 'slrum'; did you mean 'slurm'? (allowed: "
         "local, slurm, htcondor, kubernetes, simulated)"),
        ("S:4:33: sites.CSCS.slots: -1 is too small; write the number of jobs that may run "
         "at once (>= 1)"),
        "S:4:47: sites.CSCS.storages: expected a list, got the text 'CSCS-DISK'; write [CSCS-DISK]",
        "S:4:65: sites.CSCS.queue: expected text, got the number 5; quote it: '5'",
        f"S:5:3: sites.../x: '../x' is not a valid site name; {NAME_RULE}",
        "S:6:28: sites.PIC.slot: unknown key; did you mean 'slots'?",
        "S:6:45: sites.PIC.status: unknown status 'paused'; write one of: active, banned",
        "S:6:62: sites.PIC.options: expected a mapping, got a list; write 'options: {key: value}'",
        f"S:6:77: sites.PIC.storages: '../D' is not a valid storage name; {NAME_RULE}",
        ("S:7:3: sites.K8S: required key 'backend' missing; add 'backend:' with one of: local, "
         "slurm, htcondor, kubernetes, simulated"),
        ("S:8:8: sites.BAD: expected the site's settings, got the text 'local'; write "
         "'BAD: {backend: local}'"),
        ("S:9:30: sites.Z.queue: the value holds the control character '\\x00', which no "
         "command line or file name can carry; remove it"),
        ("S:9:45: sites.Z.slots: expected a whole number, got the boolean true; write e.g. "
         "'slots: 100'"),
        "S:10:1: extra: unknown key; a sites file holds only 'sites:'"]


@pytest.mark.parametrize("text, error", [
    ("sites:\n  local: {backend: local\n", "S:3:1: (syntax): expected ',' or '}', but got "
     "'<stream end>' (while parsing a flow mapping at line 2); close the bracket opened on "
     "that line, or quote values containing ':' or ','"),
    ("- local\n", "S:1:1: (document): expected a 'sites:' mapping of site names, got a list; "
     "write 'sites: {local: {backend: local}}'"),
    ("sites: {}\n", "S:1:8: sites: expected a 'sites:' mapping of site names, got no site; "
     "write 'sites: {local: {backend: local}}'"),
    ("", "S:1:1: (document): expected a 'sites:' mapping of site names, got nothing (null); "
     "write 'sites: {local: {backend: local}}'")])
def test_an_unreadable_sites_file_is_one_line(tmp_path: Path, text: str, error: str) -> None:
    assert errors_of(tmp_path, text) == [error]


def test_validate_reports_the_sites_file_then_the_specs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    sites = tmp_path / "sites.yaml"
    sites.write_text("sites: [local]\n")
    monkeypatch.setenv("CTAOFLOW_SITES", str(sites))
    spec = ROOT / "config" / "productions" / "demo.yaml"
    with pytest.raises(SystemExit) as info:
        cli.main(["validate", str(spec)])
    assert info.value.code == 1
    assert capsys.readouterr().err.splitlines() == [
        (f"{sites}:1:8: sites: expected a 'sites:' mapping of site names, got a list; write "
         "'sites: {local: {backend: local}}'")]
