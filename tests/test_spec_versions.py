"""Changes to a production in flight: versions of the spec in the ledger, harmless
changes applied and recorded, changes that would redo or orphan work refused."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from sqlalchemy import func, select

from ctaoflow import cli
from ctaoflow.demo.inputs import register_demo_inputs
from ctaoflow.engine.ledger import (EventRow, FileRow, ProductionRow, SpecVersionRow,
                                    TransformationRow)
from ctaoflow.engine import versions as versions_module
from ctaoflow.engine.versions import SpecChangeRefused
from ctaoflow.ops import report
from ctaoflow.ops.operations import signature
from tests.engine_driver import engine_for, run_all

pytestmark = pytest.mark.ledgers  # [sqlite] and [postgres] (tests/conftest.py)

DEMO = Path(__file__).parents[1] / "config" / "productions" / "demo.yaml"


def demo() -> dict:
    return yaml.safe_load(DEMO.read_text())


def transformation(spec: dict, name: str) -> dict:
    return next(t for t in spec["transformations"] if t["name"] == name)


def versions(engine) -> list[tuple[int, str]]:
    with engine.sessions() as session:
        return [(v.version, v.how) for v in session.scalars(
            select(SpecVersionRow).order_by(SpecVersionRow.version))]


def renamed(spec: dict) -> dict:
    """The issue's edit: process_proton renamed to process_protons."""
    spec = copy.deepcopy(spec)
    transformation(spec, "process_proton")["name"] = "process_protons"
    transformation(spec, "merge_proton")["input"]["from"] = "process_protons"
    return spec


@pytest.fixture
def completed(home: Path) -> dict:
    """The demo production run to completion on a few files."""
    engine = engine_for(demo())
    register_demo_inputs(engine.catalog, gamma=10, proton=10)
    run_all(engine)
    assert engine.summary()["train_classifier"]["tasks"] == {"Done": 1}
    return demo()


def test_first_sync_records_version_1_and_an_unchanged_spec_adds_none(home: Path) -> None:
    engine = engine_for(demo())
    engine.sync()
    engine.sync()
    engine_for(demo()).sync()
    assert versions(engine) == [(1, "first")]


def test_a_ledger_without_history_takes_the_current_spec_as_version_1(home: Path) -> None:
    engine = engine_for(demo())
    engine.sync()
    with engine.sessions.begin() as session:  # as an earlier ctaoflow left it
        session.query(SpecVersionRow).delete()
        session.scalar(select(ProductionRow)).spec_hash = "0" * 64
    edited = renamed(demo())
    engine = engine_for(edited)
    engine.sync()  # nothing to judge against
    assert versions(engine) == [(1, "adopted")]


def test_renaming_a_transformation_of_a_completed_demo_is_refused(completed: dict) -> None:
    engine = engine_for(renamed(completed))
    with pytest.raises(SpecChangeRefused) as refused:
        engine.sync()
    line = str(refused.value)
    assert "\n" not in line
    assert "process_proton renamed to process_protons while it has 10 file(s)" in line
    assert "merge_proton: input query changed" in line
    assert "train_classifier: its all group already ran" in line
    assert "ctaoflow accept SPEC.yaml --reason" in line
    with pytest.raises(SpecChangeRefused):  # no stage runs on a refused spec
        engine.prepare("merge_proton")
    with engine.sessions() as session:
        assert session.scalar(select(func.count()).select_from(TransformationRow)
                              .filter_by(name="process_protons")) == 0
    assert versions(engine) == [(1, "first")]


@pytest.mark.parametrize("edit, expected", [
    (lambda s: s["transformations"].remove(transformation(s, "apply_gamma")),
     "apply_gamma removed while it has"),
    (lambda s: transformation(s, "process_gamma")["input"]["query"].update(zenith=20),
     "process_gamma: input query changed"),
    (lambda s: transformation(s, "process_gamma")["outputs"][0].update(name="{task}.DL1.h5"),
     "process_gamma: outputs changed"),
    (lambda s: s.update(lfn_base="/ctao/elsewhere/{production}"), "lfn_base changed"),
    (lambda s: transformation(s, "merge_gamma")["grouping"].update(plugin="all"),
     "merge_gamma: grouping changed to all"),
    (lambda s: s["transformations"].append(
        {**copy.deepcopy(transformation(s, "merge_proton")), "name": "merge_proton_again"})
     or transformation(s, "train_classifier")["input"].update(
        query={"data_level": "DL1", "merged": 1}, **{"from": []}),
     r"train_classifier: its all group already ran, .* upstream \(merge_proton_again\)"),
])
def test_changes_that_would_redo_or_orphan_work_are_refused(completed: dict, edit,
                                                            expected: str) -> None:
    spec = copy.deepcopy(completed)
    edit(spec)
    with pytest.raises(SpecChangeRefused, match=expected):
        engine_for(spec).sync()


