"""Hostile file names and metadata reach no shell and no foreign path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select

from ctaoflow.catalog.base import OutputFile
from ctaoflow.engine.ledger import FileRow, JobRow, TaskRow
from ctaoflow.spec.query import Query
from tests.engine_driver import engine_for, run_all

pytestmark = pytest.mark.ledgers  # [sqlite] and [postgres] (tests/conftest.py)

HOSTILE = ["a b;touch PWNED1", "$(touch PWNED2)", "`touch PWNED3`", "q'uo\"te",
           "new\nline", "-rf", "*"]


def test_metacharacters_pass_verbatim_and_run_nothing(home: Path, tmp_path: Path) -> None:
    spec = {"production": "hostile", "transformations": [{
        "name": "copy", "input": {"query": {"data_level": "DL0"}},
        "grouping": {"plugin": "standard", "group_size": 1},
        "job": {"command": ["python", "-c",
                            "import json, sys; open(sys.argv[1], 'w').write(json.dumps(sys.argv[2:]))",
                            "{output}", "{input}", "{label}"],
                "parameters": {"label": "$(touch PWNED4); echo"}},
        "outputs": [{"name": "{tag}_{task}.out", "metadata": {"data_level": "DL1"}}]}]}
    engine = engine_for(spec)
    sources = []
    for i, value in enumerate(HOSTILE):
        path = tmp_path / f"in{i}"
        path.write_text(value)
        sources.append(OutputFile(lfn=f"/ctao/hostile/{value}.dat".replace("\n", "_"),
                                  path=str(path), metadata={"data_level": "DL0", "tag": value}))
    engine.catalog.register(sources, "LOCAL-DISK", "/ctao/hostile")
    run_all(engine)
    with engine.sessions() as session:
        assert {j.status for j in session.scalars(select(JobRow))} == {"Done"}
    outputs = {f.metadata["tag"]: f for f in engine.catalog.query(Query.parse({"data_level": "DL1"}))}
    assert set(outputs) == set(HOSTILE)
    paths = engine.catalog.local_paths([f.lfn for f in outputs.values()])
    for value, output in outputs.items():
        assert output.lfn.rsplit("/", 1)[1].startswith(value)  # the name kept every character
        argv = json.loads(Path(paths[output.lfn]).read_text())
        assert argv[1] == "$(touch PWNED4); echo"
        assert argv[0].endswith(f"{value}.dat".replace("\n", "_"))
    assert not list(Path("/").glob("PWNED*")) and not list(home.rglob("PWNED*"))
    assert not list(Path.cwd().glob("PWNED*"))


def test_a_group_value_longer_than_its_column_still_makes_one_task(home: Path,
                                                                     tmp_path: Path) -> None:
    """by_metadata on a key whose value is long (PostgreSQL refuses a value past a column's
    length): one task per value, a late file of a value that ran is held, on both ledgers."""
    spec = {"production": "long", "transformations": [{
        "name": "merge", "input": {"query": {"data_level": "DL0"}},
        "grouping": {"plugin": "by_metadata", "key": "tag"},
        "job": {"command": ["sh", "-c", 'cat "$@" > "$0"', "{output}", "{input}"]},
        "outputs": [{"name": "{task}.out", "metadata": {"data_level": "DL1"}}]}]}
    engine = engine_for(spec)
    values = ["x" * 300, "x" * 299 + "y"]  # the same first 256 characters

    def register(names: list[str]) -> None:
        sources = []
        for name in names:
            path = tmp_path / name
            path.write_text(name)
            sources.append(OutputFile(lfn=f"/ctao/long/{name}", path=str(path), metadata={
                "data_level": "DL0", "tag": values[int(name[1])]}))
        engine.catalog.register(sources, "LOCAL-DISK", "/ctao/long")

    register(["v0a", "v0b", "v1a"])
    run_all(engine)
    register(["v0c"])  # late: its group ran
    engine.prepare("merge")
    with engine.sessions() as session:
        assert sorted(session.scalars(select(TaskRow.group))) == values
        assert session.scalar(select(FileRow.status).where(FileRow.lfn == "/ctao/long/v0c")
                              ) == "Unused"
