"""One Airflow DAG per production YAML under ``$CTAOFLOW_PRODUCTIONS``.

By default the project's ``config/productions/``. A YAML that fails validation adds
no DAG; its one-line errors surface as an Airflow import error of this file, while
the other productions load normally.
"""

from __future__ import annotations

import os
from pathlib import Path

from ctaoflow.settings import CONFIG_DIR
from ctaoflow.sites import load_sites
from ctaoflow.spec.cache import load_production
from ctaoflow.spec.validation import SpecError
from operators.dag_builder import build_dag, invalid_productions_dag

folder = Path(os.environ.get("CTAOFLOW_PRODUCTIONS", CONFIG_DIR / "productions"))
sites = set(load_sites())
errors: list[str] = []
for path in sorted(folder.glob("*.y*ml")):
    try:
        production = load_production(path, known_sites=sites)
    except SpecError as exc:
        errors.extend(exc.errors)
        continue
    globals()[f"dag_{production.production}"] = build_dag(production, path)
if errors:
    invalid = invalid_productions_dag(errors)
