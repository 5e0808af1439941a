"""Operator actions, the report and the audit on real small productions."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from ctaoflow.ops import operations, report
from ctaoflow.ops.audit import audit
from ctaoflow.backends import make_backend
from ctaoflow.demo.inputs import register_demo_inputs
from ctaoflow.engine import summarize
from ctaoflow.engine import outbox
from ctaoflow.engine.ledger import OutboxRow, TaskRow
from tests.engine_driver import DATA, engine_for, run_all, run_chunk

pytestmark = pytest.mark.ledgers  # [sqlite] and [postgres] (tests/conftest.py)


def _failing(**defaults) -> dict:
    script = ('case "$1" in *run00100[02]*) echo "password=hunter22 token: abc123"; '
              'echo "ValueError: no events survived cut 42" >&2; exit 3;; esac; echo ok > "$0"')
    return {"production": "ops", "defaults": {"max_attempts": 1, "max_reassign": 1, **defaults},
            "transformations": [{
                "name": "process", "input": {"query": {"data_level": "DL0"}},
                "grouping": {"plugin": "standard", "group_size": 1},
                "job": {"command": ["sh", "-c", script, "{output}", "{input}"]},
                "outputs": [{"name": "{task}.out"}]}]}


def _statuses(engine) -> dict[str, int]:
    return summarize(engine.production)["process"]["files"]


def test_report_shows_counts_top_error_and_the_reset_command(home: Path) -> None:
    engine = engine_for(_failing())
    register_demo_inputs(engine.catalog, gamma=4, proton=0)
    run_all(engine)
    built = report.build(engine.production, "ops.yaml")
    text = report.as_text(built)
    assert built.failures == {("local", "application"): 2}
    (error,) = built.errors
    assert (error.count, error.failure_class) == (2, "application")
    assert error.signature == "ValueError: no events survived cut N"
    assert "hunter22" not in text and "abc123" not in text and "password=***" in text
    assert built.needs_a_person == {"process": {"Problematic": 2}}
    assert "ctaoflow reset ops.yaml --transformation process --status Problematic" in text
    page = report.as_html(built)
    assert "<pre>" in page and "&lt;" not in text and "hunter22" not in page
    assert "| process | Completed | 0 | 0 | 2 | 2 | 0 |" in report.as_markdown(built)


def test_report_sections_come_in_the_ledgers_order_on_both_ledgers(home: Path) -> None:
    """Neither ledger promises an order without ORDER BY (PostgreSQL moves updated rows):
    the report lists transformations in the spec's order and paused sites by name."""
    import datetime as dt

    from ctaoflow.engine.ledger import SiteRow, TransformationRow

    spec = _failing()
    first = spec["transformations"][0]
    spec["transformations"] = [first, {**first, "name": "again"}]
    engine = engine_for(spec)
    register_demo_inputs(engine.catalog, gamma=4, proton=0)
    run_all(engine)
    until = dt.datetime(2100, 1, 1)
    for name in ("b-site", "a-site"):
        with engine.sessions.begin() as session:
            session.add(SiteRow(name=name, paused_until=until, reason="down"))
    with engine.sessions.begin() as session:  # moves the row on PostgreSQL
        session.scalar(select(TransformationRow).filter_by(name="process")).flush_count += 1
    built = report.build(engine.production, "ops.yaml")
    assert list(built.needs_a_person) == ["process", "again"]  # the spec's order
    assert list(built.paused_sites) == ["a-site", "b-site"]


def test_reset_puts_files_back_and_the_next_run_regroups_them(home: Path) -> None:
    engine = engine_for(_failing())
    register_demo_inputs(engine.catalog, gamma=4, proton=0)
    run_all(engine)
    assert operations.reset(engine.production, "process", failure_class="infrastructure") == 0
    assert operations.reset(engine.production, "process", site="local") == 2
    assert _statuses(engine) == {"Processed": 2, "Unused": 2}
    assert len(engine.prepare("process")) == 1
    with engine.sessions() as session:
        assert len(session.scalars(select(TaskRow)).all()) == 6


