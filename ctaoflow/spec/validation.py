"""Production spec validation: every error found, one line each, at its line.

Each error reads ``file:line:col: key.path: what is wrong; what to write``. Reading and
shapes (types, unknown keys, patterns: pydantic's errors of ``ctaoflow.spec.model``
reworded) are checked here; the cross-field rules in ``semantics``, on every
transformation whose shape is valid, so one run reports everything it can.
"""

from __future__ import annotations

import datetime as dt
import gc
import os
import re
import types
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from ctaoflow.spec.characters import check_characters
from ctaoflow.spec.messages import (MISSING, ErrorReport, describe, did_you_mean, is_scalar,
                                    quote, short)
from ctaoflow.spec.model import ENV_NAME_PATTERN, NAME_PATTERN, SITE_NAME_PATTERN, Production
from ctaoflow.spec.prodsteps import convert, converted_document, is_prodsteps
from ctaoflow.spec.semantics import Semantics, check_names
from ctaoflow.spec.yamlio import (Document, KeyPath, UnreadableFile, YamlSyntaxError, parse,
                                  read_bounded)

SitesArg = Iterable[str] | str | os.PathLike | None
_PATTERN_RULES = {
    NAME_PATTERN: "start with a letter, then letters, digits, '_' or '-' (63 at most), "
                  "e.g. 'process_gamma'",
    SITE_NAME_PATTERN: "start with a letter or digit, then letters, digits, '.', '_' or '-' "
                       "(63 at most), e.g. 'LOCAL-DISK'",
    r"^[a-z][a-z0-9_-]*$": "use lowercase letters, digits, '_' or '-', starting with a letter",
    ENV_NAME_PATTERN: "use letters, digits and '_', not starting with a digit",
}
_NOUNS = {"str": "text", "int": "a whole number", "float": "a number", "bool": "true/false",
          "list": "a list", "dict": "a mapping"}
_TYPE_ERRORS = {
    "int_type": "int", "int_parsing": "int", "int_from_float": "int", "float_type": "float",
    "float_parsing": "float", "string_type": "str", "bool_type": "bool",
    "bool_parsing": "bool", "list_type": "list", "dict_type": "dict", "model_type": "dict",
    "model_attributes_type": "dict",
}


class SpecError(Exception):
    """A production spec with errors; ``errors`` holds one line per error."""

    def __init__(self, errors: Iterable[str]) -> None:
        self.errors = list(errors)
        super().__init__("\n".join(self.errors))


def load_production(path: str | os.PathLike, known_sites: SitesArg = None) -> Production:
    """Read, parse and check a production YAML; raises ``SpecError`` with all errors.

    ``known_sites`` is a collection of site names, or the path of a sites file
    (``sites: {NAME: {...}}``); without it site names are not checked.
    """
    production, errors = _check_file(Path(path), _site_names(known_sites))
    if errors or production is None:
        raise SpecError(errors)
    return production


def validate_files(paths: Iterable[str | os.PathLike], known_sites: SitesArg = None) -> list[str]:
    """The error lines of every file (empty when all are valid)."""
    try:
        sites = _site_names(known_sites)
    except SpecError as exc:
        return exc.errors
    errors: list[str] = []
    loaded: list[tuple[Path, Production]] = []
    for path in map(Path, paths):
        production, lines = _check_file(path, sites)
        errors.extend(lines)
        if production is not None and not lines:
            loaded.append((path, production))
    return errors + unique_productions(loaded)[1]


def unique_productions(loaded: Iterable[tuple[Path, Production]]
                       ) -> tuple[list[tuple[Path, Production]], list[str]]:
    """The productions whose name no other file uses, and one line per file that shares
    its production name (the DAG id, which keys the ledger) with another."""
    files: dict[str, dict[Path, None]] = {}
    for path, production in loaded:
        files.setdefault(production.production, {})[path] = None
    errors: list[str] = []
    for name, paths in files.items():
        for path in paths if len(paths) > 1 else ():
            report, _ = read_document(path)
            others = ", ".join(str(other) for other in paths if other != path)
            report.add(("production",), f"production '{name}' is also defined in {others}; "
                                        "give each production its own name", of_key=False)
            errors.extend(report.lines())
    kept = [(path, p) for path, p in loaded if len(files[p.production]) == 1]
    return kept, errors


def load_site_names(path: str | os.PathLike) -> set[str]:
    """The site names of a sites file (``sites: {NAME: {backend: ..., ...}}``)."""
    report, document = read_document(Path(path))
    if document is not None:
        sites = document.data.get("sites") if isinstance(document.data, dict) else None
        if isinstance(sites, dict) and sites:
            return {str(name) for name in sites}
        report.add(("sites",), f"expected a 'sites:' mapping of site names, got "
                               f"{describe(sites)}; write 'sites: {{local: {{backend: local}}}}'")
    raise SpecError(report.lines())


# -- reading -----------------------------------------------------------------------

