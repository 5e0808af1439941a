"""ProductionHook: the ledger, the catalog and the sites of a production, from Airflow
connections, with ctaoflow's embedded defaults where no connection is defined.

Connections: ``ctaoflow_ledger`` (type postgres, or a ``sqlite:///`` URI) and
``ctaoflow_catalog`` (type ``rucio``), resolved by ``ctaoflow.connections.resolve`` as
every entry point does; each site's own ``connection`` (config/sites.yaml) for its batch
system.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowNotFoundException
from sqlalchemy.orm import Session, sessionmaker

from ctaoflow import connections
from ctaoflow.backends import Backend, SiteConfig, make_backend
from ctaoflow.catalog.base import Catalog
from ctaoflow.engine import Engine
from ctaoflow.engine.ledger import session_factory
from operators.hooks.connections import lookup
from ctaoflow.sites import load_sites
from ctaoflow.spec.model import Production
from ctaoflow.spec.cache import load_production
from ctaoflow.spec.nights import for_night


def _connection(conn_id: str):
    try:
        return BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        return None


def backend_params(site: SiteConfig) -> dict:
    """The backend settings in the site's Airflow connection (none for local sites)."""
    if not site.connection:
        return {}
    if site.backend == "kubernetes":
        from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook
        return {"api_client": KubernetesHook(conn_id=site.connection).api_client}
    conn = _connection(site.connection)
    if conn is None:
        return {}
    return {"host": conn.host, "port": conn.port, "login": conn.login,
            "password": conn.password, **conn.extra_dejson}


def backend_for(site: SiteConfig) -> Backend:
    return make_backend(site, backend_params(site))


@cache
def _production(path: str, mtime: float) -> Production:
    return load_production(path, known_sites=load_sites())


class ProductionHook(BaseHook):
    """Builds the Engine of the production described by ``spec_path``."""

    conn_name_attr = "ledger_conn_id"
    default_conn_name = "ctaoflow_ledger"
    hook_name = "ctaoflow production"

    def __init__(self, spec_path: str, night: str | None = None,
                 ledger_conn_id: str = "ctaoflow_ledger",
                 catalog_conn_id: str = "ctaoflow_catalog") -> None:
        super().__init__()
        self.spec_path = spec_path
        self.night = night
        self.ledger_conn_id = ledger_conn_id
        self.catalog_conn_id = catalog_conn_id

    def production(self) -> Production:
        """The production; of one night (``for_night``) when the hook has a night."""
        production = _production(self.spec_path, Path(self.spec_path).stat().st_mtime)
        return for_night(production, self.night) if self.night else production

    def resolved(self) -> connections.Resolved:
        return connections.resolve(lookup, self.ledger_conn_id, self.catalog_conn_id)

    def ledger_url(self) -> str:
        return self.resolved().ledger_url

    def sessions(self) -> sessionmaker[Session]:
        return session_factory(self.ledger_url())

    def catalog(self) -> Catalog:
        return connections.catalog(self.resolved().catalog)

    def engine(self) -> Engine:
        from operators.hooks import monitoring
        monitoring.start(self.ledger_url())  # when the ctaoflow_opensearch connection exists
        return Engine(self.production(), self.catalog(), load_sites(), backend_for,
                      ledger_url=self.ledger_url())

    def get_conn(self) -> Engine:
        return self.engine()
