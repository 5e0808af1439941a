"""Nights of a nightly production: their names, and the production of one night.

A night is named by the date its evening began at the site: ``2026-12-01`` as Airflow's
partition key and run id, ``20261201`` in queries, file names and paths (``{night}``).
Each night of each processing version is its own production in the ledger and the
catalog (``lst1_nightly.20261201.v1``): its files, tasks, counts, flushes and
completion never meet another night's, and a new version never touches an old one.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from ctaoflow.spec.model import Production

NIGHT_FIELDS = ("night", "version")
_FIELD = re.compile(r"(?<!\{)\{(night|version)(?::([^{}]*))?\}(?!\})")


def night_of(key: str) -> str:
    """``2026-12-01`` or ``20261201`` -> ``20261201``; ValueError for anything else."""
    for form in ("%Y-%m-%d", "%Y%m%d"):
        try:
            return dt.datetime.strptime(key, form).strftime("%Y%m%d")
        except ValueError:
            continue
    raise ValueError(f"night {key!r} is not a date; write it as YYYY-MM-DD or YYYYMMDD")


def night_key(night: str) -> str:
    """``20261201`` -> ``2026-12-01`` (Airflow's partition key of the night)."""
    return dt.datetime.strptime(night_of(night), "%Y%m%d").strftime("%Y-%m-%d")


def ledger_name(production: Production, night: str, version: str | None = None) -> str:
    """The ledger's name of one night of one processing version."""
    assert production.nightly is not None
    return f"{production.production}.{night_of(night)}.{version or production.nightly.version}"


def for_night(production: Production, night: str) -> Production:
    """The production of one night: ``{night}`` and ``{version}`` filled in everywhere,
    named by ``ledger_name``. A production that is not nightly is returned as it is."""
    if production.nightly is None:
        return production
    values = {"night": night_of(night), "version": production.nightly.version}
    data = _fill(production.model_dump(by_alias=True, exclude_unset=True), values)
    return Production.model_validate(data).model_copy(
        update={"production": ledger_name(production, night)})


def _fill(value: Any, values: dict[str, str]) -> Any:
    if isinstance(value, str):
        return _FIELD.sub(lambda m: format(values[m[1]], m[2] or ""), value)
    if isinstance(value, dict):
        return {k: _fill(v, values) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, values) for v in value]
    return value