def read_document(path: Path) -> tuple[ErrorReport, Document | None]:
    """The parsed file with its report (reading and duplicate-key errors so far);
    the document is None when the file cannot be read or parsed."""
    report = ErrorReport(str(path))
    try:
        text = read_bounded(path).decode("utf-8")
    except UnicodeDecodeError:
        report.at((1, 1), ("(file)",), "not UTF-8 text; save the file as UTF-8")
        return report, None
    except UnreadableFile as exc:
        report.at((1, 1), ("(file)",), str(exc))
        return report, None
    try:
        report.document = parse(text)
    except YamlSyntaxError as exc:
        report.at(exc.position, ("(syntax)",), exc.message)
        return report, None
    for position, key_path, message in report.document.problems:
        report.at(position, key_path, message)
    return report, report.document


def _site_names(known_sites: SitesArg) -> set[str] | None:
    if known_sites is None:
        return None
    if isinstance(known_sites, (str, os.PathLike)):
        return load_site_names(known_sites)
    return set(known_sites)


@contextmanager
def no_cyclic_gc() -> Iterator[None]:
    """Pause the cycle collector: a large spec allocates so many small objects that its
    repeated full collections make reading time grow quadratically (10,000
    transformations: 9 s instead of 1 s to compose the YAML); building many DAGs too."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _check_file(path: Path, sites: set[str] | None) -> tuple[Production | None, list[str]]:
    with no_cyclic_gc():
        return _check_document(path, sites)


def _check_document(path: Path, sites: set[str] | None
                    ) -> tuple[Production | None, list[str]]:
    report, document = read_document(path)
    if document is not None and is_prodsteps(document.data):
        converted = convert(document.data, path.stem, report)
        document = None if converted is None else converted_document(document, converted)
        report.document = document or report.document
    if document is None:
        return None, report.lines()
    data = document.data
    if not isinstance(data, dict):
        report.add((), f"expected a mapping with 'production:' and 'transformations:', got "
                       f"{describe(data)}; start the file with 'production: <name>'")
        return None, report.lines()
    check_characters(data, report)
    production: Production | None = None
    checked: Production | None
    try:
        production = checked = Production.model_validate(data)
        indexes = list(range(len(production.transformations)))
    except ValidationError as exc:
        failed = _report_shapes(exc, data, report)
        checked, indexes = _valid_part(data, failed)
    raw = data.get("transformations")
    raw = raw if isinstance(raw, list) else []
    check_names(raw, report)
    if checked is not None:
        Semantics(checked, indexes, raw, report, sites).run()
    return production, report.lines()


# -- shapes: pydantic errors as one-line messages ------------------------------------

@dataclass
class _Located:
    """A pydantic error placed in the data: ``tag`` is set for a union branch that
    does not fit the value's kind; ``via`` lists union points whose fitting branch
    the error went through."""

    error: ErrorDetails
    path: KeyPath
    value: Any
    tag: str | None = None
    via: tuple[KeyPath, ...] = ()
    key: bool = False


def _report_shapes(exc: ValidationError, data: dict, report: ErrorReport) -> set[KeyPath]:
    """Report the pydantic errors; return their locations (to skip those parts)."""
    located = [_locate(error, data) for error in exc.errors(include_url=False)]
    fitted = {point for item in located for point in item.via}
    mismatched: dict[KeyPath, tuple[Any, list[str]]] = {}
    for item in located:
        if item.tag is None:
            report.add(item.path, _shape_message(item),
                       of_key=item.key or item.error["type"] in ("extra_forbidden", "missing"))
        elif item.path not in fitted:
            mismatched.setdefault(item.path, (item.value, []))[1].append(item.tag)
    for path, (value, tags) in mismatched.items():
        fix = quote(value) if isinstance(value, dt.date) else f"write {_expected(tags)}"
        report.add(path, f"got {describe(value)}; {fix}", of_key=False)
    return {tuple(error["loc"]) for error in exc.errors(include_url=False)}


def _locate(error: ErrorDetails, data: Any) -> _Located:
    node, path, via = data, [], []
    loc = error["loc"]
    if error["type"] == "invalid_key":  # pydantic's loc holds a key coerced to int
        loc = (*loc[:-1], error["input"], "[key]")
    for i, element in enumerate(loc):
        found, child = _step(node, element)
        if found:
            path.append(element)
            node = child
        elif error["type"] == "missing" and i == len(loc) - 1:
            path.append(element)
            node = MISSING
        elif element == "[key]":
            return _Located(error, tuple(path), path[-1] if path else None, key=True)
        elif isinstance(element, str) and _fits(element, node):
            via.append(tuple(path))
        else:
            return _Located(error, tuple(path), node, str(element), tuple(via))
    return _Located(error, tuple(path), node, via=tuple(via))


def _step(node: Any, element: Any) -> tuple[bool, Any]:
    """Whether the data ``node`` has ``element`` (a key or an index), and its value."""
    if isinstance(node, dict):
        try:
            return element in node, node.get(element)
        except TypeError:
            return False, None
    if isinstance(node, list) and isinstance(element, int) and 0 <= element < len(node):
        return True, node[element]
    return False, None


def _fits(tag: str, value: Any) -> bool:
    """Whether a union branch tag (``str``, ``list[...]``, ...) is for this value's kind."""
    kind = tag.split("[", 1)[0]
    if isinstance(value, bool):
        return kind == "bool"
    if isinstance(value, int):
        return kind in ("int", "float")
    return {"str": str, "float": float, "list": list, "dict": dict}.get(kind) is type(value)


