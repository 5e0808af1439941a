"""``ctaoflow import``: a CTADIRAC ProdSteps file written out as a native production
YAML, with comments saying which ProdStep each transformation comes from and what was
translated. Loading the written file gives the same production as loading the original.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from ctaoflow.spec.prodsteps import Converted, convert, is_prodsteps
from ctaoflow.spec.validation import SpecError, load_production, read_document


def import_prodsteps(path: str | os.PathLike) -> str:
    """The native YAML of the ProdSteps file ``path``; ``SpecError`` with its located
    errors when it is not a valid ProdSteps file."""
    path = Path(path)
    load_production(path)  # every error, located in the ProdSteps file
    report, document = read_document(path)
    if document is None or not is_prodsteps(document.data):
        report.add((), "not a CTADIRAC file (no top-level 'ProdSteps:'); it is read as a "
                       "ctaoflow production already, nothing to import")
        raise SpecError(report.lines())
    converted = convert(document.data, path.stem, report)
    assert converted is not None  # load_production converted it without error
    return as_yaml(converted, path.name)


def as_yaml(converted: Converted, source: str) -> str:
    """The commented YAML of a converted spec."""
    spec = dict(converted.spec)
    transformations = spec.pop("transformations")
    lines = [f"# Imported by 'ctaoflow import' from the CTADIRAC ProdSteps file {source}."]
    lines += _comments(converted.notes.get((), []), "")
    lines += [_dump(spec).rstrip("\n"), "", "transformations:"]
    for i, transformation in enumerate(transformations):
        lines += [""] if i else []
        lines += _comments(converted.notes.get(("transformations", i), []), "  ")
        lines += ["  " + line if line else line
                  for line in _dump([transformation]).rstrip("\n").split("\n")]
    return "\n".join(lines) + "\n"


def _comments(notes: list[str], indent: str) -> list[str]:
    return [f"{indent}# {note}" for note in notes]


def _dump(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
