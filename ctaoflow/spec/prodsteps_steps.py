"""One CTADIRAC ProdStep as one ctaoflow transformation (the processing types; the
MC simulation is in ``prodsteps_simulation``).

CTADIRAC's order is kept: a step's job attributes come from its input query, then
``Common``, then ``job_config``; its input query is its parent's output query (or the
dataset) plus its own keys, translated; its output metadata is what
``CTAJob.set_output_metadata`` keeps, plus the per-file keys (nsb, div_ang, split).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

from ctaoflow.spec.messages import is_scalar, short
from ctaoflow.spec.prodsteps_kinds import (CVMFS, FILE_FIELDS, MODELS, MOON_NSB, Kind,
                                           command, literal)
from ctaoflow.spec.yamlio import KeyPath

MANDATORY = ("MCCampaign", "configuration_id", "version")  # may not be written empty
ALL_FILES = 10_000  # CTADIRAC's "every file": one task, emitted at flush
POINTING_PHI = {"North": 180, "South": 0}  # East and West set nothing in a query
IGNORED = {"catalogs": "ctaoflow registers outputs in its own catalog",
           "input_limit": "a CTADIRAC test mode", "tag": "a DIRAC job tag",
           "destination": "a DIRAC site (ctaoflow's sites are defaults.sites)"}
USED = {"type", "version", "options", "group_size", "output_extension", "data_level",
        "array_layout", "site", "particle", "sct", "div_ang", "split", "nsb", "merged",
        "view_cone", "MCCampaign", "configuration_id", "nb_processors", "cpu_time"}
KEPT = ("array_layout", "site", "particle", "phiP", "thetaP", "sct", "view_cone")


@dataclass
class Step:
    """One valid ProdStep, with its place in the file."""

    index: int
    id: int
    kind: Kind
    query: dict[str, Any]  # input_meta_query
    job: dict[str, Any]  # job_config without empty values
    title: Any = None  # the step's own 'name'

    @property
    def path(self) -> KeyPath:
        return ("ProdSteps", self.index)

    @property
    def name(self) -> str:
        """``merging_2``, or the step's own ``name`` made a valid one."""
        if self.title is not None:
            return valid_name(str(self.title))
        return f"{snake(self.kind.name)}_{self.id}"


@dataclass
class Built:
    """A step's transformation, its output metadata (CTADIRAC's Outputquery), what was
    translated, and its errors (path under the step, message, of_key)."""

    transformation: dict[str, Any]
    metadata: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    errors: list[tuple[KeyPath, str, bool]] = field(default_factory=list)

    def error(self, path: KeyPath, message: str, of_key: bool = False) -> None:
        self.errors.append((path, message, of_key))


def valid_name(stem: str) -> str:
    """A production or transformation name made of ``stem`` (``dl0_to_dl2_div0.0022`` ->
    ``dl0_to_dl2_div0_0022``): letters, digits, '_' and '-', starting with a letter."""
    name = re.sub(r"[^A-Za-z0-9_-]", "_", stem)
    return (name if name[:1].isalpha() else f"p_{name}")[:63]


def snake(name: str) -> str:
    """``CtapipeTrainEnergy`` -> ``ctapipe_train_energy``, ``MCSimulation`` ->
    ``mc_simulation``."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


def text(value: Any) -> Any:
    """A date (YAML reads ``2022-08-03`` as one) as the text CTADIRAC's ``str`` gives."""
    return value.isoformat() if isinstance(value, dt.date) else value


def equal_value(value: Any) -> Any:
    """``{'=': v}`` -> ``v``, as CTADIRAC reads a query value into a job attribute."""
    return value["="] if isinstance(value, dict) and "=" in value else value


def attributes(kind: Kind, query: dict[str, Any], common: dict[str, Any],
               job: dict[str, Any]) -> dict[str, Any]:
    """The job attributes that reach the output metadata: query, Common, job_config."""
    found = {"data_level": kind.data_level}
    for source in (query, common, job):
        for key in ("MCCampaign", "configuration_id", "version", "data_level"):
            if key in source and is_scalar(equal_value(source[key])):
                found[key] = text(equal_value(source[key]))
    return found


def grouping(job: dict[str, Any], built: Built) -> dict[str, Any] | None:
    size = job.get("group_size")
    if size is None:
        return None
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        built.error(("job_config", "group_size"), f"expected a whole number of files per "
                    f"job, got '{short(size)}'; write e.g. 5 ({ALL_FILES}: every file in "
                    "one job, at flush)")
        return None
    if size >= ALL_FILES:
        built.notes.append(f"group_size {size} -> plugin all: every file in one task, "
                           "at flush")
        return {"plugin": "all"}
    return {"plugin": "standard", "group_size": size}


