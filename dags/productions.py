"""One Airflow DAG per production YAML under ``$CTAOFLOW_PRODUCTIONS``.

By default the project's ``config/productions/``. A YAML that fails validation, or
shares its production name with another file, adds no DAG; its one-line errors surface
as an Airflow import error of this file, while the other productions load normally. A
broken sites file is reported the same way, and the productions are then loaded without
checking their site names.
"""

from __future__ import annotations

import os
from pathlib import Path

from ctaoflow.settings import CONFIG_DIR
from ctaoflow.sites import SitesError, load_sites
from ctaoflow.spec.cache import load_production
from ctaoflow.spec.model import Production
from ctaoflow.spec.validation import SpecError, no_cyclic_gc, unique_productions
from operators.dag_builder import build_dag, invalid_productions_dag

folder = Path(os.environ.get("CTAOFLOW_PRODUCTIONS", CONFIG_DIR / "productions"))
errors: list[str] = []
sites: set[str] | None = None
try:
    sites = set(load_sites())
except SitesError as exc:
    errors.extend(exc.errors)
loaded: list[tuple[Path, Production]] = []
with no_cyclic_gc():  # tens of thousands of small objects: collections would only slow it
    for path in sorted(folder.glob("*.y*ml")):
        try:
            loaded.append((path, load_production(path, known_sites=sites)))
        except SpecError as exc:
            errors.extend(exc.errors)
    kept, clashes = unique_productions(loaded)
    errors.extend(clashes)
    for path, production in kept:
        globals()[f"dag_{production.production}"] = build_dag(production, path)
if errors:
    invalid = invalid_productions_dag(errors)
