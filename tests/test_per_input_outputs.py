"""Per-input outputs (``per_input: true``): one file per input file of a task, as
CTADIRAC's ctapipe-process jobs write one DL2 file per DL0 file of their five."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from sqlalchemy import select

from ctaoflow.catalog.base import OutputFile
from ctaoflow.engine.jobs import TaskInputs, build_job, planned_outputs
from ctaoflow.engine.ledger import FileRow, JobRow, TaskRow
from ctaoflow.spec.model import Production
from ctaoflow.spec.placeholders import input_stem
from ctaoflow.spec.query import Query
from ctaoflow.spec.validation import validate_files
from tests.engine_driver import engine_for, run_all

pytestmark = pytest.mark.ledgers  # [sqlite] and [postgres] (tests/conftest.py)

PROCESS = """\
production: p
transformations:
  - name: process
    type: processing
    input: {query: {data_level: 0}}
    grouping: {plugin: standard, group_size: 5}
    job:
      command: [process.sh, "{inputs}", "{output}"]
    outputs:
      - name: "{input_stem}.DL2.h5"
        per_input: true
        metadata: {data_level: 2}
"""
# three DL0 files, deliberately not in LFN order, each with its own run and particle
FILES = {"/ctao/dl0/c_run3.simtel.zst": {"data_level": 0, "run": 3, "particle": "proton"},
         "/ctao/dl0/a_run1.simtel.zst": {"data_level": 0, "run": 1, "particle": "gamma"},
         "/ctao/dl0/b_run2.simtel.zst": {"data_level": 0, "run": 2, "particle": "gamma"}}
ORDER = sorted(FILES)
WRITE_ALL = 'for out in "$@"; do echo "$out" > "$out"; done'


@pytest.fixture
def check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Validate YAML text as ``f.yaml``; return its error lines."""
    monkeypatch.chdir(tmp_path)

    def run(text: str) -> list[str]:
        Path("f.yaml").write_text(textwrap.dedent(text))
        return validate_files(["f.yaml"])
    return run


def _production(**defaults) -> Production:
    spec = {"production": "p", "defaults": defaults, "transformations": [{
        "name": "process", "type": "processing", "input": {"query": {"data_level": 0}},
        "grouping": {"plugin": "standard", "group_size": 5},
        "job": {"command": ["process.sh", "--log", "{log}", "{inputs}", "{output}"]},
        "outputs": [{"name": "{input_stem}.DL2.h5", "per_input": True,
                     "metadata": {"data_level": 2}},
                    {"key": "log", "name": "{transformation}_{task:06d}.log"}]}]}
    return Production.model_validate(spec)


# -- validation --------------------------------------------------------------------

def test_a_valid_per_input_output_passes(check) -> None:
    assert check(PROCESS) == []


def test_a_per_input_output_needs_the_input_stem_in_its_name(check) -> None:
    assert check(PROCESS.replace('"{input_stem}.DL2.h5"', '"{task:06d}.DL2.h5"')) == [
        "f.yaml:10:15: transformations.0.outputs.0.name: a per-input output needs "
        "{input_stem} in its name, or every input of a task would write '{task:06d}.DL2.h5'; "
        "write e.g. '{input_stem}.DL2.h5'"]


def test_the_input_stem_names_only_a_per_input_output(check) -> None:
    assert check(PROCESS.replace("        per_input: true\n", "")) == [
        "f.yaml:10:15: transformations.0.outputs.0.name: {input_stem} names a per-input "
        "output; add 'per_input: true' to this output or remove {input_stem}"]


def test_a_per_input_output_key_stands_alone_in_the_command(check) -> None:
    assert check(PROCESS.replace('"{output}"]', '"--out={output}"]')) == [
        "f.yaml:8:41: transformations.0.job.command.2: {output} expands to one argument per "
        "input file and must stand alone; write it as its own item instead of '--out={output}'"]


def test_no_per_input_output_in_a_simulation_nor_a_parameter_named_input_stem(check) -> None:
    simulation = """\
    production: p
    transformations:
      - name: sim
        type: mc_simulation
        runs: {count: 2}
        job: {command: [sim, "{output}"], parameters: {input_stem: x}}
        outputs: [{name: "sim_{run}.zst", per_input: true}]
    """
    assert check(simulation) == [
        "f.yaml:6:52: transformations.0.job.parameters.input_stem: parameter 'input_stem' "
        "hides the built-in placeholder {input_stem}; rename it",
        "f.yaml:7:50: transformations.0.outputs.0.per_input: an mc_simulation has no input "
        "files to write one output per input for; remove 'per_input'"]


def test_the_schema_documents_per_input() -> None:
    schema = Production.model_json_schema(by_alias=True)
    field = schema["$defs"]["Output"]["properties"]["per_input"]
    assert field["default"] is False and "{input_stem}" in field["description"]


# -- planning ----------------------------------------------------------------------

@pytest.mark.parametrize(("lfn", "stem"), [
    ("/ctao/dl0/run1.simtel.zst", "run1"), ("/ctao/dl1/run1.DL1.h5", "run1.DL1"),
    ("/ctao/x/run1", "run1"), ("/ctao/x/a.b.c.gz", "a.b")])
def test_the_input_stem(lfn: str, stem: str) -> None:
    assert input_stem(lfn) == stem


