"""Nightly productions in the core: a night's production, its raw-data wait, nights and
versions kept apart in the ledger and the catalog, a late subrun held at the merge."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select

from ctaoflow.engine import nights, summarize
from ctaoflow.engine.ledger import EventRow, session_factory
from ctaoflow.spec import nights as nights_spec
from ctaoflow.spec.nights import for_night, ledger_name, night_key, night_of
from ctaoflow.spec.query import Query
from ctaoflow.spec.validation import load_production, validate_files
from tests import nightly_data as data
from tests.engine_driver import DATA, run_all, run_chunk

pytestmark = pytest.mark.ledgers  # [sqlite] and [postgres] (tests/conftest.py)

SPEC = DATA / "nightly_small.yaml"


def production(**nightly):
    raw = yaml.safe_load(SPEC.read_text())
    raw["nightly"].update(nightly)
    path = Path(data.settings.home()) / "nightly_small.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(raw))
    return load_production(path)


def test_the_night_fills_queries_names_and_paths() -> None:
    night = for_night(load_production(SPEC), "2026-12-01")
    assert night.production == "nightly_small.20261201.v1" == ledger_name(
        load_production(SPEC), "20261201")
    assert night.output_base == "/ctao/lst/LST-1/v1/20261201"
    assert night.transformation("subrun").input.query == {"data_level": "R0", "night": "20261201"}
    assert night.transformation("subrun").outputs[0].name == "dl1_20261201_{task:05d}.h5"
    assert night.transformation("night_check").outputs[0].name == "check_20261201.txt"
    assert night.nightly.complete_when.run_summary == {"datatype": "run_summary",
                                                       "night": "20261201"}
    # a format spec is applied; a literal brace ({{night}}) stays literal
    assert nights_spec._fill("{night:>10}|{{night}}|{version}", {"night": "20261201",
                                                                 "version": "v1"}) \
        == "  20261201|{{night}}|v1"
    assert night_of("2026-12-01") == "20261201" and night_key("20261201") == "2026-12-01"
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        night_of("yesterday")


@pytest.mark.parametrize("change, message", [
    ({"schedule": "@daily"}, "runs once per night at nightly.starts_at; remove 'schedule'"),
    ({"nightly": {"raw": {"data_level": "R0"}}}, "nightly.raw: selects every night's files"),
    ({"nightly": {"timezone": "Mars/Olympus"}}, "unknown time zone 'Mars/Olympus'"),
    ({"nightly": {"complete_when": {"quiet_for": "30m", "dataset_closed": "R0_{night}"}}},
     "2 conditions (dataset_closed, quiet_for); write exactly one"),
    ({"nightly": {"starts_at": "7am"}}, "nightly.starts_at"),
])
def test_nightly_spec_errors_are_located(tmp_path: Path, change: dict, message: str) -> None:
    raw = yaml.safe_load(SPEC.read_text())
    for key, value in change.items():
        if isinstance(value, dict):
            raw[key] = {k: v for k, v in raw[key].items() if k not in value} | value
        else:
            raw[key] = value
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    errors = validate_files([path])
    assert any(message in e and e.startswith(f"{path}:") for e in errors), errors


def test_a_root_query_without_the_night_is_refused(tmp_path: Path) -> None:
    raw = yaml.safe_load(SPEC.read_text())
    raw["transformations"][0]["input"]["query"] = {"data_level": "R0"}
    raw["transformations"][0]["job"]["parameters"] = {"version": "x"}
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    errors = validate_files([path])
    assert any("transformations.0.input.query: selects every night's files" in e
               for e in errors), errors
    assert any("parameter 'version' hides the built-in placeholder {version}" in e
               for e in errors), errors


def test_the_night_waits_for_its_run_summary_and_every_subrun(home: Path, tmp_path: Path) -> None:
    engine = data.night_engine(load_production(SPEC), "20261201")
    catalog = engine.catalog
    data.subruns(catalog, tmp_path, "20261201", 2001, range(3))
    first = nights.check(engine, "20261201")
    assert not first.ready and first.missing == ["the run summary is not registered"]
    assert first.raw_files == 3 and first.next_check is not None
    data.run_summary(catalog, tmp_path, "20261201", {2001: 4, 2002: 2})
    second = nights.check(engine, "20261201")
    assert not second.ready
    assert second.missing == ["run 2001: 3 of 4 subruns", "run 2002: 0 of 2 subruns"]
    data.subruns(catalog, tmp_path, "20261201", 2001, range(3, 4))
    data.subruns(catalog, tmp_path, "20261201", 2002, range(2))
    data.subruns(catalog, tmp_path, "20261202", 2003, range(5))  # the next night's
    done = nights.check(engine, "20261201")
    assert done.ready and done.status == "Complete" and done.raw_files == 6
    assert nights.check(engine, "20261201").status == "Complete"  # decided once


def test_a_night_that_times_out_is_processed_and_reports_what_was_missing(
        home: Path, tmp_path: Path) -> None:
    engine = data.night_engine(production(timeout="1s"), "20261201")
    data.run_summary(engine.catalog, tmp_path, "20261201", {2001: 3})
    data.subruns(engine.catalog, tmp_path, "20261201", 2001, range(2))
    assert not nights.check(engine, "20261201").ready
    time.sleep(1.1)
    late = nights.check(engine, "20261201")
    assert late.status == "TimedOut" and late.missing == ["run 2001: 2 of 3 subruns"]
    with session_factory()() as session:
        messages = session.scalars(select(EventRow.message).filter_by(kind="night")).all()
    assert messages == ["night 20261201: TimedOut with 2 raw file(s); missing: run 2001: "
                        "2 of 3 subruns"]


def test_quiet_and_closed_dataset_conditions(home: Path, tmp_path: Path) -> None:
    quiet = data.night_engine(production(complete_when={"quiet_for": "1s"}), "20261201")
    assert not nights.check(quiet, "20261201").ready  # no raw file yet
    data.subruns(quiet.catalog, tmp_path, "20261201", 2001, range(2))
    assert not nights.check(quiet, "20261201").ready  # new files: quiet from now
    time.sleep(1.1)
    assert nights.check(quiet, "20261201").status == "Complete"

    closed = data.night_engine(production(complete_when={"dataset_closed": "/ctao/lst/R0/{night}"}),
                               "20261202")
    data.subruns(closed.catalog, tmp_path, "20261202", 2002, range(2))
    assert nights.check(closed, "20261202").missing == ["dataset /ctao/lst/R0/20261202 is still open"]
    closed.catalog.close_dataset("/ctao/lst/R0/20261202")
    assert nights.check(closed, "20261202").status == "Complete"


def night_files(production_name: str) -> list[str]:
    return sorted(f.lfn for f in data.catalog().query(Query.parse({"production": production_name})))


def test_two_nights_and_two_versions_never_meet(home: Path, tmp_path: Path) -> None:
    catalog = data.catalog()
    data.models(catalog, tmp_path)
    for night, runs in (("20261201", {2001: 3, 2002: 2}), ("20261202", {2003: 2})):
        data.run_summary(catalog, tmp_path, night, runs)
        for run, count in runs.items():
            data.subruns(catalog, tmp_path, night, run, range(count))
    spec = load_production(SPEC)
    run_all(data.night_engine(spec, "20261201"))
    first = summarize(for_night(spec, "20261201"))
    assert first["subrun"]["files"] == {"Processed": 5}
    assert first["merge"]["tasks"] == {"Done": 2}  # one merge per run
    assert first["night_check"]["files"] == {"Processed": 2}
    before = night_files("nightly_small.20261201.v1")
    assert len(before) == 5 + 2 + 2 + 1 and all("/v1/20261201/" in f for f in before)

    run_all(data.night_engine(spec, "20261202"))
    second = summarize(for_night(spec, "20261202"))
    assert second["subrun"]["files"] == {"Processed": 2} and second["merge"]["tasks"] == {"Done": 1}
    assert summarize(for_night(spec, "20261201")) == first  # the first night's counts unmoved
    assert night_files("nightly_small.20261201.v1") == before

    # a rerun of a finished night submits nothing
    rerun = data.night_engine(spec, "20261201")
    run_all(rerun)
    assert summarize(for_night(spec, "20261201")) == first

    # reprocessing with a new version writes beside the old outputs, never over them
    v2 = production(version="v2")
    run_all(data.night_engine(v2, "20261201"))
    assert summarize(for_night(v2, "20261201"))["dl2"]["jobs"] == {"Done": 2}
    assert night_files("nightly_small.20261201.v1") == before
    assert summarize(for_night(spec, "20261201")) == first
    new = night_files("nightly_small.20261201.v2")
    assert len(new) == len(before) and all("/v2/20261201/" in f for f in new)
    paths = catalog.local_paths([f for f in new + before if "/dl2/" in f])
    assert {Path(p).read_text().count("dl1 v2") for lfn, p in paths.items() if "/v2/" in lfn} == {2, 3}
    assert {Path(p).read_text().count("dl1 v1") for lfn, p in paths.items() if "/v1/" in lfn} == {2, 3}


def test_a_subrun_arriving_after_its_run_was_merged_is_held(home: Path, tmp_path: Path) -> None:
    catalog = data.catalog()
    data.models(catalog, tmp_path)
    data.subruns(catalog, tmp_path, "20261201", 2001, range(2))
    spec = load_production(SPEC)
    run_all(data.night_engine(spec, "20261201"))
    data.subruns(catalog, tmp_path, "20261201", 2001, range(2, 3))  # late
    run_all(data.night_engine(spec, "20261201"))
    counts = summarize(for_night(spec, "20261201"))
    assert counts["subrun"]["files"] == {"Processed": 3}  # the late subrun is processed
    assert counts["merge"]["tasks"] == {"Done": 1}  # but the run is not merged twice
    assert counts["merge"]["files"] == {"Processed": 2, "Unused": 1}
    with session_factory()() as session:
        held = session.scalars(select(EventRow.message).filter_by(kind="held")).all()
    assert held and "1 new input file(s) of run 2001 held" in held[-1]


def test_the_night_table_counts_each_run_and_stage(home: Path, tmp_path: Path, capsys) -> None:
    from ctaoflow.cli import main
    from ctaoflow.ops.night import night_status

    catalog = data.catalog()
    data.models(catalog, tmp_path)
    data.run_summary(catalog, tmp_path, "20261201", {2001: 3, 2002: 2})
    data.subruns(catalog, tmp_path, "20261201", 2001, range(3))
    data.subruns(catalog, tmp_path, "20261201", 2002, range(1))
    spec = load_production(SPEC)
    engine = data.night_engine(spec, "20261201")
    assert not nights.check(engine, "20261201").ready
    engine.sync()
    for chunk in engine.prepare("subrun"):  # only the subruns so far
        run_chunk(engine, "subrun", chunk)
    status = night_status(spec, "2026-12-01")
    assert status["data"] == "Waiting" and status["raw_files"] == 4
    assert status["missing"] == ["run 2002: 1 of 2 subruns"]
    assert status["runs"] == {"2001": {"subrun": {"done": 3, "total": 3}},
                              "2002": {"subrun": {"done": 1, "total": 1}}}
    with pytest.raises(SystemExit) as done:
        main(["night", str(SPEC), "20261201"])
    assert done.value.code == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0] == "night 2026-12-01 of nightly_small (v1): raw data Waiting, 4 file(s)"
    assert table[1] == "  missing: run 2002: 1 of 2 subruns"
    assert table[2].split() == ["run", "subrun", "merge", "dl2", "night_check"]
    assert table[3].split() == ["2001", "3/3", "-", "-", "-"]
    assert table[5].split() == ["status", "Active", "Active", "Active", "Active"]
    with pytest.raises(SystemExit):
        main(["status", str(SPEC)])
    assert "nightly; name the night with --night YYYY-MM-DD" in capsys.readouterr().err


def test_outputs_record_their_inputs_night_and_run(home: Path, tmp_path: Path) -> None:
    catalog = data.catalog()
    data.models(catalog, tmp_path)
    data.subruns(catalog, tmp_path, "20261201", 2001, range(2))
    run_all(data.night_engine(load_production(SPEC), "20261201"))
    (merged,) = catalog.query(Query.parse({"production": "nightly_small.20261201.v1",
                                           "transformation": "merge"}))
    subruns = sorted(f.lfn for f in catalog.query(Query.parse(
        {"production": "nightly_small.20261201.v1", "transformation": "subrun"})))
    assert merged.metadata["inputs"] == ",".join(subruns)
    assert merged.metadata["night"] == "20261201" and merged.metadata["run"] == 2001
    (dl2,) = catalog.query(Query.parse({"production": "nightly_small.20261201.v1",
                                        "transformation": "dl2"}))
    assert dl2.metadata["inputs"] == merged.lfn  # its own inputs, not its parent's


def test_the_report_tells_the_night_and_the_held_subrun(home: Path, tmp_path: Path) -> None:
    from ctaoflow.ops import report

    catalog = data.catalog()
    data.models(catalog, tmp_path)
    data.run_summary(catalog, tmp_path, "20261201", {2001: 3})
    data.subruns(catalog, tmp_path, "20261201", 2001, range(2))
    engine = data.night_engine(production(timeout="1s"), "20261201")
    nights.check(engine, "20261201")
    time.sleep(1.1)
    assert nights.check(engine, "20261201").status == "TimedOut"
    run_all(engine)
    data.subruns(catalog, tmp_path, "20261201", 2001, range(2, 3))  # after the merge
    run_all(data.night_engine(production(timeout="1s"), "20261201"))
    text = report.as_text(report.build(for_night(production(timeout="1s"), "20261201")))
    assert ("night 20261201: raw data TimedOut, 2 file(s); missing: run 2001: 2 of 3 subruns"
            in text)
    assert "merge: 1 new input file(s) of run 2001: that group already ran" in text
