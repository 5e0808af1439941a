"""File catalogs: the embedded SQLite one and Rucio, behind ``Catalog`` (``base``).

May import: ``ctaoflow.spec.query`` and ``ctaoflow.settings``; never the engine or
Airflow (Airflow connections become catalogs in ``operators/hooks``).
"""

from ctaoflow.catalog.base import Catalog, CatalogError, CatalogFile, OutputFile

__all__ = ["Catalog", "CatalogError", "CatalogFile", "OutputFile"]