def test_one_output_per_input_in_input_order_then_the_task_output() -> None:
    outputs = planned_outputs(_production(), _production().transformations[0],
                              TaskInputs(7, FILES), "/w")
    assert [o.lfn.rsplit("/", 1)[1] for o in outputs] == [
        "a_run1.DL2.h5", "b_run2.DL2.h5", "c_run3.DL2.h5", "process_000007.log"]
    assert outputs[0].lfn == "/ctao/ctao/p/process/a_run1.DL2.h5"
    assert outputs[0].path == "/w/a_run1.DL2.h5"


def test_each_output_carries_its_own_inputs_metadata_and_provenance() -> None:
    production = _production(provenance=True)
    outputs = planned_outputs(production, production.transformations[0],
                              TaskInputs(0, FILES), "/w")
    for lfn, output in zip(ORDER, outputs):
        assert output.metadata == {**FILES[lfn], "data_level": 2, "inputs": lfn,
                                   "production": "p", "transformation": "process"}
    log = outputs[3].metadata  # the per-task output: what all three share, all three inputs
    assert "run" not in log and log["data_level"] == 0
    assert log["inputs"] == ",".join(ORDER)


def test_the_command_gets_the_outputs_in_input_order() -> None:
    production = _production()
    paths = {lfn: "/data" + lfn for lfn in FILES}
    job = build_job(production, production.transformations[0], TaskInputs(2, FILES), "j",
                    "/w", paths, {})
    assert job.command == (
        "process.sh", "--log", "/w/process_000002.log",
        *("/data" + lfn for lfn in ORDER),
        "/w/a_run1.DL2.h5", "/w/b_run2.DL2.h5", "/w/c_run3.DL2.h5")


def test_two_inputs_of_the_same_stem_fail_the_job_build() -> None:
    production = _production()
    files = {"/ctao/a/run1.simtel.zst": {}, "/ctao/b/run1.simtel.zst": {}}
    with pytest.raises(ValueError, match="two inputs of task 0 would write output "
                                         "'run1.DL2.h5'"):
        planned_outputs(production, production.transformations[0], TaskInputs(0, files), "/w")


# -- through the engine ------------------------------------------------------------

def _engine(tmp_path: Path, script: str):
    """Three DL0 files in one task (group_size 3), one DL2 each, and a child of all."""
    spec = {"production": "p", "defaults": {"max_attempts": 1}, "transformations": [
        {"name": "process", "type": "processing", "input": {"query": {"data_level": 0}},
         "grouping": {"plugin": "standard", "group_size": 3},
         "job": {"command": ["sh", "-c", script, "sh", "{output}"]},
         "outputs": [{"name": "{input_stem}.DL2.h5", "per_input": True,
                      "metadata": {"data_level": 2}}]},
        {"name": "merge", "type": "merging", "input": {"from": "process"},
         "grouping": {"plugin": "all"},
         "job": {"command": ["sh", "-c", 'cat "$@" > "$0"', "{output}", "{inputs}"]},
         "outputs": [{"name": "merged.h5", "metadata": {"merged": 1}}]}]}
    engine = engine_for(spec)
    sources = []
    for lfn, metadata in FILES.items():
        path = tmp_path / lfn.rsplit("/", 1)[1]
        path.write_text(lfn)
        sources.append(OutputFile(lfn=lfn, path=str(path), metadata=metadata))
    engine.catalog.register(sources, "LOCAL-DISK", "/ctao/dl0")
    run_all(engine)
    return engine


def test_a_task_of_three_inputs_registers_three_outputs_and_its_child_sees_them(
        home: Path, tmp_path: Path) -> None:
    engine = _engine(tmp_path, WRITE_ALL)
    made = sorted(engine.catalog.query(Query.parse({"transformation": "process"})),
                  key=lambda f: f.lfn)
    assert [f.lfn.rsplit("/", 1)[1] for f in made] == [
        "a_run1.DL2.h5", "b_run2.DL2.h5", "c_run3.DL2.h5"]
    for lfn, f in zip(ORDER, made):
        assert (f.metadata["run"], f.metadata["particle"]) == (FILES[lfn]["run"],
                                                               FILES[lfn]["particle"])
        assert f.metadata["data_level"] == 2
    with engine.sessions() as session:
        tasks = {t.id: t for t in session.scalars(select(TaskRow))}
        process = [t for t in tasks.values() if t.outputs and t.outputs[0].endswith(".DL2.h5")]
        assert len(process) == 1 and sorted(process[0].outputs) == [f.lfn for f in made]
        children = [f for f in session.scalars(select(FileRow))
                    if f.lfn.endswith(".DL2.h5")]  # the merge's inputs
        assert sorted(f.lfn for f in children) == [f.lfn for f in made]
        assert len({f.task_id for f in children}) == 1
        assert tasks[children[0].task_id].status == "Done"
    (merged,) = engine.catalog.query(Query.parse({"transformation": "merge"}))
    path = engine.catalog.local_paths([merged.lfn])[merged.lfn]
    assert Path(path).read_text().count(".DL2.h5") == 3


def test_a_missing_one_of_three_outputs_fails_the_task(home: Path, tmp_path: Path) -> None:
    engine = _engine(tmp_path, 'echo a > "$1"; echo b > "$2"')  # not the third
    assert list(engine.catalog.query(Query.parse({"transformation": "process"}))) == []
    with engine.sessions() as session:
        (job,) = [j for j in session.scalars(select(JobRow)) if ".process." in j.name]
        assert job.status == "Failed"
        assert job.reason == "declared output missing: /ctao/ctao/p/process/c_run3.DL2.h5"
        assert session.get(TaskRow, job.task_id).status == "Failed"
