"""Who may see and do what: Airflow's auth manager decides, per production's DAG.

Reads need the DAG's GET permission, actions its PUT permission. A plugin's FastAPI app
inherits nothing from Airflow's, so every route declares one of these dependencies.
Airflow's session cookie is ambient: a write that relies on it must also carry the
page's action token (an HMAC of that cookie under the api-server's secret key), which
another site cannot read, and its Origin, when sent, must be this server's.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import urlsplit

from airflow.api_fastapi.auth.managers.models.resource_details import DagDetails
from airflow.api_fastapi.app import get_auth_manager
from airflow.api_fastapi.auth.managers.base_auth_manager import COOKIE_NAME_JWT_TOKEN
from airflow.api_fastapi.core_api.security import GetUserDep, get_user, requires_access_dag
from airflow.configuration import conf
from fastapi import Depends, HTTPException, Request

ACTION_HEADER = "X-Ctaoflow-Action-Token"
read = [Depends(requires_access_dag("GET"))]
logged_in = [Depends(get_user)]


def can_edit(user: object, dag_id: str) -> bool:
    return get_auth_manager().is_authorized_dag(method="PUT", details=DagDetails(id=dag_id),
                                                user=user)


def readable_dags(user: object) -> set[str]:
    return get_auth_manager().get_authorized_dag_ids(user=user, method="GET")


def action_token(request: Request) -> str:
    """The token a page hands its own scripts for the writes it may send."""
    cookie = request.cookies.get(COOKIE_NAME_JWT_TOKEN, "")
    key = (conf.get("api", "secret_key", fallback="") or "ctaoflow").encode()
    return hmac.new(key, cookie.encode(), hashlib.sha256).hexdigest()


def not_cross_site(request: Request) -> None:
    """Writes on the strength of the cookie need the page's token and this origin; a
    bearer token (an API client) is its own proof."""
    if request.headers.get("authorization", "").lower().startswith("bearer "):
        return
    origin = request.headers.get("origin")
    if origin and urlsplit(origin).netloc != request.headers.get("host"):
        raise HTTPException(403, "cross-site request refused")
    sent = request.headers.get(ACTION_HEADER, "")
    if not (request.cookies.get(COOKIE_NAME_JWT_TOKEN)
            and hmac.compare_digest(sent, action_token(request))):
        raise HTTPException(403, f"an action needs the page's {ACTION_HEADER} header or an "
                                 "Authorization: Bearer token")


edit = [Depends(requires_access_dag("PUT")), Depends(not_cross_site)]
User = GetUserDep
