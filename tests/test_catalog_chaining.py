"""Productions chained only through the catalog: a consumer waits for its producer.

Embedded catalog, local backend: a 4-file merge fed by another production emits no small
task while the producer runs, and flushes when the producer completes; an apply waits for
the production that makes its model; validation notes a query no production makes.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ctaoflow import cli
from ctaoflow.demo.inputs import register_demo_inputs
from ctaoflow.engine import summarize
from ctaoflow.spec.model import Production
from ctaoflow.spec.producers import notes
from tests.engine_driver import engine_for, run_all, run_chunk

pytestmark = pytest.mark.ledgers  # [sqlite] and [postgres] (tests/conftest.py)

COPY = ["sh", "-c", 'cat "$@" > "$0"']


def _producer(group_size: int = 1) -> dict:
    return {"production": "make_dl1", "transformations": [{
        "name": "process", "type": "processing",
        "input": {"query": {"data_level": "DL0", "particle": "gamma"}},
        "grouping": {"group_size": group_size},
        "job": {"command": [*COPY, "{output}", "{inputs}"]},
        "outputs": [{"name": "{task:03d}.dl1", "metadata": {"data_level": "DL1", "merged": 0}}]}]}


def _merge() -> dict:
    return {"production": "merge_dl1", "transformations": [{
        "name": "merge", "type": "merging",
        "input": {"query": {"data_level": "DL1", "merged": 0, "particle": "gamma"}},
        "grouping": {"group_size": 4},
        "job": {"command": [*COPY, "{output}", "{inputs}"]},
        "outputs": [{"name": "{task:03d}.merged", "metadata": {"merged": 1}}]}]}


def _apply() -> dict:
    return {"production": "apply_dl1", "transformations": [{
        "name": "apply", "type": "apply_models",
        "input": {"query": {"data_level": "DL1", "merged": 1}},
        "job": {"command": [*COPY, "{output}", "{input}", "{model}"],
                "side_inputs": {"model": {"outputType": "Model", "model": "energy"}}},
        "outputs": [{"name": "{task:03d}.dl2", "metadata": {"data_level": "DL2"}}]}]}


def _train() -> dict:
    return {"production": "train_model", "transformations": [{
        "name": "train", "type": "training", "input": {"query": {"data_level": "DL0"}},
        "grouping": {"plugin": "all"},
        "job": {"command": [*COPY, "{output}", "{inputs}"]},
        "outputs": [{"name": "model.pkl", "metadata": {"outputType": "Model", "model": "energy"}}]}]}


def _tasks(engine, name: str) -> dict[str, int]:
    return summarize(engine.production, engine.sessions)[name]["tasks"]


def test_a_merge_fed_by_another_production_flushes_when_its_producer_completes(home: Path) -> None:
    producer, merge = engine_for(_producer()), engine_for(_merge())
    register_demo_inputs(producer.catalog, gamma=6, proton=0)
    producer.sync()
    merge.sync()
    (chunk,) = producer.prepare("process")
    run_chunk(producer, "process", chunk)  # six DL1 files; the producer not yet Completed
    assert merge.prepare("merge") == [0]
    run_chunk(merge, "merge", 0)
    merge.finalize("merge")
    assert _tasks(merge, "merge") == {"Done": 1}  # one full group of 4; the 2 left wait
    assert summarize(merge.production, merge.sessions)["merge"]["status"] == {"Active": 1}
    assert merge.prepare("merge") == []  # still waiting: no small task early
    producer.finalize("process")  # now Completed
    assert merge.prepare("merge") == [1]  # the tail flushed
    run_chunk(merge, "merge", 1)
    merge.finalize("merge")
    summary = summarize(merge.production, merge.sessions)["merge"]
    assert summary["tasks"] == {"Done": 2} and summary["status"] == {"Completed": 1}


def test_without_a_known_producer_each_run_flushes(home: Path) -> None:
    producer = engine_for(_producer(group_size=4))  # DL0 comes from no known production
    register_demo_inputs(producer.catalog, gamma=6, proton=0)
    run_all(producer)
    assert _tasks(producer, "process") == {"Done": 2}  # 4 + the tail of 2


def test_an_apply_waits_for_the_production_that_makes_its_model(home: Path) -> None:
    producer, merge, apply, train = map(engine_for, (_producer(), _merge(), _apply(), _train()))
    register_demo_inputs(producer.catalog, gamma=4, proton=0)
    for engine in (producer, merge, apply, train):
        engine.sync()
    run_all(producer)
    run_all(merge)
    assert apply.prepare("apply") == []  # the merged file is in, the model is not
    run_all(train)
    (chunk,) = apply.prepare("apply")
    run_chunk(apply, "apply", chunk)
    apply.finalize("apply")
    assert summarize(apply.production, apply.sessions)["apply"]["status"] == {"Completed": 1}


def test_validation_notes_a_query_no_known_production_makes() -> None:
    specs = [Production.model_validate(s) for s in (_producer(), _merge(), _apply(), _train())]
    lines = notes(specs)
    assert len(lines) == 2, lines  # the two readers of raw DL0; merge and apply have makers
    assert all(line.startswith("NOTE: ") and "data_level = 'DL0'" in line for line in lines)
    assert {line.split(": ")[1] for line in lines} == {"make_dl1", "train_model"}
    alone = notes([Production.model_validate(_apply())])
    assert len(alone) == 2 and "side input model" in alone[1]


def test_the_seeds_campaign_chains_through_the_catalog() -> None:
    folder = Path(__file__).parents[1] / "config" / "productions"
    specs = [Production.model_validate(yaml.safe_load(p.read_text()))
             for p in sorted(folder.glob("seeds_*.yaml"))]
    assert len(specs) == 5
    lines = notes(specs)
    # only the DL0 readers have no maker among the five: the simulation is not one of them
    assert lines and all("seeds_dl0_to_dl2" in line for line in lines), lines


def test_an_apply_waits_for_a_model_named_in_its_own_production(home: Path) -> None:
    spec = _train()
    apply = _apply()["transformations"][0]
    apply["input"] = {"query": {"data_level": "DL0", "outputType": {"nin": ["Model"]}}}
    apply["job"]["side_inputs"] = {"model": "train"}
    spec["transformations"].append(apply)
    engine = engine_for(spec)
    register_demo_inputs(engine.catalog, gamma=2, proton=0)
    engine.sync()
    assert engine.prepare("apply") == []  # the DL0 files are in, the model is not made yet
    (chunk,) = engine.prepare("train")
    run_chunk(engine, "train", chunk)
    engine.finalize("train")
    (chunk,) = engine.prepare("apply")
    run_chunk(engine, "apply", chunk)
    assert _tasks(engine, "apply") == {"Done": 2}


def test_ctaoflow_validate_prints_the_notes_and_passes(capsys: pytest.CaptureFixture) -> None:
    folder = Path(__file__).parents[1] / "config" / "productions"
    with pytest.raises(SystemExit) as info:  # the folder's other productions are known too
        cli.main(["validate", str(folder / "seeds_merge.yaml"), str(folder / "seeds_apply.yaml")])
    assert info.value.code == 0
    assert capsys.readouterr().out.splitlines() == ["2 file(s) valid"]  # their makers are known
    with pytest.raises(SystemExit) as info:
        cli.main(["validate", str(folder / "seeds_dl0_to_dl2.yaml")])
    lines = capsys.readouterr().out.splitlines()
    assert info.value.code == 0 and lines[-1] == "1 file(s) valid"
    assert len(lines) == 8 and all(line.startswith("NOTE: seeds_dl0_to_dl2: process_") for line in lines[:7])
