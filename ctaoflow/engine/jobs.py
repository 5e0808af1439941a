"""From a task to a batch job: placeholders, output names and their metadata."""

from __future__ import annotations

import os
import string
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from ctaoflow.backends.base import JobSpec
from ctaoflow.catalog.base import OutputFile
from ctaoflow.spec.chaining import PROVENANCE_KEY, output_metadata
from ctaoflow.spec.model import Output, Production, Transformation
from ctaoflow.spec.placeholders import MAX_ARGUMENT_BYTES, MAX_NAME_BYTES, input_stem


@dataclass(frozen=True)
class TaskInputs:
    """What a task reads: its files (LFN -> metadata) and its side inputs (name -> LFNs)."""

    index: int
    files: Mapping[str, Mapping[str, Any]]
    run: int | None = None
    group: str | None = None


def job_name(production: Production, uid: str, transformation: Transformation, task: int,
             attempt: int) -> str:
    """Deterministic: a retried submission of the same attempt has the same name.

    ``uid`` is drawn once per production in a ledger, so two ledgers sharing a batch
    system (a test and a deployment, say) never take each other's jobs for their own.
    """
    return f"{production.production}-{uid}.{transformation.name}.{task:06d}.{attempt}"


def planned_outputs(production: Production, transformation: Transformation,
                    task: TaskInputs, workdir: str) -> list[OutputFile]:
    """The outputs a task's job must leave in ``workdir``, with LFN and metadata: each
    output of the spec in turn, a per-input one as one file per input in LFN order."""
    return [f for _, files in _planned(production, transformation, task, workdir)
            for f in files]


def _planned(production: Production, transformation: Transformation, task: TaskInputs,
             workdir: str) -> list[tuple[Output, list[OutputFile]]]:
    """Each output of the spec with its files: one, or one per input (``per_input``),
    whose metadata and provenance come from that input alone."""
    planned = []
    for output in transformation.outputs:
        sources = ([{lfn: task.files[lfn]} for lfn in sorted(task.files)] if output.per_input
                   else [task.files])
        files = [_output_file(production, transformation, output, task, inputs, workdir)
                 for inputs in sources]
        names = Counter(Path(f.path).name for f in files)
        if len(names) < len(files):
            twice = next(name for name, count in names.items() if count > 1)
            raise ValueError(f"two inputs of task {task.index} would write output {twice!r}; "
                             "their file names differ only in folder or extension")
        planned.append((output, files))
    return planned


def _output_file(production: Production, transformation: Transformation, output: Output,
                 task: TaskInputs, inputs: Mapping[str, Mapping[str, Any]],
                 workdir: str) -> OutputFile:
    """One output file of ``task`` made from ``inputs`` (a per-input output's: one)."""
    extra: dict[str, Any] = {k: v for k, v in (("run", task.run),) if v is not None}
    if production.defaults.provenance:
        extra[PROVENANCE_KEY] = ",".join(sorted(inputs))
    metadata = output_metadata(production, transformation, output, inputs.values(), extra)
    own = {"input_stem": input_stem(next(iter(inputs)))} if output.per_input else {}
    name = _format(output.name, {**metadata, **_fields(production, transformation, task), **own})
    if "/" in name or name in ("", ".", ".."):
        raise ValueError(f"output name {name!r} of task {task.index} is not a file name")
    _check_passable(f"output name of task {task.index}", name, MAX_NAME_BYTES)
    lfn = f"{production.output_base}/{transformation.name}/{name}"
    return OutputFile(lfn=lfn, path=str(Path(workdir) / name), metadata=metadata)


def build_job(production: Production, transformation: Transformation, task: TaskInputs,
              name: str, workdir: str, input_paths: Mapping[str, str],
              side_paths: Mapping[str, Sequence[str]]) -> JobSpec:
    """The job of one task attempt: the command with every placeholder filled in."""
    inputs = [input_paths[lfn] for lfn in sorted(task.files)]
    planned = _planned(production, transformation, task, workdir)
    fields: dict[str, Any] = {**_fields(production, transformation, task),
                              "input": inputs[0] if inputs else "",
                              **{o.key: files[0].path for o, files in planned if not o.per_input},
                              **{k: " ".join(v) for k, v in side_paths.items()}}
    lists = {"inputs": inputs, **{o.key: [f.path for f in files] for o, files in planned
                                  if o.per_input},
             **{k: list(v) for k, v in side_paths.items()}}
    command: list[str] = []
    for arg in transformation.job.command:
        alone = arg[1:-1] if arg.startswith("{") and arg.endswith("}") else None
        command.extend(lists[alone] if alone in lists else [_format(arg, fields)])
    for i, arg in enumerate(command):
        _check_passable(f"argument {i} of the command", arg)
    for key, value in transformation.job.env.items():
        _check_passable(f"environment variable {key!r}", f"{key}={value}")
    env_spec = transformation.job.environment or production.defaults.environment
    resources = transformation.job.resources or production.defaults.resources
    return JobSpec(name=name,
                   command=tuple(command), workdir=workdir, env=dict(transformation.job.env),
                   cores=resources.cores, memory_mb=resources.memory_mb,
                   walltime_s=resources.walltime_s, image=env_spec.image)


def _check_passable(what: str, value: str, limit: int = MAX_ARGUMENT_BYTES) -> None:
    """Raise ValueError when ``value`` cannot reach a process (or name a file): a NUL
    byte, a character with no byte encoding, or more than ``limit`` bytes."""
    shown = value if len(value) <= 60 else value[:57] + "..."
    fix = "fix the spec value or the catalog metadata it is filled from"
    if "\0" in value:
        raise ValueError(f"{what} {shown!r} contains a NUL byte, which no command line "
                         f"can carry; {fix}")
    try:
        size = len(os.fsencode(value))
    except UnicodeEncodeError as exc:
        raise ValueError(f"{what} {shown!r} contains {value[exc.start]!r}, a character "
                         f"no command line can carry; {fix}") from None
    if size > limit:
        raise ValueError(f"{what} {shown!r} is {size} bytes, more than the {limit} it may "
                         f"hold; {fix}")


def _fields(production: Production, transformation: Transformation,
            task: TaskInputs) -> dict[str, Any]:
    return {**transformation.job.parameters, "production": production.production,
            "transformation": transformation.name, "task": task.index,
            "run": _run(transformation, task), "group": task.group or ""}


def _run(transformation: Transformation, task: TaskInputs) -> int | str:
    """The MC run number, or the run of a task grouped by run."""
    if task.run is not None:
        return task.run
    if transformation.grouping.key == "run" and task.group is not None:
        return int(task.group) if task.group.lstrip("-").isdigit() else task.group
    return ""


def _format(pattern: str, fields: Mapping[str, Any]) -> str:
    """``str.format`` restricted to plain names (no attribute or item access)."""
    out = []
    for literal, name, spec, conversion in string.Formatter().parse(pattern):
        out.append(literal)
        if name is None:
            continue
        if name not in fields:
            raise ValueError(f"unknown placeholder {{{name}}} in {pattern!r}")
        value = fields[name]
        out.append(format(str(value) if conversion == "s" else value, spec or ""))
    return "".join(out)