def translated_query(query: dict[str, Any], built: Built) -> dict[str, Any]:
    """The step's own input keys in catalog terms (``set_constrained_input_query``)."""
    own: dict[str, Any] = {}
    for key, value in query.items():
        if value is None or key in ("parentID", "dataset"):
            continue
        if key == "pointing_dir":
            if value in POINTING_PHI:
                own["phiP"] = POINTING_PHI[value]
            built.notes.append(f"pointing_dir {value} -> " + (
                f"phiP {POINTING_PHI[value]}" if value in POINTING_PHI
                else "no condition (CTADIRAC translates only North and South)"))
        elif key == "zenith_angle":
            try:
                own["thetaP"] = float(value)
            except (TypeError, ValueError):
                built.error(("input_meta_query", key), f"'{short(value)}' is not an angle; "
                            "write the zenith angle in degrees, e.g. 20")
                continue
            built.notes.append(f"zenith_angle {value} -> thetaP {own['thetaP']}")
        elif key == "moon":
            if value not in MOON_NSB:
                built.error(("input_meta_query", key), f"'{short(value)}' is not a moon "
                            "condition here; write one of: dark, half, full")
                continue
            own["nsb"] = MOON_NSB[value]
            built.notes.append(f"moon {value} -> nsb {own['nsb']}")
        elif key in ("sct", "div_ang"):
            own[key] = str(value)
        else:
            own[key] = text(value)
    return own


def file_metadata(kind: Kind, query: dict[str, Any], job: dict[str, Any]) -> dict[str, Any]:
    """The per-file keys: from the input query, then job_config (CTADIRAC's order)."""
    keys = FILE_FIELDS + (("split",) if kind.split else ())
    found: dict[str, Any] = {}
    for source in (query, job):
        for key in keys:
            if key in source:
                found[key] = equal_value(source[key])
    return {k: ({"in": v} if len(v) > 1 else v[0]) if isinstance(v, list) else v
            for k, v in found.items()}


def merged_level(step: Step, query: dict[str, Any], parent: dict[str, Any] | None,
                 built: Built) -> int:
    """The input's ``merged``: the parent's, else the query's or job_config's, else 0."""
    if parent is not None:
        level = parent.get("merged", 0)
    else:
        level = equal_value(step.job.get("merged", query.get("merged", 0)))
    if isinstance(level, bool) or not isinstance(level, int):
        built.error(("input_meta_query", "merged"), f"a Merging step needs one merged "
                    f"level as input, got '{short(level)}'; write e.g. 'merged: 0'")
        return 0
    return level


def build_processing(step: Step, common: dict[str, Any],
                     parent: tuple[str, dict[str, Any]] | None) -> Built:
    """The transformation of a processing ``step``; ``parent``: its parent's name and
    output metadata."""
    kind, job = step.kind, step.job
    built = Built({}, {}, [f"ProdStep ID {step.id} ({kind.name}) -> type {kind.type}"])
    if "input_sandbox" in job:  # cta-prod-submit's production mode refuses it too
        built.error(("job_config", "input_sandbox"), "an input sandbox is for single DIRAC "
                    "jobs, not productions; remove it (ship files with the software)", True)
    for key in kind.mandatory:
        if key not in job:
            example = "data_level: 2" if key == "data_level" else "output_extension: DL2.h5"
            built.error(("job_config",), f"{key} is mandatory for a {kind.name} step; add "
                        f"'{key}:' (e.g. {example})", True)
    written_input, query = _input(step, parent, built)
    attrs = attributes(kind, query, common, job)
    metadata = _output_metadata(step, query, attrs, parent and parent[1], built)
    version = str(attrs["version"])
    job_spec = _job(kind, job, metadata, version, built)
    transformation: dict[str, Any] = {
        "name": step.name, "type": kind.type,
        "description": f"ProdStep ID {step.id}: {kind.name}", "input": written_input}
    if (group := grouping(job, built)) is not None:
        transformation["grouping"] = group
    extension = literal(str(job.get("output_extension", kind.extension)))
    inherited = {k: equal_value(v) for k, v in query.items()}
    transformation.update(job=job_spec, outputs=[{
        "name": f"{{transformation}}_{{task:06d}}.{extension}",
        "metadata": {k: v for k, v in metadata.items() if is_scalar(v)
                     and inherited.get(k) != v and not is_common(k, v, common)}}])
    _note_unused(kind, job, built)
    built.transformation, built.metadata = transformation, metadata
    return built


def _note_unused(kind: Kind, job: dict[str, Any], built: Built) -> None:
    ignored = [key for key in job if key not in USED
               and not (key == "moon" and kind.name == "SimTelProcessing")]
    if ignored:
        built.notes.append(f"{', '.join(ignored)}: not used by ctaoflow ("
                           + "; ".join(IGNORED.get(k, "a CTADIRAC job attribute")
                                       for k in ignored) + ")")


