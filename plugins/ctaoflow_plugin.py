"""ctaoflow's Airflow UI plugin: a Productions page and a small JSON API.

Mounted by the api-server at ``/ctaoflow``. A plugin's FastAPI app inherits no
authentication from Airflow: every route here asks Airflow's auth manager for access
to the production's DAG (``requires_access_dag``), GET to read, PUT to act.
"""

from __future__ import annotations

import html
import os
from pathlib import Path

from airflow.api_fastapi.core_api.security import requires_access_dag
from airflow.plugins_manager import AirflowPlugin
from fastapi import Depends, FastAPI, HTTPException
from fastapi.responses import HTMLResponse

from ctaoflow.engine import summarize
from ctaoflow.ops.report import summary_table
from ctaoflow.settings import CONFIG_DIR
from ctaoflow.spec.model import Production
from ctaoflow.spec.validation import SpecError, load_production
from operators.timetables import NightlyTimetable

app = FastAPI(title="ctaoflow", description="CTAO productions on Airflow")
read = [Depends(requires_access_dag("GET"))]


def _productions() -> dict[str, Production]:
    folder = Path(os.environ.get("CTAOFLOW_PRODUCTIONS", CONFIG_DIR / "productions"))
    found = {}
    for path in sorted(folder.glob("*.y*ml")):
        try:
            production = load_production(path)
        except SpecError:
            continue  # shown as an import error of dags/productions.py
        found[production.production] = production
    return found


def _production(dag_id: str) -> Production:
    production = _productions().get(dag_id)
    if production is None:
        raise HTTPException(404, f"no production {dag_id!r}")
    return production


@app.get("/productions", dependencies=read, response_class=HTMLResponse)
def productions_page() -> str:
    """Every production with its per-transformation table."""
    parts = ["<html><head><title>Productions</title></head><body><h1>Productions</h1>"]
    for dag_id, production in _productions().items():
        table = html.escape(summary_table(summarize(production)))
        parts.append(f"<h2><a href='/dags/{html.escape(dag_id)}'>{html.escape(dag_id)}</a></h2>"
                     f"<p>{html.escape(production.description)}</p><pre>{table}</pre>")
    return "".join(parts) + "</body></html>"


@app.get("/api/productions/{dag_id}", dependencies=read)
def production_summary(dag_id: str) -> dict:
    """Files, tasks and jobs by status per transformation, from the ledger."""
    return summarize(_production(dag_id))


@app.get("/productions/{dag_id}", dependencies=read, response_class=HTMLResponse)
def production_page(dag_id: str) -> str:
    production = _production(dag_id)
    table = html.escape(summary_table(summarize(production)))
    return (f"<html><head><title>{html.escape(dag_id)}</title></head><body>"
            f"<h1>Production {html.escape(dag_id)}</h1>"
            f"<p>{html.escape(production.description)}</p><pre>{table}</pre></body></html>")


class CtaoflowPlugin(AirflowPlugin):
    name = "ctaoflow"
    timetables = [NightlyTimetable]  # the scheduler deserializes nightly DAGs with it
    fastapi_apps = [{"app": app, "url_prefix": "/ctaoflow", "name": "ctaoflow"}]
    external_views = [{"name": "Productions", "href": "/ctaoflow/productions",
                       "destination": "nav", "url_route": "ctaoflow"}]
