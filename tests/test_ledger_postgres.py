"""The ledger on a real PostgreSQL server: the engine's chain, CTAO-sized columns, and the
concurrent paths (intake, submission, two productions, a reset during a run) from
separate processes, each with its own database engine."""

from __future__ import annotations

import multiprocessing
import os
from collections import Counter
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml
from sqlalchemy import func, select

from ctaoflow.demo.inputs import register_demo_inputs
from ctaoflow.engine import Engine, summarize
from ctaoflow.engine.ledger import (EventRow, FileRow, FileStatus, JobRow, TaskRow,
                                    insert_ignore, session_factory)
from tests.engine_driver import DATA, engine_for, run_all, run_chunk

pytestmark = pytest.mark.postgres
GIB = 1 << 30


def _chain(name: str = "chain", group_size: int = 5) -> dict[str, Any]:
    data = yaml.safe_load((DATA / "chain.yaml").read_text())
    data["production"] = name
    data["transformations"][0]["grouping"]["group_size"] = group_size
    return data


def test_chain_runs_to_completion_on_postgresql(home: Path, ledger_postgres: str) -> None:
    engine = engine_for(_chain(), ledger_postgres)
    register_demo_inputs(engine.catalog, gamma=12, proton=6)
    run_all(engine)
    summary = summarize(engine.production, engine.sessions)
    assert {n: s["status"] for n, s in summary.items()} == {n: {"Completed": 1} for n in summary}
    assert summary["process_gamma"]["files"] == {"Processed": 12}


def test_a_3_gib_file_size_is_kept_exactly(home: Path, ledger_postgres: str) -> None:
    engine = engine_for(_chain(), ledger_postgres)
    engine.sync()
    with engine.sessions.begin() as session:
        row = engine.row(session, "process_gamma")
        session.add(FileRow(transformation_id=row.id, lfn="/ctao/big.zst", size=3 * GIB))
    with engine.sessions() as session:
        assert session.scalar(select(FileRow.size)) == 3 * GIB == 3_221_225_472


# ---- concurrency: each worker is a fresh process (spawn) with its own SQLAlchemy engine

def _in_processes(*calls: tuple[Callable[..., Any], tuple]) -> list[Any]:
    """Run ``calls`` at once, one spawned process each; their results in order. Each
    call gets the home and a barrier to wait at once it is ready, so they race."""
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager, context.Pool(len(calls)) as pool:
        barrier = manager.Barrier(len(calls))
        started = [pool.apply_async(func, (os.environ["CTAOFLOW_HOME"], barrier, *args))
                   for func, args in calls]
        return [result.get(timeout=300) for result in started]


def _ready(home: str, barrier: Any, spec: dict, url: str) -> Engine:
    """This process's engine (its own SQLAlchemy engine), once every process has one."""
    os.environ["CTAOFLOW_HOME"] = home
    engine = engine_for(spec, url)
    engine.sync()
    barrier.wait()
    return engine


def _prepare_many(home: str, barrier: Any, spec: dict, url: str, rounds: int) -> list[int]:
    engine = _ready(home, barrier, spec, url)
    return [chunk for _ in range(rounds) for chunk in engine.prepare("process_gamma")]


def _unused_files(engine: Engine, count: int, first: int = 0) -> None:
    """``count`` files back in Unused after a failed job, not grouped yet: the next
    prepares (and resets) race for them."""
    with engine.sessions.begin() as session:
        row = engine.row(session, "process_gamma")
        insert_ignore(session, FileRow.__table__, (
            {"transformation_id": row.id, "lfn": f"/ctao/in/{i:06d}.zst", "size": 3 * GIB,
             "storages": ["LOCAL-DISK"], "meta": {}, "status": FileStatus.UNUSED.value,
             "error_count": 1} for i in range(first, first + count)))  # failed once


def _assert_each_file_in_one_task(url: str, files: int, group_size: int) -> None:
    with session_factory(url)() as session:
        per_task = Counter(session.scalars(select(FileRow.task_id)
                                           .where(FileRow.task_id.is_not(None))))
        tasks = session.scalar(select(func.count()).select_from(TaskRow))
    assert sum(per_task.values()) == files  # every file assigned once
    assert tasks == len(per_task) == files // group_size  # no task without its files
    assert set(per_task.values()) == {group_size}