def test_harmless_changes_apply_and_are_recorded(completed: dict) -> None:
    spec = copy.deepcopy(completed)
    spec["description"] = "the demo, edited"
    spec["defaults"]["max_attempts"] = 5
    process = transformation(spec, "process_gamma")
    process["grouping"]["group_size"] = 2
    process["job"]["resources"] = {"memory": "1GB"}
    process["sites"] = ["local"]
    spec["transformations"].append({**copy.deepcopy(process), "name": "process_gamma_20",
                                    "input": {"query": {"data_level": "DL0", "zenith": 20}}})
    engine = engine_for(spec)
    engine.sync()
    assert versions(engine) == [(1, "first"), (2, "harmless")]
    history = report.spec_versions(engine.production)
    assert "description changed" in history[1] and "defaults.max_attempts changed" in history[1]
    assert "process_gamma: grouping.group_size changed" in history[1]
    assert "new transformation process_gamma_20" in history[1]
    assert "Spec versions:" in report.as_text(report.build(engine.production))
    with engine.sessions() as session:
        assert "spec version 2: grouping.group_size changed" in session.scalars(
            select(EventRow.message).where(EventRow.kind == "spec")).all()[0]
    register_demo_inputs(engine.catalog, gamma=4, proton=0, first_run=3000)
    run_all(engine)  # the new group size applies to the new files only
    assert engine.summary()["process_gamma"]["tasks"] == {"Done": 4}


def test_accept_applies_a_refused_change_on_purpose_and_records_why(
        completed: dict, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "demo.yaml"
    spec = copy.deepcopy(completed)
    spec["transformations"].remove(transformation(spec, "apply_gamma"))
    path.write_text(yaml.safe_dump(spec))
    with pytest.raises(SystemExit) as code:
        cli.main(["accept", str(path), "--reason", "DL2 no longer needed"])
    assert code.value.code == 0
    assert "spec version 2 accepted (apply_gamma removed while it has" in capsys.readouterr().out
    engine = engine_for(spec)
    with engine.sessions() as session:
        (message,) = session.scalars(select(EventRow.message).filter_by(kind="accept"))
    assert "spec version 2 accepted" in message
    assert signature(message)[1] == "DL2 no longer needed"
    run_all(engine)
    assert versions(engine) == [(1, "first"), (2, "accepted")]
    text = report.as_text(report.build(engine.production))
    assert "(reason: DL2 no longer needed)" in text and "apply_gamma" not in text.split("\n\n")[1]
    with engine.sessions() as session:
        row = session.scalar(select(TransformationRow).filter_by(name="apply_gamma"))
        assert row.status == "Removed"
        assert session.scalar(select(func.count()).select_from(FileRow)
                              .filter_by(transformation_id=row.id)) > 0  # its history stays
        assert session.scalar(select(ProductionRow.status)) == "Completed"
    with pytest.raises(SystemExit):
        cli.main(["status", str(path)])
    assert "accepted: apply_gamma removed while it has" in capsys.readouterr().out
    with pytest.raises(SystemExit) as code:  # the same spec again: nothing to accept
        cli.main(["accept", str(path), "--reason", "again"])
    assert code.value.code == 1
    assert capsys.readouterr().err.count("\n") == 1


def test_render_refuses_to_overwrite_its_input(tmp_path: Path,
                                               capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "demo.yaml"
    path.write_text(DEMO.read_text())
    with pytest.raises(SystemExit) as code:
        cli.main(["render", str(path), "-o", str(tmp_path / "." / "demo.yaml")])
    assert code.value.code == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is the input file" in err
    assert path.read_text() == DEMO.read_text()


def test_two_syncs_racing_for_the_next_version_both_succeed(
        completed: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = copy.deepcopy(completed)
    spec["description"] = "edited while chunks run"
    engine_for(spec).sync()  # the winner records version 2
    stale = engine_for(completed)
    with stale.sessions() as session:
        first = session.scalar(select(SpecVersionRow).filter_by(version=1))
    real = versions_module.latest
    calls = iter([first])  # the loser read the latest version before the winner committed
    monkeypatch.setattr(versions_module, "latest", lambda *a: next(calls, None) or real(*a))
    engine = engine_for(spec)
    engine.sync()
    assert versions(engine) == [(1, "first"), (2, "harmless")]


def test_a_stage_runs_when_the_ledger_hash_was_overwritten_by_an_older_ctaoflow(
        completed: dict) -> None:
    engine = engine_for(completed)
    with engine.sessions.begin() as session:
        session.scalar(select(ProductionRow)).spec_hash = "0" * 64
    assert engine.prepare("process_gamma") == []
    assert versions(engine) == [(1, "first")]


def test_a_stored_version_that_no_longer_reads_refuses_a_change_not_a_traceback(
        completed: dict) -> None:
    engine = engine_for(completed)
    with engine.sessions.begin() as session:
        session.scalar(select(SpecVersionRow)).spec = '{"production": "demo", "bogus": 1'
    spec = copy.deepcopy(completed)
    spec["description"] = "edited"
    with pytest.raises(SpecChangeRefused, match="version 1 in the ledger no longer reads"):
        engine_for(spec).sync()
    engine = engine_for(completed)
    engine.sync()  # the spec of version 1, unchanged: nothing to judge
    assert versions(engine) == [(1, "first")]
