"""MC runs are created in bounded batches over successive prepares; extend is bounded."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from ctaoflow import cli
from ctaoflow.engine import summarize
from ctaoflow.engine.ledger import TaskRow
from ctaoflow.ops import operations
from tests.engine_driver import engine_for

pytestmark = pytest.mark.ledgers  # [sqlite] and [postgres] (tests/conftest.py)

MC = {"production": "bigmc", "transformations": [{
    "name": "sim", "type": "mc_simulation", "runs": {"count": 25_000, "start": 7},
    "job": {"command": ["sh", "-c", 'echo > "$0"', "{output}"]},
    "outputs": [{"name": "run{run}.out"}]}]}


def _finish_open_tasks(engine) -> None:
    """Stand-in for the jobs: every open task Done."""
    with engine.sessions.begin() as session:
        session.execute(update(TaskRow).where(TaskRow.status == "Created").values(status="Done"))


def test_a_big_target_is_created_over_successive_prepares(home: Path) -> None:
    engine = engine_for(MC)
    engine.sync()
    created = []
    while True:
        chunks = engine.prepare("sim")
        with engine.sessions() as session:
            total = session.scalar(select(func.count()).select_from(TaskRow))
        created.append(total - sum(created))
        if not chunks:
            break
        assert len(chunks) <= 1000  # one DAG run maps over these
        if total < 25_000:
            assert engine.finalize("sim")["status"] == {"Active": 1}
        assert engine.prepare("sim") == chunks  # no new runs while 10,000 are open
        _finish_open_tasks(engine)
    assert created == [10_000, 10_000, 5_000, 0]  # at most 10,000 open runs at a time
    with engine.sessions() as session:
        runs = session.scalars(select(TaskRow.run).order_by(TaskRow.run)).all()
    assert runs == list(range(7, 7 + 25_000))
    assert engine.finalize("sim")["status"] == {"Completed": 1}


@pytest.mark.parametrize("runs", ["-5", "0", str(10**12), "many", "1e3", "9" * 5000, " "])
def test_extend_by_an_absurd_number_is_one_line(home: Path, tmp_path: Path, runs: str,
                                                capsys: pytest.CaptureFixture) -> None:
    spec = tmp_path / "mc.yaml"
    spec.write_text("production: smallmc\ntransformations:\n- name: sim\n"
                    "  type: mc_simulation\n  runs: {count: 2}\n"
                    "  job: {command: [sh, -c, 'echo > \"$0\"', '{output}']}\n"
                    "  outputs: [{name: 'run{run}.out'}]\n")
    engine = engine_for(MC | {"production": "smallmc"})
    engine.sync()
    with pytest.raises(SystemExit) as stop:
        cli.main(["extend", str(spec), "sim", runs])
    err = capsys.readouterr().err
    assert stop.value.code == 1 and err.count("\n") == 1, err
    assert err.startswith("ctaoflow extend: ") and "give " in err, err
    assert summarize(engine.production)["sim"]["status"] == {"Active": 1}
    with engine.sessions() as session:
        assert session.scalar(select(func.count()).select_from(TaskRow)) == 0


def test_extend_keeps_run_numbers_within_the_ledger(home: Path) -> None:
    engine = engine_for(MC)
    engine.sync()
    with pytest.raises(operations.OperationError, match="at most"):
        operations.extend(engine.production, "sim", 2**31)
    assert operations.extend(engine.production, "sim", 5) == 25_005