def test_two_processes_taking_in_at_once_assign_each_file_once(
        home: Path, ledger_postgres: str) -> None:
    spec = _chain(group_size=2)
    engine = engine_for(spec, ledger_postgres)
    engine.sync()
    _unused_files(engine, 400)
    _in_processes((_prepare_many, (spec, ledger_postgres, 3)),
                  (_prepare_many, (spec, ledger_postgres, 3)))
    _assert_each_file_in_one_task(ledger_postgres, 400, 2)
    with engine.sessions() as session:  # 3 GiB each, through the bulk insert
        assert session.scalar(select(func.sum(FileRow.size))) == 400 * 3 * GIB


def _submit(home: str, barrier: Any, spec: dict, url: str, chunk: int) -> int:
    engine = _ready(home, barrier, spec, url)
    return sum(len(ids) for ids in engine.submit("process_gamma", chunk).in_flight.values())


def test_two_processes_submitting_one_chunk_submit_each_job_once(
        home: Path, ledger_postgres: str) -> None:
    spec = _chain(group_size=1)
    spec["defaults"]["chunk_size"] = 30
    engine = engine_for(spec, ledger_postgres)
    register_demo_inputs(engine.catalog, gamma=30, proton=0)
    engine.sync()
    assert engine.prepare("process_gamma") == [0]
    _in_processes((_submit, (spec, ledger_postgres, 0)), (_submit, (spec, ledger_postgres, 0)))
    with engine.sessions() as session:
        jobs = session.scalars(select(JobRow)).all()
        sent = session.scalars(select(EventRow.message).where(EventRow.kind == "submit")).all()
    assert len(jobs) == 30 and {j.attempt for j in jobs} == {1}
    assert all(j.backend_id for j in jobs)
    assert sum(int(message.split()[0]) for message in sent) == 30  # each sent once
    run_chunk(engine, "process_gamma", 0)
    assert summarize(engine.production, engine.sessions)["process_gamma"]["files"] == {
        "Processed": 30}


def _run_production(home: str, barrier: Any, spec: dict, url: str) -> dict[str, Any]:
    engine = _ready(home, barrier, spec, url)
    run_all(engine)
    return summarize(engine.production, engine.sessions)


def test_two_productions_run_at_once_on_one_ledger(home: Path, ledger_postgres: str) -> None:
    first, second = _chain("chain_a"), _chain("chain_b")
    register_demo_inputs(engine_for(first, ledger_postgres).catalog, gamma=6, proton=3)
    summaries = _in_processes((_run_production, (first, ledger_postgres)),
                              (_run_production, (second, ledger_postgres)))
    for summary in summaries:
        assert {n: s["status"] for n, s in summary.items()} == {
            n: {"Completed": 1} for n in summary}
        assert summary["process_gamma"]["files"] == {"Processed": 6}


def _reset_many(home: str, barrier: Any, spec: dict, url: str, rounds: int) -> int:
    from ctaoflow.ops.operations import reset

    engine = _ready(home, barrier, spec, url)
    production, sessions = engine.production, engine.sessions
    return sum(reset(production, "process_gamma", statuses=("Unused",), sessions=sessions,
                     user="tester") for _ in range(rounds))


def test_a_reset_during_intake_never_unassigns_a_grouped_file(
        home: Path, ledger_postgres: str) -> None:
    spec = _chain(group_size=2)
    engine = engine_for(spec, ledger_postgres)
    engine.sync()
    for first in range(0, 400, 100):  # files arrive while resets run
        _unused_files(engine, 100, first)
        _in_processes((_prepare_many, (spec, ledger_postgres, 1)),
                      (_reset_many, (spec, ledger_postgres, 5)))
    with engine.sessions() as session:
        statuses = Counter(session.execute(select(FileRow.status, FileRow.task_id.is_(None))))
    assert statuses == {(FileStatus.ASSIGNED.value, False): 400}
    _assert_each_file_in_one_task(ledger_postgres, 400, 2)
