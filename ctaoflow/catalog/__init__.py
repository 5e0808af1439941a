"""File catalogs: the embedded SQLite one and Rucio."""

from ctaoflow.catalog.base import Catalog, CatalogError, CatalogFile, OutputFile

__all__ = ["Catalog", "CatalogError", "CatalogFile", "OutputFile"]
