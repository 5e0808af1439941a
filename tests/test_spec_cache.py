"""The on-disk cache of validated specs: same result as validating, never stale."""

from __future__ import annotations

from pathlib import Path

import pytest

from ctaoflow import spec_cache, validation
from ctaoflow.validation import SpecError

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
