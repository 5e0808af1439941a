"""The on-disk cache of validated specs: same result as validating, never stale."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import types
from pathlib import Path
from typing import Iterator

import pytest

from ctaoflow import settings
from ctaoflow.spec import cache as spec_cache, validation
from ctaoflow.spec.validation import SpecError
from ctaoflow.spec.yamlio import MAX_BYTES

DEMO = Path(__file__).resolve().parents[1] / "config" / "productions" / "demo.yaml"


def cached_entries(home: Path) -> list[Path]:
    return sorted((home / "spec-cache").glob("*.json"))


def test_a_hit_equals_a_fresh_validation(home: Path, tmp_path: Path) -> None:
    spec = tmp_path / "demo.yaml"
    spec.write_text(DEMO.read_text())
    fresh = validation.load_production(spec, known_sites={"local"})
    first = spec_cache.load_production(spec, known_sites={"local"})
    assert len(cached_entries(home)) == 1
    second = spec_cache.load_production(spec, known_sites={"local"})
    assert first == second == fresh
    assert len(cached_entries(home)) == 1


def test_a_hit_keeps_what_the_yaml_left_unsaid(home: Path, tmp_path: Path) -> None:
    spec = tmp_path / "nightly.yaml"
    spec.write_text((Path(__file__).parent / "data/productions/nightly_small.yaml").read_text())
    spec_cache.load_production(spec, known_sites={"local"})
    hit = spec_cache.load_production(spec, known_sites={"local"})
    assert "group_size" not in hit.transformation("merge").grouping.model_fields_set
    assert hit.transformation("merge").grouping.model_fields_set == {"plugin", "key"}


def test_an_edited_spec_is_validated_again(home: Path, tmp_path: Path) -> None:
    spec = tmp_path / "demo.yaml"
    spec.write_text(DEMO.read_text())
    spec_cache.load_production(spec, known_sites={"local"})
    spec.write_text(DEMO.read_text().replace("group_size: 5", "group_sise: 5", 1))
    with pytest.raises(SpecError) as raised:
        spec_cache.load_production(spec, known_sites={"local"})
    assert "did you mean 'group_size'" in raised.value.errors[0]
    assert len(cached_entries(home)) == 1  # errors are never cached


def test_other_sites_are_checked_again(home: Path, tmp_path: Path) -> None:
    spec = tmp_path / "demo.yaml"
    spec.write_text(DEMO.read_text())
    spec_cache.load_production(spec, known_sites={"local"})
    with pytest.raises(SpecError) as raised:
        spec_cache.load_production(spec, known_sites={"CSCS"})
    assert "local" in raised.value.errors[0]


def test_a_damaged_entry_is_replaced(home: Path, tmp_path: Path) -> None:
    spec = tmp_path / "demo.yaml"
    spec.write_text(DEMO.read_text())
    good = spec_cache.load_production(spec, known_sites={"local"})
    [entry] = cached_entries(home)
    entry.write_text('{"production": "trunc')
    assert spec_cache.load_production(spec, known_sites={"local"}) == good
    assert entry.read_text() != '{"production": "trunc'


def test_a_hit_skips_validation(home: Path, tmp_path: Path,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    spec = tmp_path / "demo.yaml"
    spec.write_text(DEMO.read_text())
    first = spec_cache.load_production(spec, known_sites={"local"})

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("validated again on a cache hit")

    monkeypatch.setattr(validation, "load_production", refuse)
    assert spec_cache.load_production(spec, known_sites={"local"}) == first


def ctaoflow_modules_read_by(module: types.ModuleType) -> set[str]:
    """Files of the ctaoflow modules ``module`` reads, directly or through others."""
    seen: set[str] = set()
    todo = [module.__name__]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for obj in vars(sys.modules[name]).values():
            other = obj.__name__ if isinstance(obj, types.ModuleType) else getattr(
                obj, "__module__", None)
            if isinstance(other, str) and other.startswith("ctaoflow.") and other in sys.modules:
                todo.append(other)
    return {sys.modules[name].__file__ for name in seen}


def test_the_key_covers_every_module_validation_reads() -> None:
    read = {Path(f) for f in ctaoflow_modules_read_by(validation)} - {Path(settings.__file__)}
    assert {p.name for p in read} >= {"query.py", "chaining.py", "model.py", "yamlio.py"}
    assert read <= set(spec_cache.CODE_FILES)


@pytest.fixture
def unwritable_home(request: pytest.FixtureRequest, tmp_path: Path,
                    monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """CTAOFLOW_HOME where nothing can be written: a file where the home or its cache
    folder belongs, or a read-only tmpfs (root only)."""
    home = tmp_path / "home"
    mounted = False
    if request.param == "home is a file":
        home.write_text("not a folder")
    elif request.param == "spec-cache is a file":
        home.mkdir()
        (home / "spec-cache").write_text("not a folder")
    else:
        home.mkdir()
        if subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(home)],
                          capture_output=True, check=False).returncode:
            pytest.skip("cannot mount a tmpfs here")
        mounted = True
    monkeypatch.setenv("CTAOFLOW_HOME", str(home))
    yield home
    if mounted:
        subprocess.run(["umount", "-l", str(home)], check=True)


@pytest.mark.parametrize("unwritable_home", ["home is a file", "spec-cache is a file",
                                             "read-only mount"], indirect=True)
def test_an_unwritable_home_steps_aside(unwritable_home: Path, tmp_path: Path) -> None:
    """The spec is validated and returned each time, never cached."""
    spec = tmp_path / "demo.yaml"
    spec.write_text(DEMO.read_text())
    production = spec_cache.load_production(spec, known_sites={"local"})
    assert production == validation.load_production(spec, known_sites={"local"})
    assert spec_cache.load_production(spec, known_sites={"local"}) == production


@pytest.mark.parametrize("unwritable_home", ["read-only mount"], indirect=True)
def test_dags_parse_with_a_read_only_home(unwritable_home: Path, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.dag_processing.dagbag import DagBag

    folder = tmp_path / "productions"
    folder.mkdir()
    (folder / "demo.yaml").write_text(DEMO.read_text())
    monkeypatch.setenv("CTAOFLOW_PRODUCTIONS", str(folder))
    bag = DagBag(dag_folder=str(DEMO.parents[2] / "dags"))
    assert not bag.import_errors and "demo" in bag.dags


def test_a_fifo_or_a_huge_file_is_refused_before_reading(home: Path, tmp_path: Path) -> None:
    fifo, sparse = tmp_path / "fifo.yaml", tmp_path / "sparse.yaml"
    os.mkfifo(fifo)  # no writer: a blocking open or read would wait forever
    with sparse.open("wb") as file:
        file.truncate(50 * 2**30)

    def blocked(*_: object) -> None:
        raise TimeoutError("reading the spec blocked")
    previous = signal.signal(signal.SIGALRM, blocked)
    signal.alarm(10)
    try:
        errors = []
        for path in (fifo, sparse):
            with pytest.raises(SpecError) as info:
                spec_cache.load_production(path, known_sites={"local"})
            errors += info.value.errors
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert errors == [
        f"{fifo}:1:1: (file): not a regular file; give the path of a YAML file",
        (f"{sparse}:1:1: (file): larger than {MAX_BYTES} bytes; a spec or sites file is a few "
         "kB: check that this is the right file")]
    assert cached_entries(home) == []