def test_flush_stop_start_extend(home: Path) -> None:
    engine = engine_for(DATA / "chain.yaml")
    register_demo_inputs(engine.catalog, gamma=5, proton=0)
    engine.sync()
    for chunk in engine.prepare("process_gamma"):
        run_chunk(engine, "process_gamma", chunk)
    engine.finalize("process_gamma")
    # merge_gamma's parent is complete: the tail of 2 files is flushed on its own ...
    operations.stop(engine.production)
    assert engine.prepare("merge_gamma") == []
    operations.start(engine.production)
    engine.finalize("process_gamma")  # as the DAG does before the child's prepare
    assert len(engine.prepare("merge_gamma")) == 1
    with pytest.raises(ValueError, match="no transformation 'nope' in production 'chain'"):
        operations.flush(engine.production, "nope")
    mc = engine_for({"production": "mc", "transformations": [{
        "name": "sim", "type": "mc_simulation", "runs": {"count": 2},
        "job": {"command": ["sh", "-c", 'echo > "$0"', "{output}"]},
        "outputs": [{"name": "run{run}.out"}]}]})
    run_all(mc)
    assert operations.extend(mc.production, "sim", 3, dry_run=True) == 5
    assert operations.extend(mc.production, "sim", 3, user="erin", reason="more stats") == 5
    assert operations.signature(_events(mc)[-1][1]) == ("erin", "more stats")
    run_all(mc)
    assert summarize(mc.production)["sim"]["tasks"] == {"Done": 5}
    assert summarize(mc.production)["sim"]["status"] == {"Completed": 1}


def test_flush_by_hand_emits_the_partial_group(home: Path) -> None:
    engine = engine_for(DATA / "chain.yaml")
    register_demo_inputs(engine.catalog, gamma=5, proton=0)
    engine.sync()
    (chunk,) = engine.prepare("process_gamma")  # two DL1 outputs: 2 of 3 for merge_gamma
    assert engine.label("process_gamma", chunk) == f"chunk {chunk}: task 0"
    run_chunk(engine, "process_gamma", chunk)   # parent not finalized: still Active
    assert engine.label("process_gamma", chunk) == f"chunk {chunk}: task 0 @ local"
    assert engine.prepare("merge_gamma") == []
    operations.flush(engine.production, "merge_gamma")
    assert len(engine.prepare("merge_gamma")) == 1


def test_audit_is_clean_after_a_run_and_finds_tampering(home: Path) -> None:
    engine = engine_for(DATA / "chain.yaml")
    register_demo_inputs(engine.catalog, gamma=5, proton=5)
    run_all(engine)
    check = lambda: audit(engine.production, engine.catalog, engine.sites, make_backend)  # noqa: E731
    assert check() == []
    with engine.sessions.begin() as session:
        first, second = session.scalars(select(TaskRow).where(TaskRow.status == "Done")).all()[:2]
        first.status = "Failed"  # its files stay Processed
        lost = second.outputs[0]
    engine.catalog.db.execute("DELETE FROM files WHERE lfn = ?", (lost,))
    engine.catalog.db.commit()
    spool = home / "local-batch" / "jobs"
    (spool / f"{next(spool.iterdir()).name.rsplit('.', 2)[0]}.999999.1").mkdir()
    problems = check()
    assert any("is Processed without a done task" in p for p in problems)
    assert any(f"output {lost} of a done task is not in the catalog" in p for p in problems)
    assert any(p.endswith(".999999.1 at local: on the batch system but not in the ledger")
               for p in problems)


def test_audit_lines_come_in_the_ledgers_order_on_both_ledgers(home: Path) -> None:
    """PostgreSQL returns updated rows in no particular order (SQLite by rowid): the audit
    orders its reading, so its lines are the same on both."""
    from ctaoflow.engine.ledger import FileRow

    engine = engine_for(DATA / "chain.yaml")
    register_demo_inputs(engine.catalog, gamma=5, proton=0)
    run_all(engine)
    with engine.sessions.begin() as session:
        row = engine.row(session, "process_gamma")
        for task in session.scalars(select(TaskRow).where(TaskRow.transformation_id == row.id)):
            task.status = "Failed"  # its files stay Processed
        files = session.scalars(select(FileRow).where(FileRow.transformation_id == row.id)
                                .order_by(FileRow.id)).all()
    for f in reversed(files):  # each update of an indexed column moves a PostgreSQL row
        for status in ("Unused", "Processed"):
            with engine.sessions.begin() as session:
                session.get(FileRow, f.id).status = status
    problems = audit(engine.production, engine.catalog, engine.sites, make_backend)
    assert problems == [f"process_gamma: {f.lfn} is Processed without a done task"
                        for f in files]


