"""Validating a production of 10,000 transformations, as ``ctaoflow validate`` does
(reading, shapes, cross-field rules, placeholders), then ordering its graph.

The spec is a chain of chains: transformation i reads the outputs of i - 1, except every
100th, which starts a new chain from a catalog query, so both long ancestries and many
transformations are covered. Baseline, same run: the same kind of spec with 1,000
transformations. Time grows about linearly when the ratio is about 10.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._result import write_result  # noqa: E402
from ctaoflow.spec.graph import topological_order  # noqa: E402
from ctaoflow.spec.validation import load_production  # noqa: E402

JOB = '{command: [run, --out, "{output}", "{inputs}"]}'


def spec(count: int, chain: int = 100) -> str:
    """A production of ``count`` transformations in chains of ``chain``."""
    lines = ["production: scale", "transformations:"]
    for i in range(count):
        source = ("{query: {data_level: DL0}}" if i % chain == 0 else f"{{from: t{i - 1}}}")
        lines.append(f'  - {{name: t{i}, type: processing, input: {source}, job: {JOB}, '
                     f'outputs: [{{name: "t{i}_{{task:06d}}.h5"}}]}}')
    return "\n".join(lines) + "\n"


def seconds_to_validate(count: int, folder: Path) -> float:
    path = folder / f"scale_{count}.yaml"
    path.write_text(spec(count))
    started = time.perf_counter()
    production = load_production(path)
    assert len(topological_order(production)) == count
    return time.perf_counter() - started


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        seconds_to_validate(100, Path(folder))  # warm-up: imports, pydantic's first build
        baseline = seconds_to_validate(1_000, Path(folder))
        value = seconds_to_validate(10_000, Path(folder))
    write_result("validate_10k_transformations", round(value, 3), "s", round(baseline, 3),
                 round(value / baseline, 2), baseline_what="1,000 transformations, same run",
                 spec_bytes=len(spec(10_000)))


if __name__ == "__main__":
    main()
