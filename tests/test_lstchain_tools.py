"""The LST-1 nightly chain's lstchain tools, run for real through the job wrappers.

No real LST-1 R0 file is public, so this runs the chain's MC flavour on real sim_telarray
files: one "subrun" r0 -> dl1 (lstchain_mc_r0_to_dl1) -> dl1ab (lstchain_dl1ab), a run merge of two subruns
(lstchain_merge_hdf5_files), dl1 -> dl2 (lstchain_dl1_to_dl2) with a model set trained by
lstchain_mc_trainpipe. That model set is MEANINGLESS: a handful of telescope images of one
gamma shower (history_meta_75) and two proton showers (prod5 run202) from two different
arrays, trained with tiny random forests. It only proves the tools run and their files
connect. It is trained once and cached under var/lstchain-cache.

The sim_telarray files are read from $CTAOFLOW_SIMTEL_DIR (default /work/shared/data/simtel;
see services/lstchain/README.md); the test is skipped when they are absent.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.lstchain_service import GAMMA, JOBS, R0_CONFIG, TRAIN_CONFIG, job, read

pytestmark = pytest.mark.nightly

PARAMS = "/dl1/event/telescope/parameters/LST_LSTCam"
IMAGES = "/dl1/event/telescope/image/LST_LSTCam"
TRIGGER = "/dl1/event/subarray/trigger"
DL2 = "/dl2/event/telescope/parameters/LST_LSTCam"

def test_wrappers_refuse_missing_inputs_before_running_a_tool(lstchain_env: Path, tmp_path: Path) -> None:
    env = {**os.environ, "CTAOFLOW_LSTCHAIN_ENV": str(lstchain_env.parent)}
    for script, args in (("subrun_r0_to_dl1_mc.sh", ["nope.simtel.zst", "out.h5"]),
                         ("subrun_dl1ab.sh", ["nope.h5", "out.h5"]),
                         ("merge_run.sh", ["out.h5", "nope.h5"]),
                         ("dl1_to_dl2.sh", ["nope.h5", "models.tar", "out.h5"]),
                         ("train_models.sh", ["g.h5", "p.h5", "models.tar"]),
                         ("merge_run.sh", ["out.h5"])):
        done = subprocess.run(["bash", str(JOBS / script), *args], cwd=tmp_path, env=env,
                              check=False, capture_output=True, text=True)
        assert done.returncode == 2, (script, done.stderr)
        assert len(done.stderr.strip().splitlines()) == 1 and done.stderr.startswith(script[:-3] + ":")
    assert list(tmp_path.iterdir()) == []


def test_mc_night_subruns_merge_and_dl2(lstchain_env: Path, meaningless_models: Path, simtel_dir: Path,
                                        tmp_path: Path) -> None:
    night = tmp_path / "DL1" / "20261202"
    # subrun 0000: r0 -> dl1 (DL1a) for real, then dl1ab (DL1b)
    dl1a = night / "dl1a_LST-1.Run00202.0000.h5"
    assert "wrote " + str(dl1a) in job(lstchain_env, "subrun_r0_to_dl1_mc.sh", simtel_dir / GAMMA, dl1a, R0_CONFIG)
    sub0 = night / "dl1_LST-1.Run00202.0000.h5"
    job(lstchain_env, "subrun_dl1ab.sh", dl1a, sub0)
    # subrun 0001: the same showers again (merge does not refuse repeated event ids)
    sub1 = night / "dl1_LST-1.Run00202.0001.h5"
    shutil.copy(sub0, sub1)
    merged = tmp_path / "DL1" / "merged" / "dl1_LST-1.Run00202.h5"
    job(lstchain_env, "merge_run.sh", merged, sub1, sub0)
    # dl1 -> dl2 with the cached (meaningless) model tarball
    dl2_path = tmp_path / "DL2" / "dl2_LST-1.Run00202.h5"
    job(lstchain_env, "dl1_to_dl2.sh", merged, meaningless_models["models"], dl2_path, TRAIN_CONFIG)

    dl1, dl1b, both, dl2 = read(lstchain_env, (dl1a, PARAMS), (sub0, PARAMS), (merged, PARAMS), (dl2_path, DL2))
    n = dl1["rows"][PARAMS]
    assert n == 4 and dl1["rows"][IMAGES] == n and dl1["rows"][TRIGGER] == 1  # 1 shower, 4 LST images
    assert sorted(dl1["table"]["tel_id"]) == [1, 2, 3, 4] and set(dl1["table"]["mc_type"]) == {0}
    assert {"intensity", "width", "length", "x", "y"} <= set(dl1["columns"])

    assert dl1b["rows"][PARAMS] == n and dl1b["rows"][IMAGES] == n
    assert dl1b["table"]["event_id"] == dl1["table"]["event_id"]

    for key in (PARAMS, IMAGES, TRIGGER):  # the merge conserves events
        assert both["rows"][key] == 2 * dl1["rows"][key], key
    assert both["sources"] == [str(sub0), str(sub1)]  # the real inputs, in the tool's (name) order

    assert dl2["rows"][DL2] == 2 * n  # every image passes the (open) standard filters
    assert {"gammaness", "reco_energy", "reco_alt", "reco_az", "reco_disp_norm"} <= set(dl2["columns"])
    assert all(0 <= g <= 1 for g in dl2["table"]["gammaness"])
    assert all(e > 0 for e in dl2["table"]["reco_energy"])

    # outputs only: no temporary or working directories left beside them
    assert list(tmp_path.rglob(".*")) == []


def test_merge_refuses_what_lstchain_would_silently_leave_out(lstchain_env: Path, meaningless_models: dict[str, Path],
                                                              tmp_path: Path) -> None:
    # the gamma and proton files come from different arrays: lstchain_merge_hdf5_files drops
    # the second with a log line and exits 0; the wrapper fails and publishes nothing
    out = tmp_path / "run" / "dl1_LST-1.Run00001.h5"
    env = {**os.environ, "CTAOFLOW_LSTCHAIN_ENV": str(lstchain_env.parent)}
    done = subprocess.run(["bash", str(JOBS / "merge_run.sh"), str(out), str(meaningless_models["gamma"]),
                           str(meaningless_models["proton"])], env=env, check=False, capture_output=True, text=True)
    assert done.returncode == 1
    assert "left out 1 of 2 inputs" in done.stderr and str(meaningless_models["proton"]) in done.stderr
    assert not out.exists()
