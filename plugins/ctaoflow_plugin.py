"""ctaoflow's Airflow plugin: the Productions UI in Airflow's navigation, the nightly
timetable, and the extra links between chunk task instances and the UI.

The UI (``ctaoflow_ui``) is a FastAPI app mounted by the api-server at ``/ctaoflow``.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from ctaoflow_ui.app import app
from operators.links import ChunkLink, ProductionLink
from operators.timetables import NightlyTimetable


class CtaoflowPlugin(AirflowPlugin):
    name = "ctaoflow"
    timetables = [NightlyTimetable]  # the scheduler deserializes nightly DAGs with it
    operator_extra_links = [ChunkLink(), ProductionLink()]
    fastapi_apps = [{"app": app, "url_prefix": "/ctaoflow", "name": "ctaoflow"}]
    external_views = [{"name": "Productions", "href": "/ctaoflow/productions",
                       "destination": "nav", "url_route": "ctaoflow"}]