def test_cli_audit_and_report(home: Path, capsys) -> None:
    from ctaoflow.cli import main

    engine = engine_for(DATA / "chain.yaml")
    register_demo_inputs(engine.catalog, gamma=5, proton=5)
    run_all(engine)
    with pytest.raises(SystemExit) as done:
        main(["audit", str(DATA / "chain.yaml")])
    assert done.value.code == 0 and "audit clean" in capsys.readouterr().out
    with pytest.raises(SystemExit) as done:
        main(["reset", str(DATA / "chain.yaml"), "--transformation", "nope"])
    err = capsys.readouterr().err
    assert done.value.code == 1 and err.count("\n") == 1
    assert "no transformation 'nope' in production 'chain'; one of: apply, merge_gamma" in err


def _events(engine) -> list[tuple[str, str]]:
    from ctaoflow.engine.ledger import EventRow

    with engine.sessions() as session:
        return [(e.kind, e.message)
                for e in session.scalars(select(EventRow).order_by(EventRow.id))]


def test_processed_files_are_sticky_unless_forced_and_the_force_is_recorded(
        home: Path) -> None:
    engine = engine_for(_failing())
    register_demo_inputs(engine.catalog, gamma=4, proton=0)
    run_all(engine)
    assert engine.label("process", 0) == "chunk 0: tasks 0-3 @ local"
    assert _statuses(engine) == {"Processed": 2, "Problematic": 2}
    for statuses in (("Processed",), ("Problematic", "Processed")):
        with pytest.raises(operations.OperationError, match="Processed files are sticky"):
            operations.reset(engine.production, statuses=statuses, user="alice")
    with pytest.raises(operations.OperationError, match="reset one of Unused, Problematic"):
        operations.reset(engine.production, statuses=("Assigned",), force=True)
    assert _statuses(engine) == {"Processed": 2, "Problematic": 2}
    assert operations.reset(engine.production, statuses=("Processed",), force=True,
                            user="alice", reason="bad calibration") == 2
    assert _statuses(engine) == {"Unused": 2, "Problematic": 2}
    kind, message = _events(engine)[-1]
    assert kind == "reset" and "forced: 2 of them were Processed" in message
    assert operations.signature(message) == ("alice", "bad calibration")


def test_every_action_records_who_and_why_and_a_dry_run_changes_nothing(
        home: Path, capsys: pytest.CaptureFixture) -> None:
    from ctaoflow.cli import main

    engine = engine_for(_failing())
    register_demo_inputs(engine.catalog, gamma=4, proton=0)
    run_all(engine)
    before = _events(engine)
    production = engine.production
    assert operations.reset(production, user="bob", dry_run=True) == 2
    assert operations.reset(production, lfns=["nothing"], dry_run=True) == 0
    assert operations.flush(production, "process", dry_run=True) == 0
    assert operations.stop(production, dry_run=True) == 1
    assert _statuses(engine) == {"Processed": 2, "Problematic": 2}
    assert summarize(production)["process"]["status"] == {"Completed": 1}
    assert _events(engine) == before
    operations.stop(production, user="bob", reason="site maintenance\nuntil noon")
    operations.start(production, user="carol")
    assert operations.flush(production, "process", user="carol", reason="tail") == 0
    lfn = next(iter(_problematic(engine)))
    assert operations.reset(production, lfns=[lfn], user="dave; evil]") == 1
    signed = [operations.signature(m) for _, m in _events(engine)[len(before):]]
    assert signed == [("bob", "site maintenance until noon"), ("carol", None),
                      ("carol", "tail"), ("dave_evil_", None)]
    path = home / "ops.yaml"
    path.write_text(__import__("yaml").safe_dump(_failing()))
    with pytest.raises(SystemExit) as done:
        main(["reset", str(path), "--dry-run", "--reason", "try"])
    assert done.value.code == 0 and "1 file(s) would go back" in capsys.readouterr().out
    assert _statuses(engine) == {"Processed": 2, "Problematic": 1, "Unused": 1}
    with pytest.raises(SystemExit) as done:
        main(["reset", str(path), "--status", "Processed"])
    assert done.value.code == 1 and "sticky" in capsys.readouterr().err
    with pytest.raises(SystemExit) as done:
        main(["reset", str(path), "--reason", "site fixed"])
    assert done.value.code == 0
    user, reason = operations.signature(_events(engine)[-1][1])
    assert user and user != "unknown" and reason == "site fixed"
    actions = operations.history(production)  # newest first, as the report shows them
    assert [(a.kind, a.user, a.reason) for a in actions][1:] == [
        ("reset", "dave_evil_", None), ("flush", "carol", "tail"), ("status", "carol", None),
        ("status", "bob", "site maintenance until noon")]
    assert actions[0].what == "1 files reset to Unused by hand"
    text = report.as_text(report.build(production))
    assert "process: flushed by hand (0 files waiting) by carol (tail)" in text


