"""Extra links from Airflow's grid to the Productions UI: a chunk task instance links to
the ctaoflow tasks and jobs it manages, the report task to its production's page."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlsplit

from airflow.sdk import BaseOperatorLink, conf


def ui_url(path: str) -> str:
    """``/ctaoflow/<path>`` under the api-server's base URL (its path only: the link
    opens on whatever host the person reached Airflow by)."""
    base = urlsplit(conf.get("api", "base_url", fallback="") or "").path.rstrip("/")
    return f"{base}/ctaoflow/{path}"


def _page(operator: Any, path: str = "") -> str:
    """A page of the operator's production; of the night it worked on, for a nightly one
    (``ProductionOperator.hook`` records it in ``night``)."""
    night = getattr(operator, "night", None)
    return ui_url(f"productions/{quote(operator.dag_id)}{path}"
                  + (f"?night={night}" if night else ""))


class ProductionLink(BaseOperatorLink):
    """The production's page in the Productions UI."""

    name = "Production page"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        return _page(operator)


class ChunkLink(BaseOperatorLink):
    """The ctaoflow tasks and jobs of this chunk."""

    name = "ctaoflow tasks and jobs"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        return _page(operator, f"/chunks/{quote(operator.transformation)}/{operator.chunk}")
