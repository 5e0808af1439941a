"""A value no command line can carry fails its task as a data problem, before any job."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from ctaoflow.catalog.base import OutputFile
from ctaoflow.engine.jobs import TaskInputs, build_job
from ctaoflow.engine.ledger import FileRow, JobRow, TaskRow
from ctaoflow.spec.model import Production
from tests.engine_driver import engine_for, run_all

pytestmark = pytest.mark.ledgers  # [sqlite] and [postgres] (tests/conftest.py)

TAGS = {"good": "fine", "nul": "a\0b", "surrogate": "x\ud800y", "huge": "z" * 300}


def test_unpassable_metadata_fails_its_task_with_the_reason(home: Path, tmp_path: Path) -> None:
    spec = {"production": "args", "transformations": [{
        "name": "echo", "input": {"query": {"data_level": "DL0"}},
        "grouping": {"plugin": "standard", "group_size": 1},
        "job": {"command": ["sh", "-c", 'echo ok > "$0"', "{output}"]},
        "outputs": [{"name": "{tag}.out", "metadata": {"data_level": "DL1"}}]}]}
    engine = engine_for(spec)
    sources = []
    for name, tag in TAGS.items():
        path = tmp_path / name
        path.write_text(name)
        sources.append(OutputFile(lfn=f"/ctao/args/{name}.dat", path=str(path),
                                  metadata={"data_level": "DL0", "tag": tag}))
    engine.catalog.register(sources, "LOCAL-DISK", "/ctao/args")
    run_all(engine)
    with engine.sessions() as session:
        files = {f.lfn.rsplit("/", 1)[1][:-4]: f for f in session.scalars(select(FileRow))}
        tasks = {t.id: t for t in session.scalars(select(TaskRow))}
        jobs = session.scalars(select(JobRow)).all()
        assert [(j.status, j.task_id) for j in jobs] == [("Done", files["good"].task_id)]
        assert files["good"].status == "Processed"
        reasons = {"nul": "contains a NUL byte", "surrogate": "'\\ud800', a character",
                   "huge": "is 304 bytes, more than the 255"}
        for name, reason in reasons.items():
            task = tasks[files[name].task_id]
            assert files[name].status == "Problematic", name
            assert task.status == "Failed"
            assert "output name of task" in task.message and reason in task.message
            assert "catalog metadata" in task.message


def test_an_unpassable_spec_value_fails_at_job_build() -> None:
    production = Production.model_validate({"production": "args", "transformations": [{
        "name": "echo", "input": {"query": {"data_level": "DL0"}},
        "job": {"command": ["echo", "{label}"], "parameters": {"label": "ok"}},
        "outputs": [{"name": "{task}.out"}]}]})
    (t,) = production.transformations
    task = TaskInputs(0, {"/ctao/a.dat": {}})
    build_job(production, t, task, "j", "/w", {"/ctao/a.dat": "/d/a.dat"}, {})
    for label, reason in (("a\0b", "contains a NUL byte"), ("\udfff", "a character no")):
        job = t.job.model_copy(update={"parameters": {"label": label}})
        bad = t.model_copy(update={"job": job})
        with pytest.raises(ValueError, match=f"argument 1 of the command .*{reason}"):
            build_job(production, bad, task, "j", "/w", {"/ctao/a.dat": "/d/a.dat"}, {})
