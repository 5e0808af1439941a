"""Two LST-1 nights with real lstchain through a real Airflow scheduler and triggerer.

The MC flavour of the nightly chain (tests/data/productions/lst1_nightly_mc.yaml) on
real sim_telarray files laid out as nights, runs and subruns: lstchain_mc_r0_to_dl1 per
subrun, lstchain_merge_hdf5_files per run, lstchain_dl1_to_dl2 with MEANINGLESS models
(tests/lstchain_service.py). Both nights come from one Airflow backfill; one subrun of
the second night fails once (an injected fault) and is retried.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select

from ctaoflow.catalog.base import OutputFile
from ctaoflow.catalog.embedded import EmbeddedCatalog
from ctaoflow.engine import summarize
from ctaoflow.engine.ledger import JobRow, session_factory
from ctaoflow.spec.nights import for_night
from ctaoflow.spec.query import Query
from ctaoflow.spec.validation import load_production
from tests import nightly_data as data
from tests.engine_driver import DATA
from tests.lstchain_service import GAMMA, JOBS, PROTON, R0_CONFIG, read

pytestmark = pytest.mark.nightly
DAG = "lst1_nightly_mc"
PARAMS = "/dl1/event/telescope/parameters/LST_LSTCam"
DL2 = "/dl2/event/telescope/parameters/LST_LSTCam"
NIGHTS = {"20261001": (202, PROTON), "20261002": (75, GAMMA)}  # night: (run, simtel file)


def lay_out(catalog: EmbeddedCatalog, simtel: Path, night: str, run: int, source: str,
            folder: Path) -> None:
    """Two subruns of one run, each a replica of the same simulation file (a run's
    subruns must share their telescopes to be merged), and the night's run summary."""
    for subrun in range(2):
        lfn = f"/ctao/lst/R0/{night}/LST-1.1.Run{run:05d}.{subrun:04d}.simtel.zst"
        catalog.register([OutputFile(lfn, str(simtel / source), {
            "data_level": "R0", "telescope": "LST-1", "night": night, "run": run,
            "subrun": subrun})], data.STORAGE, f"/ctao/lst/R0/{night}")
    summary = folder / f"RunSummary_{night}.ecsv"
    summary.write_text(f"run_id,n_subruns\n{run},2\n")
    catalog.register([OutputFile(f"/ctao/lst/RunSummary_{night}.ecsv", str(summary), {
        "datatype": "run_summary", "telescope": "LST-1", "night": night,
        "subruns": f"{run}:2"})], data.STORAGE, "/ctao/lst/monitoring")


@pytest.mark.airflow
def test_two_nights_of_lst1_with_real_lstchain(airflow_cluster, lstchain_env, simtel_dir,
                                               meaningless_models, tmp_path) -> None:
    cluster = airflow_cluster
    home = Path(cluster.env["CTAOFLOW_HOME"])
    faults = tmp_path / "faults"
    faults.mkdir()
    raw = yaml.safe_load((DATA / "lst1_nightly_mc.yaml").read_text())
    for t in raw["transformations"]:
        params = t["job"].get("parameters", {})
        params.update({k: v for k, v in {"jobs": str(JOBS), "config": str(R0_CONFIG),
                                        "faults": str(faults)}.items() if k in params})
    spec_file = cluster.productions / "lst1_nightly_mc.yaml"
    spec_file.write_text(yaml.safe_dump(raw, sort_keys=False))
    spec = load_production(spec_file)
    catalog = EmbeddedCatalog(home / "catalog")
    catalog.register([OutputFile("/ctao/lst/models/MEANINGLESS-lst-models.tar",
                                 str(meaningless_models["models"]), {
                                     "datatype": "rf_models", "telescope": "LST-1",
                                     "status": "current", "meaningless": True})],
                     data.STORAGE, "/ctao/lst/models")
    for night, (run, source) in NIGHTS.items():
        lay_out(catalog, simtel_dir, night, run, source, tmp_path)
    (faults / "LST-1.1.Run00075.0001.simtel.zst").touch()  # its first attempt fails
    sessions = session_factory(f"sqlite:///{home / 'ledger.db'}")
    cluster.wait_for_dag(DAG)

    cluster.airflow("backfill", "create", "--dag-id", DAG, "--from-date", "2026-10-01",
                    "--to-date", "2026-10-02", "--max-active-runs", "2")
    deadline, states = time.monotonic() + 1500, {}
    while time.monotonic() < deadline:
        runs = cluster.rest(f"dags/{DAG}/dagRuns?limit=100")["dag_runs"]
        states = {r["partition_key"]: r["state"] for r in runs if r["run_type"] == "backfill"}
        if len(states) == 2 and all(s in ("success", "failed") for s in states.values()):
            break
        time.sleep(5)
    assert states == {"2026-10-01": "success", "2026-10-02": "success"}, cluster.logs

    for night, (run, _) in NIGHTS.items():
        counts = summarize(for_night(spec, night), sessions)
        assert counts["r0_to_dl1"]["files"] == {"Processed": 2}, counts
        assert counts["merge_run"]["tasks"] == {"Done": 1} and counts["dl1_to_dl2"]["tasks"] == {"Done": 1}
        name = f"{DAG}.{night}.v1"
        outputs = {f.metadata["transformation"]: f for f in catalog.query(Query.parse({"production": name}))
                   if f.metadata["transformation"] != "r0_to_dl1"}
        assert all(f"/{night}/" in f.lfn for f in outputs.values())
        merged, dl2 = outputs["merge_run"], outputs["dl1_to_dl2"]
        assert (merged.metadata["run"], merged.metadata["night"]) == (run, night)
        assert dl2.metadata["inputs"] == merged.lfn and dl2.metadata["software_version"] == "v0.12.3"
        subruns = sorted(f.lfn for f in catalog.query(Query.parse({"production": name,
                                                                     "transformation": "r0_to_dl1"})))
        assert merged.metadata["inputs"] == ",".join(subruns)
        paths = catalog.local_paths([*subruns, merged.lfn, dl2.lfn])
        first, merged_table, dl2_table = read(lstchain_env, (Path(paths[subruns[0]]), PARAMS),
                                              (Path(paths[merged.lfn]), PARAMS),
                                              (Path(paths[dl2.lfn]), DL2))
        images = first["rows"][PARAMS]
        assert images > 0 and merged_table["rows"][PARAMS] == 2 * images  # events conserved
        # lstchain's standard quality cuts (intensity, leakage) may drop a few images
        assert 0 < dl2_table["rows"][DL2] <= 2 * images
        assert all(0 <= g <= 1 for g in dl2_table["table"]["gammaness"])

    with sessions() as session:
        attempts = session.execute(select(JobRow.name, JobRow.status, JobRow.exit_code)
                                   .where(JobRow.name.like(f"{DAG}.20261002.%r0_to_dl1%"))
                                   .order_by(JobRow.name)).all()
    failed = [a for a in attempts if a.status == "Failed"]
    assert len(failed) == 1 and failed[0].exit_code == 3, attempts  # the injected fault
    assert sum(a.status == "Done" for a in attempts) == 2  # and its retry
    # the first night was never touched by the second
    assert not any(".20261002." in f.lfn for f in catalog.query(Query.parse(
        {"production": f"{DAG}.20261001.v1"})))
    shutil.rmtree(faults)
