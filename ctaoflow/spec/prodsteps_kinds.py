"""CTADIRAC's job types (``job_config.type``) as ctaoflow transformations.

What each type is comes from CTADIRAC 3.1.0's job classes (``Interfaces/API``): the
program recorded as ``<category>_prog``, the default integer ``data_level``, whether
the output is ``Data`` or a ``Model``, which keys are per-file metadata, which
``job_config`` keys are mandatory. The commands run the same programs as CTADIRAC's
wrappers, as ctaoflow argument vectors (``{inputs}``, ``{input}``, ``{output}``).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

# CTADIRAC's DATA_LEVEL_METADATA_ID
DATA_LEVELS = {"MC0": -3, "R0": -2, "R1": -1, "DL0": 0, "DL1": 1, "DL2": 2, "DL3": 3}
FILE_FIELDS = ("nsb", "div_ang")  # metadata set on the files, not the directory
MOON_NSB = {"dark": 1, "half": 5, "full": 19}
MOON_FILES = {1: "dark", 5: "moon", 19: "fullmoon"}  # sim_telarray's file name parts
MOON_SETS = (["dark"], ["dark", "half"], ["dark", "half", "full"])
MOON_FLAGS = {1: "", 2: "--with-half-moon", 3: "--with-full-moon"}
DIVERGENCE_SETS = (["0.0022", "0.0043", "0.008", "0.01135", "0.01453"], ["0.0121", "0.046"])
PARTICLES = ("gamma", "gamma-diffuse", "electron", "proton", "helium", "muon")
POINTINGS = ("North", "South", "East", "West")
CVMFS = "/cvmfs/ctao.dpps.cta-observatory.org/software/{package}/{version}"


@dataclass(frozen=True)
class Kind:
    """One CTADIRAC job type."""

    name: str  # CTADIRAC's spelling
    type: str  # ctaoflow's transformation type
    package: str
    program: str
    category: str = "analysis"
    data_level: int = 2
    output_type: str = "Data"
    extension: str | None = None  # the default output_extension
    split: bool = False  # 'split' is per-file metadata too
    mandatory: tuple[str, ...] = ()
    cores: int | None = None


KINDS = {kind.name.lower(): kind for kind in (
    Kind("MCSimulation", "mc_simulation", "corsika_simtelarray", "sim_telarray", "tel_sim",
         DATA_LEVELS["R1"]),
    Kind("SimTelProcessing", "processing", "corsika_simtelarray", "sim_telarray", "tel_sim",
         DATA_LEVELS["R1"], extension="simtel.zst"),
    Kind("CtapipeProcessing", "processing", "ctapipe", "ctapipe-process", split=True,
         mandatory=("data_level", "output_extension")),
    Kind("EvnDispProcessing", "processing", "evndisplay", "evndisp", data_level=1,
         extension="simtel.DL1.tar.gz"),
    Kind("Merging", "merging", "ctapipe", "ctapipe-merge", extension="merged.DL2.h5",
         split=True, mandatory=("output_extension",)),
    Kind("CtapipeTrainEnergy", "training", "ctapipe", "ctapipe-train-energy-regressor",
         output_type="Model", extension="energy_model.pkl", cores=8),
    Kind("CtapipeTrainClassifier", "training", "ctapipe",
         "ctapipe-train-particle-classifier", output_type="Model",
         extension="classifier_model.pkl", cores=8),
    Kind("CtapipeApplyModels", "apply_models", "ctapipe", "ctapipe-apply-models",
         extension="DL2.h5", split=True),
)}
UNSUPPORTED = {"simpipe": "SimPipe reads its settings from a separate simpipe_config file "
                          "that the ProdSteps file does not carry"}
# the model files apply-models options name, and the programs that train them
MODELS = {"energy_model.pkl": ("energy_model", "ctapipe-train-energy-regressor"),
          "classifier_model.pkl": ("classifier_model", "ctapipe-train-particle-classifier")}


def literal(text: str) -> str:
    """``text`` with braces doubled, so no placeholder is read in it."""
    return text.replace("{", "{{").replace("}", "}}")


def command(kind: Kind, options: str, models: dict[str, str]) -> list[str]:
    """The argument vector of a processing kind's job; ``models`` maps a model file
    name of ``options`` to its side-input placeholder."""
    words = [f"{{{models[w]}}}" if w in models else literal(w) for w in shlex.split(options)]
    text = "".join(f" {shlex.quote(w)}" for w in words)
    name = kind.name
    if name == "CtapipeProcessing":  # one ctapipe-process per input, merged into {output}
        script = ("set -e; rm -rf per_file; mkdir per_file; for f in \"$@\"; do "
                  "ctapipe-process --input \"$f\" --output \"per_file/$(basename \"$f\").h5\""
                  f"{text} --overwrite; done; ctapipe-merge --output \"{{output}}\" "
                  "--overwrite per_file/*.h5")
        return ["bash", "-c", script, "ctapipe-process", "{inputs}"]
    if name == "Merging":
        return ["ctapipe-merge", "--output", "{output}", "--overwrite", *words, "{inputs}"]
    if name == "CtapipeTrainEnergy":
        return [kind.program, "--input", "{input}", "--output", "{output}", *words,
                "--overwrite"]
    if name == "CtapipeTrainClassifier":  # signal: the gamma file, background: the proton
        script = ("set -e; for f in \"$@\"; do case \"$f\" in *gamma*) s=\"$f\";; *proton*) "
                  "b=\"$f\";; esac; done; ctapipe-train-particle-classifier --signal \"$s\" "
                  f"--background \"$b\" --output \"{{output}}\"{text} --overwrite")
        return ["bash", "-c", script, kind.program, "{inputs}"]
    if name == "CtapipeApplyModels":
        return [kind.program, "--input", "{input}", "--output", "{output}", *words,
                "--overwrite"]
    wrapper = {"SimTelProcessing": "dirac_sim_telarray_process",
               "EvnDispProcessing": "dirac_evndisp_wrapper"}[name]
    return [wrapper, *words, "--output", "{output}", "{inputs}"]


def simulation_script(arguments_text: str, outputs: dict[str, str]) -> str:
    """CTADIRAC's ``dirac_prod_run``, then each file moved to its output (``outputs``:
    output key -> the glob of CTADIRAC's data_output_pattern)."""
    moves = "".join(f"; mv {pattern} \"{{{key}}}\"" for key, pattern in outputs.items())
    return f"set -e; dirac_prod_run {arguments_text}{moves}"