def _expected(tags: Iterable[str]) -> str:
    kinds = list(dict.fromkeys(tag.split("[", 1)[0] for tag in tags))
    if "int" in kinds and "float" in kinds:
        kinds.remove("int")
    nouns = [_NOUNS.get(kind, kind) for kind in kinds]
    return nouns[0] if len(nouns) == 1 else f"{', '.join(nouns[:-1])} or {nouns[-1]}"


def _shape_message(item: _Located) -> str:
    error, value = item.error, item.value
    kind, ctx = error["type"], error.get("ctx") or {}
    if item.key and kind != "string_pattern_mismatch":
        return f"a key must be text, not {describe(value)}; {quote(value)}"
    if kind == "extra_forbidden":
        allowed = _field_names(error["loc"][:-1])
        hint = did_you_mean(str(item.path[-1]), allowed)
        return f"unknown key; {hint or 'allowed here: ' + ', '.join(allowed)}"
    if kind == "missing":
        return f"required key missing; add '{item.path[-1]}:' here"
    if kind == "literal_error":
        allowed = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
        hint = did_you_mean(str(value), allowed)
        listed = ", ".join(allowed)
        return f"{value!r} is not allowed; " + (f"{hint} (allowed: {listed})" if hint
                                                 else f"write one of: {listed}")
    if kind == "string_pattern_mismatch":
        pattern = str(ctx.get("pattern"))
        rule = _PATTERN_RULES.get(pattern, f"match the pattern {pattern}")
        return f"{value!r} is not a valid name; {rule}"
    if kind in ("greater_than_equal", "greater_than"):
        bound, sign = (ctx["ge"], ">=") if kind == "greater_than_equal" else (ctx["gt"], ">")
        return f"{value!r} is too small; write a number {sign} {bound}"
    if kind == "finite_number":
        return f"{value!r} is not a finite number; write a plain number"
    if kind == "string_too_long":
        return f"longer than {ctx.get('max_length')} characters; shorten it"
    if kind == "string_too_short":
        return "must not be empty; write some text"
    if kind == "too_short":
        return f"must not be empty; write at least {ctx.get('min_length', 1)} item(s)"
    if kind == "value_error":
        return str(ctx.get("error", error["msg"]))
    if kind in _TYPE_ERRORS:
        return _type_message(_TYPE_ERRORS[kind], value)
    return str(error["msg"])


def _type_message(expected: str, value: Any) -> str:
    fixes = {"int": "write a whole number, e.g. 5", "float": "write a number, e.g. 2.5",
             "bool": "write true or false", "dict": "write 'key: value' lines indented below",
             "str": quote(value) if is_scalar(value) else "write text",
             "list": f"write [{short(value)}]" if is_scalar(value)
                     else "write [a, b] or '- item' lines"}
    return f"expected {_NOUNS[expected]}, got {describe(value)}; {fixes[expected]}"


def _field_names(loc: Iterable[Any]) -> list[str]:
    """The keys allowed in the mapping at ``loc`` (a pydantic location in a Production)."""
    annotation: Any = Production
    for element in loc:
        annotation = _unwrap(annotation)
        if isinstance(element, int):
            annotation = get_args(annotation)[0] if get_origin(annotation) is list else None
        elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
            fields = {info.alias or name: info for name, info in annotation.model_fields.items()}
            annotation = fields[element].annotation if element in fields else None
        else:
            return []
    annotation = _unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [info.alias or name for name, info in annotation.model_fields.items()]
    return []


def _unwrap(annotation: Any) -> Any:
    """``X | None`` -> ``X``."""
    args = [a for a in get_args(annotation) if a is not type(None)]
    if get_origin(annotation) in (Union, types.UnionType) and len(args) == 1:
        return args[0]
    return annotation


def _valid_part(data: dict, failed: set[KeyPath]) -> tuple[Production | None, list[int]]:
    """The production without the parts that failed, to check what can be checked."""
    bad_top = {loc[0] for loc in failed if loc and not (loc[0] == "transformations"
                                                        and len(loc) > 1)}
    raw = data.get("transformations")
    if "transformations" in bad_top or not isinstance(raw, list):
        return None, []
    bad = {loc[1] for loc in failed if len(loc) > 1 and loc[0] == "transformations"}
    indexes = [i for i in range(len(raw)) if i not in bad]
    partial = {k: v for k, v in data.items() if k not in bad_top}
    partial["transformations"] = [raw[i] for i in indexes]
    partial.setdefault("production", "unnamed")
    try:
        return Production.model_validate(partial), indexes
    except ValidationError:
        return None, []