def _input(step: Step, parent: tuple[str, dict[str, Any]] | None, built: Built
           ) -> tuple[dict[str, Any], dict[str, Any]]:
    """The transformation's ``input`` and CTADIRAC's Inputquery: the parent's output
    metadata (or the dataset) plus the step's own translated keys."""
    own = translated_query(step.query, built)
    origin: dict[str, Any] = {}
    written: dict[str, Any] = {}
    if parent is not None:
        written, origin = {"from": parent[0]}, parent[1]
        built.notes.append(f"parentID {step.query['parentID']} -> from: {parent[0]} "
                           "(its outputs, narrowed by this step's own keys)")
    elif step.query.get("dataset") is not None:
        own["dataset"] = text(step.query["dataset"])
        built.notes.append(f"dataset {own['dataset']} -> query dataset: {own['dataset']}")
    elif not own:
        built.error(("input_meta_query",), "selects no input: add 'parentID', 'dataset' "
                    "or metadata keys (CTADIRAC would read the whole catalog)", True)
    if own:
        written["query"] = own
    return written, {**origin, **own}


def _job(kind: Kind, job: dict[str, Any], metadata: dict[str, Any], version: str,
         built: Built) -> dict[str, Any]:
    """The job: the command with the options, the software, the models to read."""
    models = {word: MODELS[word] for word in str(job.get("options", "")).split()
              if word in MODELS and kind.name == "CtapipeApplyModels"}
    spec: dict[str, Any] = {
        "command": command(kind, str(job.get("options", "")),
                           {word: placeholder for word, (placeholder, _) in models.items()}),
        "environment": {"cvmfs": CVMFS.format(package=kind.package, version=literal(version))}}
    if models:
        spec["side_inputs"] = {placeholder: _model_query(metadata, program)
                               for placeholder, program in models.values()}
        built.notes.append("model files of options -> side inputs found by metadata query "
                           "(outputType Model), as CTADIRAC downloads them")
    if resources := _resources(kind, job):
        spec["resources"] = resources
    built.notes.append(f"version {version} -> CVMFS software path; options -> command")
    return spec


def _output_metadata(step: Step, query: dict[str, Any], attrs: dict[str, Any],
                     parent: dict[str, Any] | None, built: Built) -> dict[str, Any]:
    """CTADIRAC's Outputquery of a processing step (``build_job_output_data``)."""
    kind, job = step.kind, step.job
    source = {**query, **job}
    metadata = {key: equal_value(source[key]) for key in KEPT if key in source}
    if "sct" in metadata:
        metadata["sct"] = str(metadata["sct"])
    metadata.update({f"{kind.category}_prog": kind.program,
                     f"{kind.category}_prog_version": str(attrs["version"]),
                     "data_level": attrs["data_level"], "outputType": kind.output_type,
                     "configuration_id": attrs["configuration_id"],
                     "MCCampaign": attrs["MCCampaign"]})
    if kind.name == "Merging":
        level = merged_level(step, query, parent, built)
        metadata["merged"] = level + 1
        built.notes.append(f"merged {level} -> {level + 1} (one more merge stage)")
    elif kind.name == "EvnDispProcessing":  # EvnDispJob.set_output_metadata
        metadata["merged"] = 0
    metadata.update(file_metadata(kind, query, job))
    if kind.name == "SimTelProcessing" and "moon" in job:  # MCSimTelProcessJob.set_moon
        if job["moon"] in MOON_NSB:
            metadata["nsb"] = MOON_NSB[job["moon"]]
        else:
            built.error(("job_config", "moon"), f"'{short(job['moon'])}' is not one moon "
                        "condition; a sim_telarray processing writes one: dark, half or full")
    return metadata


def is_common(key: str, value: Any, common: dict[str, Any]) -> bool:
    """Whether the production's ``common`` gives every output ``key: value`` already."""
    return key in MANDATORY[:2] and common.get(key) == value


def _model_query(metadata: dict[str, Any], program: str) -> dict[str, Any]:
    """The query of a model an apply step downloads (``run_ctapipe_apply_models``)."""
    query = {k: v for k, v in metadata.items() if k not in ("particle", "split")}
    return {**query, "outputType": "Model", "analysis_prog": program}


def _resources(kind: Kind, job: dict[str, Any]) -> dict[str, Any]:
    resources: dict[str, Any] = {}
    cores = job.get("nb_processors", kind.cores)
    if isinstance(cores, int) and not isinstance(cores, bool) and cores >= 1:
        resources["cores"] = cores
    seconds = job.get("cpu_time")
    if isinstance(seconds, int) and not isinstance(seconds, bool) and seconds >= 1:
        resources["walltime"] = seconds
    return resources
