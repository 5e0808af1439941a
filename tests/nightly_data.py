"""A night of LST-1 data in the embedded catalog: raw subrun files, the run summary and
the current models, as the tests of nightly productions register them."""

from __future__ import annotations

from pathlib import Path

from ctaoflow import settings
from ctaoflow.backends import make_backend
from ctaoflow.catalog.base import Catalog, OutputFile
from ctaoflow.catalog.embedded import EmbeddedCatalog
from ctaoflow.engine import Engine
from ctaoflow.sites import load_sites
from ctaoflow.spec.model import Production
from ctaoflow.spec.nights import for_night

STORAGE = "LOCAL-DISK"


def catalog() -> EmbeddedCatalog:
    return EmbeddedCatalog(settings.home() / "catalog")


def _register(catalog: Catalog, folder: Path, lfn: str, content: str, metadata: dict) -> None:
    path = folder / lfn.rsplit("/", 1)[-1]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)
    catalog.register([OutputFile(lfn, str(path), metadata)], STORAGE, lfn.rsplit("/", 1)[0])


def subruns(catalog: Catalog, folder: Path, night: str, run: int, numbers: range) -> None:
    """Raw files ``LST-1.1.RunRRRRR.SSSS.fits.fz`` of one run, as the DAQ names them."""
    for subrun in numbers:
        _register(catalog, folder, f"/ctao/lst/R0/{night}/LST-1.1.Run{run:05d}.{subrun:04d}.fits.fz",
                  f"raw {night} {run} {subrun}\n",
                  {"data_level": "R0", "night": night, "run": run, "subrun": subrun})


def run_summary(catalog: Catalog, folder: Path, night: str, expected: dict[int, int]) -> None:
    _register(catalog, folder, f"/ctao/lst/monitoring/RunSummary/RunSummary_{night}.ecsv",
              "run_id,n_subruns\n" + "".join(f"{r},{n}\n" for r, n in expected.items()),
              {"datatype": "run_summary", "night": night,
               "subruns": ",".join(f"{r}:{n}" for r, n in expected.items())})


def models(catalog: Catalog, folder: Path, name: str = "models_v1.tar") -> None:
    _register(catalog, folder, f"/ctao/lst/models/{name}", f"{name}\n",
              {"datatype": "model", "status": "current"})


def night_engine(production: Production, night: str) -> Engine:
    """The engine of one night of ``production``, on the embedded catalog."""
    return Engine(for_night(production, night), catalog(), load_sites(), make_backend)
