"""Write one benchmark figure to benchmarks/results/<name>.json and print it last."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> str:
    return f"{platform.machine()} {os.cpu_count()} cpus, Python {platform.python_version()}"


def write_result(name: str, value: float, unit: str, baseline: float, ratio: float,
                 **extra: object) -> dict:
    result = {"name": name, "value": value, "unit": unit, "baseline": baseline,
              "ratio": ratio, "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
              "machine": machine(), **extra}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(json.dumps(result, default=str))
    return result