def _problematic(engine) -> set[str]:
    from ctaoflow.engine.ledger import FileRow

    with engine.sessions() as session:
        return set(session.scalars(select(FileRow.lfn).where(FileRow.status == "Problematic")))


def test_html_report_has_charts_with_the_ledger_counts_and_the_log_tails(home: Path) -> None:
    import re

    from sqlalchemy import func

    from ctaoflow.engine.ledger import FileRow, JobRow

    engine = engine_for(_failing())
    register_demo_inputs(engine.catalog, gamma=6, proton=0)
    run_all(engine)
    page = report.as_html(report.build(engine.production, "ops.yaml"))
    assert page.count("<svg ") == 3 and "http" not in page.replace(
        'xmlns="http://www.w3.org/2000/svg"', "")  # nothing fetched from the network
    shown = re.findall(r"<title>([^<]*): (\w+) (\d+)</title>", page)
    with engine.sessions() as session:
        files = session.execute(select(FileRow.status, func.count()).group_by(FileRow.status))
        jobs = session.execute(select(JobRow.site, JobRow.status, func.count())
                               .group_by(JobRow.site, JobRow.status)).all()
        finished = session.scalar(select(func.count()).where(JobRow.finished_at.is_not(None)))
        tail = session.scalars(select(JobRow.log_tail).where(JobRow.log_tail != "")).first()
    assert {("process", s, str(n)) for s, n in files} <= set(shown)
    assert {(site, s, str(n)) for site, s, n in jobs} <= set(shown)
    over_time = [(label, s, n) for label, s, n in shown if re.match(r"\d\d-\d\d ", label)]
    assert sum(int(n) for *_, n in over_time) == finished == 6
    assert "ValueError: no events survived cut 42" in tail
    assert "<pre>password=*** token: ***\nValueError: no events survived cut 42</pre>" in page
    assert "hunter22" not in page and "abc123" not in page


def test_time_bins_are_round_and_keep_empty_bins() -> None:
    import datetime as dt

    from ctaoflow.ops.charts import columns, time_bins

    t0 = dt.datetime(2026, 12, 1, 22, 7)
    events = [(t0, "Done"), (t0 + dt.timedelta(minutes=2), "Failed"),
              (t0 + dt.timedelta(minutes=70), "Done")]
    bins = time_bins(events)
    assert list(bins)[:2] == ["12-01 22:05", "12-01 22:10"] and len(bins) == 15
    assert bins["12-01 22:05"] == {"Done": 1, "Failed": 1} and bins["12-01 23:15"] == {"Done": 1}
    days = time_bins([(t0, "Done"), (t0 + dt.timedelta(days=10), "Done")])
    assert list(days)[0] == "2026-12-01" and len(days) == 11
    svg = columns("Jobs <finished>", bins)
    assert "Jobs &lt;finished&gt;" in svg and svg.count('data-count="1"') == 3
    assert time_bins([]) == {}


def test_an_operator_name_longer_than_the_user_column_is_recorded(home: Path) -> None:
    """A UI acting for someone may name them by a long DN: the action is done and signed
    in full on both ledgers (PostgreSQL refuses a value past a column's length)."""
    engine = engine_for(_failing())
    register_demo_inputs(engine.catalog, gamma=4, proton=0)
    run_all(engine)
    who = "CN=" + "very-long-operator-name." * 5 + "cta-observatory.org"
    outbox.enable(True)  # monitoring on: the outbox row keeps the user too
    try:
        assert operations.reset(engine.production, user=who, reason="long DN") == 2
    finally:
        outbox.enable(None)
    assert operations.signature(_events(engine)[-1][1]) == (who, "long DN")
    with engine.sessions() as session:
        assert session.scalars(select(OutboxRow.user).where(OutboxRow.user.is_not(None))
                               ).all() == [who]
