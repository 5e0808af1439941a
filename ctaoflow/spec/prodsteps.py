"""CTADIRAC's production YAML (``ProdSteps`` + ``Common``) as a native spec.

A mapping with a top-level ``ProdSteps`` is a CTADIRAC file, as ``cta-prod-submit NAME
FILE`` reads it; ``convert`` turns it into the mapping a ctaoflow production YAML would
hold, named after the file's stem, and the normal validation runs on that. The rules
follow CTADIRAC 3.1.0 (``ProductionSystem/Client/WorkflowElement.py`` and the job
classes): steps sorted by ``ID``; a ``parentID`` child reads its parent's outputs
(``from:``) narrowed by its own keys; ``pointing_dir``, ``zenith_angle``, ``moon``,
``sct`` and ``div_ang`` translated to the catalog's ``phiP``, ``thetaP``, ``nsb``...;
outputs carry ``<category>_prog``, ``<category>_prog_version``, an integer
``data_level``, ``outputType`` and, after a merge, ``merged`` one higher than its input;
``group_size`` 10000 or more is every file, in one task at flush; ``dataset: NAME``
selects the files whose metadata says ``dataset: NAME``. A file that cannot mean
anything is an error at its line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ctaoflow.spec.messages import ErrorReport, describe, did_you_mean, short
from ctaoflow.spec.prodsteps_kinds import KINDS, UNSUPPORTED, Kind, literal
from ctaoflow.spec.prodsteps_simulation import build_simulation
from ctaoflow.spec.prodsteps_steps import (MANDATORY, Step, build_processing, text,
                                           valid_name)
from ctaoflow.spec.yamlio import Document, KeyPath

# CTADIRAC's job attributes before Common and job_config set them (CTAJob.__init__)
ATTRIBUTE_DEFAULTS = {"MCCampaign": "ProdTest", "configuration_id": 1, "version": "v0.10.0"}


@dataclass
class Converted:
    """A native spec, where its parts come from, and what was translated."""

    spec: dict[str, Any]
    origins: dict[KeyPath, KeyPath] = field(default_factory=dict)  # native -> ProdSteps
    notes: dict[KeyPath, list[str]] = field(default_factory=dict)  # () or a transformation


def is_prodsteps(data: Any) -> bool:
    return isinstance(data, dict) and "ProdSteps" in data


def convert(data: dict, stem: str, report: ErrorReport) -> Converted | None:
    """The native spec of a ProdSteps mapping; None after reporting its errors."""
    return _Converter(data, stem, report).run()


def converted_document(document: Document, converted: Converted) -> Document:
    """A document of the native spec whose positions are those of the ProdSteps file."""
    keys = {native: document.position(original)
            for native, original in converted.origins.items()}
    return Document(converted.spec, keys=keys)


class _Converter:
    def __init__(self, data: dict, stem: str, report: ErrorReport) -> None:
        self.data = data
        self.stem = stem
        self.report = report
        self.failed = False
        self.common: dict[str, Any] = {}
        self.names: dict[int, str] = {}  # step ID -> transformation name
        self.outputs: dict[int, dict[str, Any]] = {}  # step ID -> its output metadata
        self.result = Converted({})

    def error(self, path: KeyPath, message: str, of_key: bool = True) -> None:
        self.failed = True
        self.report.add(path, message, of_key)

    def run(self) -> Converted | None:
        self.read_common()
        steps = self.read_steps()
        if self.failed:
            return None
        spec = self.result.spec
        name = valid_name(self.stem)
        spec.update(production=name, description=f"CTADIRAC ProdSteps file {self.stem}, "
                    "imported", lfn_base=f"{literal(self.base_path)}/{{production}}",
                    tags=["ctadirac"], common={k: self.common[k] for k in MANDATORY[:2]},
                    transformations=[])
        self.result.origins.update({(): (), ("production",): ("ProdSteps",),
                                    ("common",): ("Common",),
                                    ("lfn_base",): ("Common", "base_path")})
        self.result.notes[()] = [
            f"named after the file, as 'cta-prod-submit {name} FILE' would name it",
            "Common: MCCampaign, configuration_id -> common; base_path -> lfn_base"]
        for step in steps:
            self.add(step)
        return None if self.failed else self.result

    def add(self, step: Step) -> None:
        """The transformation of ``step``, its origins and notes."""
        parent = step.query.get("parentID")
        built = (build_simulation(step, self.common) if step.kind.type == "mc_simulation"
                 else build_processing(step, self.common, parent and (
                     self.names[parent], self.outputs[parent])))
        for path, message, of_key in built.errors:
            self.error(step.path + path, message, of_key)
        i = len(self.result.spec["transformations"])
        base: KeyPath = ("transformations", i)
        self.result.spec["transformations"].append(built.transformation)
        self.names[step.id] = built.transformation["name"]
        self.outputs[step.id] = built.metadata
        self.result.notes[base] = built.notes
        self.result.origins.update({
            base: step.path, base + ("input",): step.path + ("input_meta_query",),
            base + ("job",): step.path + ("job_config",),
            base + ("outputs",): step.path + ("job_config",),
            base + ("grouping",): step.path + ("job_config", "group_size")})

    @property
    def base_path(self) -> str:
        return str(self.common["base_path"]).rstrip("/")

    def read_common(self) -> None:
        common = self.data.get("Common")
        if not isinstance(common, dict):
            self.error(("Common",), f"expected the 'Common:' mapping CTADIRAC reads for "
                                    f"every step, got {describe(common)}; write 'Common: "
                                    "{MCCampaign: PROD6, configuration_id: 15, base_path: "
                                    "/ctao/MC}'")
            return
        for key in MANDATORY:
            if key in common and common[key] is None:
                self.error(("Common", key), f"{key} is mandatory and empty; give it a value "
                                            "or remove the line")
        if common.get("base_path") is None:
            self.error(("Common",), "no base_path: CTADIRAC writes outputs under it; add "
                                    "'base_path: /ctao/MC'")
        self.common = {**ATTRIBUTE_DEFAULTS,
                       **{k: text(v) for k, v in common.items() if v is not None}}

    def read_steps(self) -> list[Step]:
        raw = self.data.get("ProdSteps")
        if not isinstance(raw, list) or not raw:
            self.error(("ProdSteps",), f"expected a list of steps, got {describe(raw)}; "
                                       "write '- ID: 1' items with input_meta_query and "
                                       "job_config")
            return []
        steps = [s for j, item in enumerate(raw) if (s := self.read_step(j, item))]
        seen: dict[int, Step] = {}
        for step in steps:
            if step.id in seen:
                line = self.report.document.position(seen[step.id].path + ("ID",))[0]
                self.error(step.path + ("ID",), f"duplicate step ID {step.id} (also at line "
                                                f"{line}); give each step its own ID", False)
            seen.setdefault(step.id, step)
        for step in steps:
            self.check_parent(step, seen)
        return sorted(seen.values(), key=lambda s: s.id)

    def read_step(self, j: int, item: Any) -> Step | None:
        path: KeyPath = ("ProdSteps", j)
        if not isinstance(item, dict):
            self.error(path, f"expected a step mapping, got {describe(item)}; write 'ID:', "
                             "'input_meta_query:' and 'job_config:' under '- '")
            return None
        step_id, query = item.get("ID"), item.get("input_meta_query") or {}
        job = item.get("job_config")
        if isinstance(step_id, bool) or not isinstance(step_id, int) or step_id < 1:
            self.error(path + ("ID",), f"a step ID is a whole number from 1, got "
                                       f"{describe(step_id)}; write e.g. 'ID: 1'")
        if not isinstance(query, dict):
            self.error(path + ("input_meta_query",), f"expected a mapping, got "
                       f"{describe(query)}; write 'parentID:', 'dataset:' or metadata keys")
        if not isinstance(job, dict):
            self.error(path + ("job_config",), f"expected a mapping with 'type:', got "
                                               f"{describe(job)}; write e.g. 'job_config: "
                                               "{type: Merging, version: v0.19.2}'")
            return None
        kind = self.kind(path, job.get("type"))
        for key in MANDATORY:
            if key in job and job[key] is None:
                self.error(path + ("job_config", key), f"{key} is mandatory and empty; give "
                                                       "it a value or remove the line")
        if kind is None or not isinstance(query, dict) or not isinstance(step_id, int) \
                or self.failed:
            return None
        return Step(j, step_id, kind, query,
                    {k: text(v) for k, v in job.items() if v is not None}, item.get("name"))

    def kind(self, path: KeyPath, written: Any) -> Kind | None:
        name = str(written).lower()
        if isinstance(written, str) and name in KINDS:
            return KINDS[name]
        where = path + ("job_config", "type")
        if name in UNSUPPORTED:
            self.error(where, f"{written} is not supported: {UNSUPPORTED[name]}; write the "
                              "simulation as a native mc_simulation transformation", False)
        elif written is None:
            self.error(path + ("job_config",), "no 'type:'; add e.g. 'type: Merging'")
        else:
            names = [k.name for k in KINDS.values()]
            hint = did_you_mean(str(written), names)
            self.error(where, f"unknown step type '{short(written)}'; "
                              f"{hint or 'write one of: ' + ', '.join(names)}", False)
        return None

    def check_parent(self, step: Step, steps: dict[int, Step]) -> None:
        parent = step.query.get("parentID")
        if parent is None:
            return
        where = step.path + ("input_meta_query", "parentID")
        if step.query.get("dataset") is not None:
            self.error(where, "a step reads from a dataset or from a parent, not both; "
                              "remove 'dataset' or 'parentID'")
        elif isinstance(parent, bool) or not isinstance(parent, int) or parent not in steps:
            known = ", ".join(str(i) for i in sorted(steps))
            self.error(where, f"no step has ID {short(parent)}; write the ID of an earlier "
                              f"step ({known})", False)
        elif parent >= step.id:
            self.error(where, f"step {step.id} cannot read from step {parent}: a parent's "
                              "ID must be lower than its child's", False)
