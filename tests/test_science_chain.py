"""The seeds' ctapipe campaign for real: five productions chained only through the catalog.

DL0 (real sim_telarray, in the real Rucio) -> ctapipe-process -> ctapipe-merge in three
stages -> energy regressor -> energy applied -> particle classifier (MEANINGLESS: its
background is a relabelled gamma file, see tests/science_chain.py) -> both models applied
-> DL2, every job on the real Slurm, driven through the engine. Outputs are read back
with ctapipe itself.
"""

from __future__ import annotations

import uuid

import pytest

from ctaoflow.backends import make_backend
from ctaoflow.catalog.rucio import RucioCatalog
from ctaoflow.engine import Engine, summarize
from ctaoflow.sites import load_sites
from ctaoflow.spec.model import Production
from ctaoflow.spec.query import Query
from tests.ctapipe_service import inspect_h5
from tests.science_chain import SIMTEL_DIR, SST1M, campaign, drive, register_dl0
from tests.slurm_service import use_slurm_site

pytestmark = [pytest.mark.science, pytest.mark.rucio, pytest.mark.slurm]
SHOWERS = 31  # triggered subarray events of the SST-1M file (its README)
ENERGY, GAMMANESS = "ExtraTreesRegressor_energy", "ExtraTreesClassifier_prediction"


@pytest.fixture
def rucio_on_slurm(rucio_server, slurm_cluster, home, monkeypatch):
    """A Rucio catalog of this test's connection and a sites file with one Slurm site."""
    if not (SIMTEL_DIR / SST1M).is_file():
        pytest.skip(f"{SST1M} not in {SIMTEL_DIR} (set CTAOFLOW_SIMTEL_DIR)")
    use_slurm_site(slurm_cluster, home.parent, monkeypatch)
    catalog = RucioCatalog(rucio_server["host"], username=rucio_server["username"],
                           password=rucio_server["password"], scope=rucio_server["scope"],
                           name="science")
    yield catalog
    catalog.close()


def test_the_seeds_campaign_on_real_files_rucio_and_slurm(ctapipe_env, rucio_on_slurm) -> None:
    catalog, tag = rucio_on_slurm, "sci" + uuid.uuid4().hex[:8]
    engines = [Engine(Production.model_validate(spec), catalog, load_sites(), make_backend)
               for spec in campaign(tag, "slurm", "LOCAL-DISK")]
    dl0 = register_dl0(catalog, tag, "LOCAL-DISK")
    for engine in engines:
        engine.sync()  # every production known to the ledger: producers are found by spec
    for engine in engines:
        drive(engine)
        summary = summarize(engine.production, engine.sessions)
        assert all(s["status"] == {"Completed": 1} for s in summary.values()), summary

    def outputs(**query) -> list:
        return sorted(catalog.query(Query.parse({"tag": tag, **query})), key=lambda f: f.lfn)

    processed = outputs(analysis_prog="ctapipe-process")
    assert len(processed) == len(dl0) == 4  # one DL2 per DL0
    merged = {m: outputs(analysis_prog="ctapipe-merge", merged=m) for m in (1, 2, 3)}
    assert [len(v) for v in merged.values()] == [4, 4, 4]  # one partial group per stage, at flush
    assert {f.metadata["data_level"] for f in processed + merged[3]} == {2}
    (energy,) = outputs(outputType="Model", model="energy_regressor")
    (classifier,) = outputs(outputType="Model", model="particle_classifier")
    assert classifier.metadata["quality"] == "MEANINGLESS"
    with_energy = outputs(reconstructed="energy", outputType="Data")  # the classifier inherits the key
    assert {f.metadata["particle"] for f in with_energy} == {"gamma-diffuse", "proton"}
    (final,) = outputs(reconstructed="energy+gammaness")
    assert (final.metadata["split"], final.metadata["analysis_prog"]) == ("test", "ctapipe-apply-models")
    assert final.metadata["analysis_prog_version"] == "v0.32.0"

    files = [*processed, *merged[1], *merged[2], *merged[3], energy, classifier, *with_energy, final]
    paths = catalog.local_paths([f.lfn for f in files])
    found = inspect_h5(ctapipe_env, [paths[f.lfn] for f in files],
                       full=[paths[f.lfn] for f in (*with_energy, final)])
    read = {f.lfn: found[paths[f.lfn]] for f in files}
    # events conserved: every file of every stage holds the file's 31 showers
    assert {read[f.lfn]["events"] for f in processed + merged[1] + merged[2] + merged[3]} == {SHOWERS}
    assert all("/dl2/event/subarray/geometry/HillasReconstructor" in read[f.lfn]["tables"]
               for f in processed)
    assert (read[energy.lfn]["model"], read[classifier.lfn]["model"]) == ("EnergyRegressor",
                                                                         "ParticleClassifier")
    for f in with_energy:  # the energy applied to the classifier's training files
        assert read[f.lfn]["events"] == SHOWERS and ENERGY in read[f.lfn]["columns"]
        assert GAMMANESS not in read[f.lfn]["columns"]
    result = read[final.lfn]
    assert result["events"] == SHOWERS and {ENERGY, GAMMANESS} <= set(result["columns"])
    assert result["primaries"] == [0]  # real gamma showers: only the classifier's background was relabelled
