"""The routes of the Productions UI, mounted by Airflow's api-server at ``/ctaoflow``.

Pages (``/productions...``) and the same data as JSON (``/api/productions...``) need the
DAG's read permission; actions (``POST /api/productions/{dag_id}/actions``) its edit
permission and a proof that the request is not cross-site (``access``). The OpenAPI
schema and its page need a login too.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from sqlalchemy.orm import Session, sessionmaker

from ctaoflow import connections
from ctaoflow.engine.ledger import LedgerError, session_factory
from ctaoflow.ops import overview, report
from ctaoflow.ops.audit import audit as audit_production
from ctaoflow.ops.night import night_status
from ctaoflow.ops.operations import OperationError
from ctaoflow.settings import CONFIG_DIR
from ctaoflow.sites import load_sites
from ctaoflow.spec.cache import load_production
from ctaoflow.spec.graph import topological_order
from ctaoflow.spec.model import Production
from ctaoflow.spec.nights import for_night, night_of
from ctaoflow.spec.validation import SpecError

from operators.hooks.connections import lookup
from operators.hooks.production import ProductionHook, backend_for

from ctaoflow_ui import access, pages
from ctaoflow_ui.actions import ActionRequest, perform

app = FastAPI(title="ctaoflow", description="CTAO productions on Airflow: pages, JSON and "
              "operator actions", docs_url=None, redoc_url=None, openapi_url=None)
HTML = {"response_class": HTMLResponse}


def productions_folder() -> Path:
    return Path(os.environ.get("CTAOFLOW_PRODUCTIONS", CONFIG_DIR / "productions"))


def productions() -> dict[str, tuple[Path, Production]]:
    """The productions of the folder by name; a file that does not validate is left out
    (it shows as an import error of dags/productions.py)."""
    found = {}
    for path in sorted(productions_folder().glob("*.y*ml")):
        try:
            production = load_production(path)
        except SpecError:
            continue
        found[production.production] = (path, production)
    return found


def ledger_url() -> str:
    """The ledger of every entry point: the ``ctaoflow_ledger`` connection, else the
    embedded default (``ctaoflow.connections``)."""
    return connections.resolve(lookup).ledger_url


def sessions() -> sessionmaker[Session]:
    return session_factory(ledger_url())


def _spec(dag_id: str) -> tuple[Path, Production]:
    """The production's file and spec (of every night, for a nightly one)."""
    found = productions().get(dag_id)
    if found is None:
        raise HTTPException(404, f"no production {dag_id!r} in {productions_folder()}")
    return found


def _production(dag_id: str, night: str | None,
                found: tuple[Path, Production] | None = None) -> tuple[Path, Production]:
    """The production of the page: of one night when ``night`` is given."""
    path, production = found or _spec(dag_id)
    if night and production.nightly is None:
        raise HTTPException(400, f"{dag_id} is not a nightly production: drop ?night=")
    if night:
        try:
            production = for_night(production, night_of(night))
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from None
    return path, production


def _root(request: Request) -> str:
    return request.scope.get("root_path", "").rstrip("/")


@app.exception_handler(LedgerError)
def _ledger_down(_request: Request, exc: LedgerError) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=503)


@app.get("/productions", dependencies=access.read, **HTML)
def list_page(request: Request, user: access.User) -> str:
    """Every production the user may read, with progress and what needs a person."""
    lines = overview.production_lines(sessions(), access.readable_dags(user))
    return pages.list_page(_root(request), lines)


@app.get("/api/productions", dependencies=access.read)
def list_json(user: access.User) -> list[dict[str, Any]]:
    return [{**vars(line), "total": line.total, "processed": line.processed,
             "needs_a_person": line.needs_a_person}
            for line in overview.production_lines(sessions(), access.readable_dags(user))]


def _report(dag_id: str, night: str | None, found: tuple[Path, Production] | None = None,
            ) -> tuple[Production, report.Report]:
    path, production = _production(dag_id, night, found)
    return production, report.build(production, str(path), sessions())


