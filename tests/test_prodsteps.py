"""CTADIRAC's ProdSteps files, accepted as production YAML: each translation rule on a
small file of tests/data/prodsteps/, the located errors, ``ctaoflow import``, and every
production file of the ctadirac 3.1.0 wheel."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from ctaoflow import cli
from ctaoflow.spec.cache import load_production as cached_load
from ctaoflow.spec.chaining import StaticMetadata, input_query
from ctaoflow.spec.model import Production
from ctaoflow.spec.prodsteps_yaml import import_prodsteps
from ctaoflow.spec.validation import SpecError, load_production, validate_files

DATA = Path(__file__).parent / "data" / "prodsteps"
PROJECT = Path(__file__).parents[1]
CTADIRAC = "ctadirac==3.1.0"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "ctaoflow-tests"
# CTADIRAC 3.1.0 itself refuses this one: its CtapipeProcessing step has no data_level
# and its Merging step no output_extension (build_job_attributes_from_job_config exits
# with "data_level is mandatory")
REFUSED = {"processing_config_from_meta_query.yml": [
    ":17:5: ProdSteps.0.job_config: data_level is mandatory for a CtapipeProcessing step",
    ":28:5: ProdSteps.1.job_config: output_extension is mandatory for a Merging step"]}


def outputs_of(production: Production, name: str) -> dict:
    """The metadata every output of transformation ``name`` is known to carry."""
    t = production.transformation(name)
    return StaticMetadata(production).output(t, t.outputs[0])


def errors_of(tmp_path: Path, text: str, name: str = "prod.yml") -> list[str]:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(SpecError) as caught:
        load_production(path)
    return caught.value.errors


COMMON = "Common: {MCCampaign: PROD6, configuration_id: 15, base_path: /ctao/MC}\n"


def step(ID: int, query: str, job: str) -> str:
    return f"  - ID: {ID}\n    input_meta_query: {query}\n    job_config: {job}\n"


MERGE = "{type: Merging, version: v1, output_extension: m.h5}"


# -- translation rules ------------------------------------------------------------------

def test_the_production_is_named_after_the_file_stem(tmp_path: Path) -> None:
    path = tmp_path / "merge_div0.0022.yml"
    shutil.copy(DATA / "translated.yml", path)
    assert load_production(path).production == "merge_div0_0022"
    assert load_production(DATA / "chain.yml").production == "chain"


def test_parent_id_reads_the_parents_outputs_narrowed_by_its_own_keys() -> None:
    production = load_production(DATA / "chain.yml")
    merge = production.transformation("merging_2")
    assert merge.input.from_ == ["ctapipe_processing_1"]
    assert merge.input.query == {"split": "test"}
    assert input_query(production, merge).equalities() == {
        "split": "test", "production": "chain", "transformation": "ctapipe_processing_1"}
    assert production.transformation("merging_3").input.from_ == ["merging_2"]


def test_common_gives_every_output_campaign_and_configuration_and_the_lfn_base() -> None:
    production = load_production(DATA / "chain.yml")
    assert production.common == {"MCCampaign": "PROD5", "configuration_id": 8}
    assert production.output_base == "/ctao/MC/chain"
    assert outputs_of(production, "merging_3")["MCCampaign"] == "PROD5"


def test_a_dataset_is_a_query_on_the_dataset_key() -> None:
    production = load_production(DATA / "chain.yml")
    assert production.transformation("ctapipe_processing_1").input.query == {
        "dataset": "Prod5_Paranal_Alpha_gamma_North_20deg_DL0"}


def test_outputs_carry_program_version_integer_data_level_and_output_type() -> None:
    production = load_production(DATA / "chain.yml")
    processed = outputs_of(production, "ctapipe_processing_1")
    assert {k: processed[k] for k in ("analysis_prog", "analysis_prog_version", "data_level",
                                      "outputType", "array_layout")} == {
        "analysis_prog": "ctapipe-process", "analysis_prog_version": "v0.19.2",
        "data_level": 2, "outputType": "Data", "array_layout": "Alpha"}
    assert outputs_of(production, "merging_2")["analysis_prog"] == "ctapipe-merge"


def test_merged_grows_by_one_at_each_merge_stage() -> None:
    production = load_production(DATA / "chain.yml")
    assert "merged" not in outputs_of(production, "ctapipe_processing_1")
    assert outputs_of(production, "merging_2")["merged"] == 1
    assert outputs_of(production, "merging_3")["merged"] == 2
    alone = load_production(DATA / "translated.yml")  # from its query's merged: 1
    assert outputs_of(alone, "merge_proton_40deg")["merged"] == 2


def test_group_size_10000_is_every_file_at_flush_and_others_are_standard() -> None:
    production = load_production(DATA / "chain.yml")
    assert production.transformation("merging_3").grouping.plugin == "all"
    merge = production.transformation("merging_2").grouping
    assert (merge.plugin, merge.group_size) == ("standard", 50)


def test_options_and_output_extension_make_the_command_and_output_name() -> None:
    merge = load_production(DATA / "chain.yml").transformation("merging_3")
    assert merge.job.command == ["ctapipe-merge", "--output", "{output}", "--overwrite",
                                 "--no-dl1-images", "--no-true-images", "{inputs}"]
    assert merge.outputs[0].name == "{transformation}_{task:06d}.alpha_test_merged.DL2.h5"
    assert merge.job.environment.cvmfs.endswith("/ctapipe/v0.19.2")


def test_a_step_is_named_by_its_name_or_type_and_id() -> None:
    assert [t.name for t in load_production(DATA / "chain.yml").transformations] == [
        "ctapipe_processing_1", "merging_2", "merging_3"]
    named = load_production(DATA / "translated.yml").transformations[0]
    assert named.name == "merge_proton_40deg"  # from 'name: merge proton 40deg'


def test_pointing_zenith_moon_sct_and_divergence_are_translated() -> None:
    merge = load_production(DATA / "translated.yml").transformation("merge_proton_40deg")
    assert merge.input.query == {
        "MCCampaign": "PROD6", "particle": "proton", "phiP": 180, "thetaP": 40.0, "nsb": 5,
        "sct": "False", "div_ang": "0.008", "analysis_prog": "ctapipe-merge", "merged": 1}


def test_training_writes_a_model_on_eight_cores() -> None:
    production = load_production(DATA / "models.yml")
    train = production.transformation("ctapipe_train_energy_1")
    assert train.type == "training" and train.job.resources.cores == 8
    model = outputs_of(production, "ctapipe_train_energy_1")
    assert (model["outputType"], model["analysis_prog"], model["nsb"]) == (
        "Model", "ctapipe-train-energy-regressor", 1)


def test_apply_models_finds_its_models_by_metadata_as_ctadirac_downloads_them() -> None:
    apply = load_production(DATA / "models.yml").transformation("ctapipe_apply_models_2")
    assert apply.job.command[-5:] == ["--reconstructor", "{energy_model}", "--reconstructor",
                                      "{classifier_model}", "--overwrite"]
    energy, classifier = (apply.job.side_inputs[k] for k in ("energy_model",
                                                             "classifier_model"))
    assert energy["analysis_prog"] == "ctapipe-train-energy-regressor"
    assert classifier["analysis_prog"] == "ctapipe-train-particle-classifier"
    assert energy["outputType"] == "Model" and energy["nsb"] == 1
    assert "particle" not in energy and "split" not in energy


def test_the_simulation_has_one_output_per_nsb_and_divergence() -> None:
    production = load_production(DATA / "simulation.yml")
    simulation = production.transformation("mc_simulation_1")
    assert simulation.type == "mc_simulation" and simulation.runs.count == 1
    pairs = {(o.metadata["nsb"], o.metadata["div_ang"]) for o in simulation.outputs}
    assert pairs == {(n, d) for n in (1, 5, 19) for d in ("0.0121", "0.046")}
    first = simulation.outputs[0].metadata
    assert (first["phiP"], first["thetaP"], first["tel_sim_prog_version"],
            first["data_level"]) == (0, 40.0, "2024-02-01", -1)
    script = simulation.job.command[2]
    assert "--with-full-moon --divergent LaPalma proton South 40" in script
    assert 'mv Data/*-div0.046*-fullmoon*.simtel.zst "{fullmoon_div0_046}"' in script
    assert simulation.job.env == {"NSHOW": "50"}
    child = production.transformation("ctapipe_processing_2")
    assert (child.input.from_, child.input.query) == (["mc_simulation_1"], {"nsb": 19})


def test_evndisp_and_sim_telarray_processing_keep_their_programs_and_levels(
        tmp_path: Path) -> None:
    path = tmp_path / "prod.yml"
    path.write_text("ProdSteps:\n" + step(1, "{dataset: D}", "{type: EvnDispProcessing, "
                                           "version: v06, group_size: 5}")
                    + step(2, "{dataset: E}", "{type: SimTelProcessing, version: v1, "
                                              "moon: full}") + COMMON)
    production = load_production(path)
    evndisp = outputs_of(production, "evn_disp_processing_1")
    assert (evndisp["analysis_prog"], evndisp["data_level"], evndisp["merged"]) == (
        "evndisp", 1, 0)
    simtel = outputs_of(production, "sim_tel_processing_2")
    assert (simtel["tel_sim_prog"], simtel["data_level"], simtel["nsb"]) == (
        "sim_telarray", -1, 19)


# -- errors: one located line each, with the fix ---------------------------------------

@pytest.mark.parametrize("steps, common, expected", [
    (step(1, "{parentID: 2}", MERGE) + step(2, "{merged: 0}", MERGE), COMMON,
     ":3:34: ProdSteps.0.input_meta_query.parentID: step 1 cannot read from step 2"),
    (step(1, "{merged: 0}", MERGE) + step(2, "{parentID: 7}", MERGE), COMMON,
     "ProdSteps.1.input_meta_query.parentID: no step has ID 7; write the ID of an earlier"),
    (step(1, "{merged: 0}", MERGE) + step(2, "{parentID: 1, dataset: D}", MERGE), COMMON,
     "reads from a dataset or from a parent, not both"),
    (step(1, "{merged: 0}", MERGE) + step(1, "{merged: 1}", MERGE), COMMON,
     ":5:9: ProdSteps.1.ID: duplicate step ID 1 (also at line 2)"),
    (step(1, "{merged: 0}", "{type: Mergeing, version: v1}"), COMMON,
     "unknown step type 'Mergeing'; did you mean 'Merging'?"),
    (step(1, "{}", "{type: SimPipe, version: v1, simpipe_config: c.yml}"), COMMON,
     "SimPipe is not supported"),
    (step(1, "{merged: 0}", MERGE), "Common: {MCCampaign: PROD6}\n",
     "Common: no base_path: CTADIRAC writes outputs under it; add 'base_path: /ctao/MC'"),
    (step(1, "{merged: 0}", MERGE), "Common: {MCCampaign: , base_path: /b}\n",
     "Common.MCCampaign: MCCampaign is mandatory and empty"),
    (step(1, "{dataset: D}", "{type: CtapipeProcessing, version: v1, output_extension: x}"),
     COMMON, "data_level is mandatory for a CtapipeProcessing step; add 'data_level:'"),
    (step(1, "{merged: 0}", "{type: Merging, output_extension: m, group_size: 0}"), COMMON,
     "group_size: expected a whole number of files per job, got '0'"),
    (step(1, "{parentID: }", MERGE), COMMON,
     "ProdSteps.0.input_meta_query: selects no input: add 'parentID', 'dataset' or metadata"),
    (step(1, "{merged: 0, moon: new}", MERGE), COMMON,
     "'new' is not a moon condition here; write one of: dark, half, full"),
    (step(1, "{}", "{type: MCSimulation, version: v1, particle: photon, site: Paranal, "
                   "pointing_dir: North, n_shower: 10, moon: dark}"), COMMON,
     "ProdSteps.0.job_config.particle: particle must be one of: gamma, gamma-diffuse"),
    (step(1, "{}", "{type: MCSimulation, version: v1, particle: gamma, site: Paranal, "
                   "pointing_dir: North, n_shower: 10, moon: 'half, dark'}"), COMMON,
     "moon must be one of: dark; dark, half; dark, half, full"),
    ("  - just text\n", COMMON, "ProdSteps.0: expected a step mapping, got the text"),
    (step(1, "{dataset: D}", "{type: SimTelProcessing, version: v1, moon: 'dark, half'}"),
     COMMON, "ProdSteps.0.job_config.moon: 'dark, half' is not one moon condition"),
    (step(1, "{merged: 0}", "{type: Merging, output_extension: m, input_sandbox: a.sh}"),
     COMMON, "ProdSteps.0.job_config.input_sandbox: an input sandbox is for single DIRAC"),
])
def test_a_meaningless_file_is_one_located_line(tmp_path: Path, steps: str, common: str,
                                               expected: str) -> None:
    errors = errors_of(tmp_path, "ProdSteps:\n" + steps + common)
    assert any(expected in line for line in errors), errors
    assert all(line.startswith(str(tmp_path / "prod.yml") + ":") and "\n" not in line
               for line in errors)


def test_validation_after_conversion_points_at_the_step(tmp_path: Path) -> None:
    """A rule of the native spec (here: the parent's outputs never match) still names
    the line of the ProdStep it comes from."""
    text = "ProdSteps:\n" + step(1, "{merged: 0}", MERGE) + step(
        2, "{parentID: 1, merged: 0}", MERGE) + COMMON
    (line,) = errors_of(tmp_path, text)
    assert line.startswith(f"{tmp_path / 'prod.yml'}:6:") and "never matches" in line


# -- every entry point ---------------------------------------------------------------------

def test_validate_graph_and_import_on_the_command_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def run(*argv: str) -> int:
        with pytest.raises(SystemExit) as done:
            cli.main(list(argv))
        return done.value.code

    assert run("validate", str(DATA / "chain.yml")) == 0
    assert run("graph", str(DATA / "chain.yml")) == 0
    assert "merging_3" in capsys.readouterr().out
    out = tmp_path / "chain.yaml"
    assert run("import", str(DATA / "chain.yml"), "-o", str(out)) == 0
    written = out.read_text()
    assert "  # ProdStep ID 3 (Merging) -> type merging" in written
    assert "  # group_size 10000 -> plugin all: every file in one task, at flush" in written
    assert "  # parentID 2 -> from: merging_2" in written
    assert load_production(out) == load_production(DATA / "chain.yml")
    assert run("import", str(out)) == 1  # a native spec has nothing to import
    assert "not a CTADIRAC file (no top-level 'ProdSteps:')" in capsys.readouterr().err


def test_import_refuses_a_broken_file_with_its_located_errors(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "broken.yml"
    path.write_text("ProdSteps:\n" + step(1, "{parentID: 3}", MERGE) + COMMON)
    with pytest.raises(SystemExit) as done:
        cli.main(["import", str(path)])
    assert done.value.code == 1
    assert f"{path}:3:34: ProdSteps.0.input_meta_query.parentID" in capsys.readouterr().err


def test_the_spec_cache_names_each_file_after_its_own_stem(
        home: Path, tmp_path: Path) -> None:
    for name in ("az000", "az180"):
        shutil.copy(DATA / "translated.yml", tmp_path / f"{name}.yml")
    names = [cached_load(tmp_path / f"{n}.yml").production for n in ("az000", "az180")]
    assert names == ["az000", "az180"]


def test_a_prodsteps_file_in_the_productions_folder_is_a_dag(
        airflow_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.dag_processing.dagbag import DagBag

    folder = tmp_path / "productions"
    folder.mkdir()
    shutil.copy(DATA / "chain.yml", folder / "chain.yml")
    monkeypatch.setenv("CTAOFLOW_PRODUCTIONS", str(folder))
    bag = DagBag(dag_folder=str(PROJECT / "dags"))
    assert not bag.import_errors
    assert {"merging_2", "merging_3"} <= {t.task_group.group_id for t in
                                         bag.dags["chain"].tasks if t.task_group}


# -- the real files ------------------------------------------------------------------

def _pip() -> list[str] | None:
    for python in (sys.executable, shutil.which("python3")):
        if python and subprocess.run([python, "-m", "pip", "--version"],
                                     capture_output=True, check=False).returncode == 0:
            return [python, "-m", "pip"]
    return None


@pytest.fixture(scope="session")
def ctadirac_configs() -> Path:
    """CTADIRAC's ProductionSystem/config of the ctadirac 3.1.0 wheel, downloaded once
    into the cache folder."""
    folder = CACHE / "ctadirac-3.1.0"
    configs = folder / "CTADIRAC" / "ProductionSystem" / "config"
    if not configs.is_dir():
        pip = _pip()
        if pip is None:
            pytest.skip("no pip to download ctadirac 3.1.0 with")
        wheels = folder / "wheel"
        done = subprocess.run([*pip, "download", "--no-deps", "-q", CTADIRAC, "-d",
                               str(wheels)], capture_output=True, text=True, timeout=300,
                              check=False)
        if done.returncode:
            pytest.skip(f"the package index cannot be reached: {done.stderr.strip()[-200:]}")
        with zipfile.ZipFile(next(wheels.glob("ctadirac-3.1.0-*.whl"))) as wheel:
            wheel.extractall(folder, [n for n in wheel.namelist()
                                      if n.startswith("CTADIRAC/ProductionSystem/config/")])
    return configs


def test_every_production_file_of_ctadirac_imports_and_validates(
        ctadirac_configs: Path, tmp_path: Path) -> None:
    files = sorted(ctadirac_configs.rglob("*.yml"))
    assert len(files) >= 50
    for path in files:
        if path.name in REFUSED:
            errors = validate_files([path])
            assert len(errors) == len(REFUSED[path.name]), errors
            assert all(line.startswith(f"{path}{expected}")
                       for line, expected in zip(errors, REFUSED[path.name])), errors
            continue
        production = load_production(path)
        imported = tmp_path / f"{path.stem}.yaml"
        imported.write_text(import_prodsteps(path))
        assert load_production(imported) == production, path
