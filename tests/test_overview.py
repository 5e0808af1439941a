"""The Productions UI's data and pages without a server: the ledger's grouped counts,
the drill-downs, the HTML and the actions, on a production whose gamma jobs fail."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from ctaoflow import settings
from ctaoflow.catalog.embedded import EmbeddedCatalog
from ctaoflow.demo.inputs import register_demo_inputs
from ctaoflow.engine import summarize
from ctaoflow.engine.ledger import FileRow, session_factory
from ctaoflow.ops import overview, report
from ctaoflow.ops.operations import OperationError, history
from tests.engine_driver import DATA, engine_for, run_all

sys.path.insert(0, str(Path(__file__).parents[1] / "plugins"))
from ctaoflow_ui import pages  # noqa: E402
from ctaoflow_ui.actions import ActionRequest, perform  # noqa: E402

pytestmark = pytest.mark.ledgers  # [sqlite] and [postgres] (tests/conftest.py)


@pytest.fixture
def failing(home: Path):
    """``failing`` run until its 5 gamma files are Problematic (2 attempts each)."""
    register_demo_inputs(EmbeddedCatalog(settings.home() / "catalog"), gamma=5, proton=5)
    engine = engine_for(DATA / "failing.yaml")
    run_all(engine)
    run_all(engine)
    return engine.production


def test_production_lines_count_what_the_ledger_holds(failing, monkeypatch) -> None:
    (line,) = overview.production_lines()
    files = summarize(failing)["process"]["files"]
    assert line.files == files == {"Processed": 5, "Problematic": 5}
    assert (line.dag_id, line.night, line.total, line.processed) == ("failing", None, 10, 5)
    assert line.needs_a_person == 5 and line.running == 0 and line.last_activity is not None
    assert overview.production_lines(dag_ids={"other"}) == []
    monkeypatch.setattr(overview, "FEW", 0)  # the full scan of many productions
    assert overview.production_lines() == [line]
    assert overview.dag_of("lst1_nightly.20261201.v0.12") == ("lst1_nightly", "20261201",
                                                              "v0.12")


def test_drill_down_from_problem_files_to_their_jobs(failing) -> None:
    files = overview.problem_files("failing")
    assert len(files) == 5 and {f["status"] for f in files} == {"Problematic"}
    assert {(f["site"], f["exit_code"], f["errors"]) for f in files} == {("local", 3, 2)}
    task = overview.task_detail("failing", "process", files[0]["task"])
    assert [(j["attempt"], j["exit_code"], j["site"]) for j in task["jobs"]] == [
        (1, 3, "local"), (2, 3, "local")]
    assert all(j["batch_id"] and j["class"] for j in task["jobs"])
    assert task["files"] == [{"lfn": f["lfn"], "status": "Problematic", "errors": 2}
                             for f in files]  # the 5 gamma files of one task
    chunk = overview.chunk_tasks("failing", "process", task["chunk"])
    assert files[0]["task"] in {t["task"] for t in chunk}
    jobs = overview.transformation_jobs("failing")["process"]
    assert jobs["sites"] == {"local": {"Done": 1, "Failed": 4}}  # 2 gamma tasks x 2 attempts
    assert sum(jobs["classes"].values()) == 4


def test_pages_show_the_numbers_and_hide_actions_from_readers(failing) -> None:
    lines = overview.production_lines()
    listing = pages.list_page("/ctaoflow", lines)
    assert "data-stuck='5'" in listing and "href='/ctaoflow/productions/failing'" in listing
    built = report.build(failing)
    order = [("process", [])]
    jobs = overview.transformation_jobs("failing")
    reader = pages.production_page("/ctaoflow", "failing", built, jobs, order, None, [], None,
                                   False, "t0ken")
    assert "id='no-actions'" in reader and "id='action-form'" not in reader
    assert "data-status=\"Problems\"" in reader  # the graph box of a transformation in trouble
    assert "<td class='n' data-column='Problematic'><a" in reader
    editor = pages.production_page("/ctaoflow", "failing", built, jobs, order, None, [], None,
                                   True, "t0ken")
    assert "data-token='t0ken'" in editor and "id='no-actions'" not in editor


def test_ui_actions_preview_then_act_and_are_signed(failing) -> None:
    preview = perform(failing, ActionRequest(action="reset", reason="disk fixed"), "alice",
                      list)
    assert preview["count"] == 5 and preview["message"].startswith("would reset 5")
    with session_factory()() as session:  # a preview changes nothing
        assert len(session.scalars(select(FileRow).filter_by(status="Problematic")).all()) == 5
    done = perform(failing, ActionRequest(action="reset", reason="disk fixed", dry_run=False),
                   "alice", list)
    assert done["count"] == 5 and not done["dry_run"]
    (action,) = history(failing)
    assert (action.user, action.reason, action.kind) == ("alice", "disk fixed", "reset")
    with pytest.raises(OperationError, match="sticky"):
        perform(failing, ActionRequest(action="reset", statuses=["Processed"]), "alice", list)
    with pytest.raises(OperationError, match="choose a transformation"):
        perform(failing, ActionRequest(action="flush"), "alice", list)
    audited = perform(failing, ActionRequest(action="audit", reason="weekly", dry_run=False),
                      "bob", lambda: ["task 3: job lost"])
    assert audited["message"] == "audit: 1 discrepancies"
    assert [(a.kind, a.user, a.what) for a in history(failing)][0] == (
        "audit", "bob", "audited: 1 discrepancies")