@app.get("/productions/{dag_id}", dependencies=access.read, **HTML)
def production_page(request: Request, dag_id: str, user: access.User, night: str | None = None,
                    format: str = "page") -> str:
    """One production, or one night of a nightly production; ``format=report``: the
    HTML report of ``ctaoflow report --format html``."""
    found = _spec(dag_id)
    production, built = _report(dag_id, night, found)
    if format == "report":
        return report.as_html(built)
    spec = found[1]
    nights = ([line for line in overview.production_lines(sessions(), {dag_id}) if line.night]
              if spec.nightly else [])
    table = (night_status(spec, night_of(night), ledger_url())
             if night and spec.nightly else None)
    order = [(t.name, list(t.all_parents)) for t in topological_order(production)]
    return pages.production_page(
        _root(request), dag_id, built, overview.transformation_jobs(production.production,
                                                                    sessions()),
        order, night, nights, table, access.can_edit(user, dag_id),
        access.action_token(request))


@app.get("/api/productions/{dag_id}", dependencies=access.read)
def production_json(dag_id: str, night: str | None = None) -> dict[str, Any]:
    """Files, tasks and jobs by status, jobs by site, failure classes per transformation."""
    production, built = _report(dag_id, night)
    return {"production": production.production, "status": built.status,
            "summary": built.summary, "needs_a_person": built.needs_a_person,
            "transformations": overview.transformation_jobs(production.production, sessions()),
            "errors": [vars(g) for g in built.errors]}


def _files(dag_id: str, night: str | None, transformation: str | None) -> list[dict]:
    production = _production(dag_id, night)[1]
    return overview.problem_files(production.production, transformation, sessions())


@app.get("/productions/{dag_id}/files", dependencies=access.read, **HTML)
def files_page(request: Request, dag_id: str, night: str | None = None,
               transformation: str | None = None) -> str:
    title = f"{dag_id}{' ' + night if night else ''}: files that need a person" + (
        f" in {transformation}" if transformation else "")
    return pages.files_page(_root(request), dag_id, night,
                            _files(dag_id, night, transformation), title)


@app.get("/api/productions/{dag_id}/files", dependencies=access.read)
def files_json(dag_id: str, night: str | None = None,
               transformation: str | None = None) -> list[dict]:
    return _files(dag_id, night, transformation)


def _task(dag_id: str, night: str | None, transformation: str, index: int) -> dict:
    production = _production(dag_id, night)[1]
    task = overview.task_detail(production.production, transformation, index, sessions())
    if task is None:
        raise HTTPException(404, f"no task {index} of {transformation} in {dag_id}")
    return task


@app.get("/productions/{dag_id}/tasks/{transformation}/{index}", dependencies=access.read,
         **HTML)
def task_page(request: Request, dag_id: str, transformation: str, index: int,
              night: str | None = None) -> str:
    return pages.task_page(_root(request), dag_id, night,
                           _task(dag_id, night, transformation, index))


@app.get("/api/productions/{dag_id}/tasks/{transformation}/{index}", dependencies=access.read)
def task_json(dag_id: str, transformation: str, index: int, night: str | None = None) -> dict:
    return _task(dag_id, night, transformation, index)


@app.get("/productions/{dag_id}/chunks/{transformation}/{chunk}", dependencies=access.read,
         **HTML)
def chunk_page(request: Request, dag_id: str, transformation: str, chunk: int,
               night: str | None = None) -> str:
    """What one chunk task instance of Airflow's grid manages (its extra link leads here)."""
    production = _production(dag_id, night)[1]
    tasks = overview.chunk_tasks(production.production, transformation, chunk, sessions())
    return pages.chunk_page(_root(request), dag_id, night, transformation, chunk, tasks)


@app.post("/api/productions/{dag_id}/actions", dependencies=access.edit)
def act(dag_id: str, body: ActionRequest, user: access.User) -> dict[str, Any]:
    """Reset, flush, stop, start, extend or audit, as the CLI does: ``dry_run`` (the default)
    says what it would touch; the real call records the Airflow user and the reason."""
    if not body.dry_run and not body.reason.strip():
        raise HTTPException(422, "say why: an action is recorded with its reason")
    path, production = _production(dag_id, body.night)

    def audit() -> list[str]:
        return audit_production(production, ProductionHook(str(path)).catalog(), load_sites(),
                                backend_for, sessions())

    try:
        return perform(production, body, user.get_name(), audit)
    except OperationError as exc:
        raise HTTPException(409, str(exc)) from None


@app.get("/openapi.json", dependencies=access.logged_in)
def openapi() -> dict[str, Any]:
    return app.openapi()


@app.get("/docs", dependencies=access.logged_in, **HTML)
def docs(request: Request) -> HTMLResponse:
    return get_swagger_ui_html(openapi_url=f"{_root(request)}/openapi.json",
                               title="ctaoflow API")
