"""Production spec validation: every error found, one line each, at its line.

Each error reads ``file:line:col: key.path: what is wrong; what to write``. Shapes and
types come from the pydantic models of ``ctaoflow.spec``; the cross-field rules (names,
parents, cycles, transformation kinds, grouping options, queries against the parents'
output metadata, placeholders, outputs, sites) are checked here, on every
transformation whose shape is valid, so one run reports everything it can.
"""

from __future__ import annotations

import datetime as dt
import difflib
import os
import re
import string
import types
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from ctaoflow.spec.chaining import static_output_metadata
from ctaoflow.spec.query import Query
from ctaoflow.spec.model import NAME_PATTERN, Production, Transformation
from ctaoflow.spec.yamlio import Document, KeyPath, Position, YamlSyntaxError, parse

SitesArg = Iterable[str] | str | os.PathLike | None
RESERVED = ("inputs", "input", "task", "run", "group", "production", "transformation")
_MISSING = object()
_PATTERN_RULES = {
    NAME_PATTERN: "start with a letter, then letters, digits, '_' or '-' (63 at most), "
                  "e.g. 'process_gamma'",
    r"^[a-z][a-z0-9_-]*$": "use lowercase letters, digits, '_' or '-', starting with a letter",
    r"^[A-Za-z_][A-Za-z0-9_]*$": "use letters, digits and '_', not starting with a digit",
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
    return [line for path in paths for line in _check_file(Path(path), sites)[1]]


def load_site_names(path: str | os.PathLike) -> set[str]:
    """The site names of a sites file (``sites: {NAME: {backend: ..., ...}}``)."""
    report, document = _read(Path(path))
    if document is not None:
        sites = document.data.get("sites") if isinstance(document.data, dict) else None
        if isinstance(sites, dict) and sites:
            return {str(name) for name in sites}
        report.add(("sites",), f"expected a 'sites:' mapping of site names, got "
                               f"{_describe(sites)}; write 'sites: {{local: {{backend: local}}}}'")
    raise SpecError(report.lines())


# -- reading -----------------------------------------------------------------------

@dataclass
class _Report:
    """Error lines of one file, placed with the document's positions."""

    file: str
    document: Document = field(default_factory=lambda: Document(None))
    entries: list[tuple[Position, str]] = field(default_factory=list)

    def add(self, path: KeyPath, message: str, of_key: bool = True) -> None:
        self.at(self.document.position(path, of_key), path, message)

    def at(self, position: Position, path: KeyPath, message: str) -> None:
        where = ".".join(str(p) for p in path) or "(document)"
        line = f"{self.file}:{position[0]}:{position[1]}: {where}: {' '.join(message.split())}"
        self.entries.append((position, line))

    def lines(self) -> list[str]:
        return list(dict.fromkeys(line for _, line in sorted(self.entries)))


def _read(path: Path) -> tuple[_Report, Document | None]:
    report = _Report(str(path))
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        report.at((1, 1), ("(file)",), "not UTF-8 text; save the file as UTF-8")
        return report, None
    except OSError as exc:
        report.at((1, 1), ("(file)",), f"cannot read: {exc.strerror or exc}; check the path")
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


def _check_file(path: Path, sites: set[str] | None) -> tuple[Production | None, list[str]]:
    report, document = _read(path)
    if document is None:
        return None, report.lines()
    data = document.data
    if not isinstance(data, dict):
        report.add((), f"expected a mapping with 'production:' and 'transformations:', got "
                       f"{_describe(data)}; start the file with 'production: <name>'")
        return None, report.lines()
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
    _check_names(raw, report)
    if checked is not None:
        _Semantics(checked, indexes, raw, report, sites).run()
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


def _report_shapes(exc: ValidationError, data: dict, report: _Report) -> set[KeyPath]:
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
        fix = _quote(value) if isinstance(value, dt.date) else f"write {_expected(tags)}"
        report.add(path, f"got {_describe(value)}; {fix}", of_key=False)
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
            node = _MISSING
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
    if item.key:
        return f"a key must be text, not {_describe(value)}; {_quote(value)}"
    if kind == "extra_forbidden":
        allowed = _field_names(error["loc"][:-1])
        hint = _did_you_mean(str(item.path[-1]), allowed)
        return f"unknown key; {hint or 'allowed here: ' + ', '.join(allowed)}"
    if kind == "missing":
        return f"required key missing; add '{item.path[-1]}:' here"
    if kind == "literal_error":
        allowed = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
        hint = _did_you_mean(str(value), allowed)
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
             "str": _quote(value) if _is_scalar(value) else "write text",
             "list": f"write [{_short(value)}]" if _is_scalar(value)
                     else "write [a, b] or '- item' lines"}
    return f"expected {_NOUNS[expected]}, got {_describe(value)}; {fixes[expected]}"


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


# -- semantics ---------------------------------------------------------------------

def _check_names(raw: list[Any], report: _Report) -> None:
    """Transformation names must be unique."""
    first: dict[str, int] = {}
    for i, item in enumerate(raw):
        name = item.get("name") if isinstance(item, dict) else None
        if not isinstance(name, str):
            continue
        if name in first:
            line = report.document.position(("transformations", first[name], "name"))[0]
            report.add(("transformations", i, "name"), (
                f"duplicate transformation name '{name}' (also transformations.{first[name]}, "
                f"line {line}); give each transformation its own name"), of_key=False)
        first.setdefault(name, i)


class _Semantics:
    """The cross-field rules, on the transformations whose shape is valid."""

    def __init__(self, production: Production, indexes: list[int], raw: list[Any],
                 report: _Report, sites: set[str] | None) -> None:
        self.production = production
        self.items = list(zip(indexes, production.transformations))
        self.by_name: dict[str, Transformation] = {}
        for t in production.transformations:
            self.by_name.setdefault(t.name, t)
        self.raw = raw
        self.written = {item["name"] for item in raw if isinstance(item, dict)
                        and isinstance(item.get("name"), str)}
        self.report = report
        self.sites = sites
        self.queries: dict[str, Query] = {}
        self.sound: dict[str, bool] = {}

    def run(self) -> None:
        self.check_lfn_base()
        self.check_sites(("defaults", "sites"), self.production.defaults.sites)
        for i, t in self.items:
            base: KeyPath = ("transformations", i)
            self.check_references(base, t)
            self.check_kind(base, t)
            self.check_grouping(base, t)
            self.check_query(base, t)
            self.check_placeholder_names(base, t)
            self.check_outputs(base, t)
            if t.sites is not None:
                self.check_sites(base + ("sites",), t.sites)
        self.check_cycles()
        for i, t in self.items:
            base = ("transformations", i)
            if self.is_sound(t.name):
                self.check_overlap(base, t)
            self.check_command(base, t)
            self.check_output_names(base, t)

    def error(self, path: KeyPath, message: str, of_key: bool = False) -> None:
        self.report.add(path, message, of_key)

    # references and the graph
    def references(self, base: KeyPath, t: Transformation) -> Iterator[tuple[KeyPath, str]]:
        """Every transformation name ``t`` refers to, with where it is written."""
        written = self.raw[base[1]].get("input") or {}
        single = isinstance(written.get("from"), str)
        for j, name in enumerate(t.input.from_ if t.input else []):
            yield base + (("input", "from") if single else ("input", "from", j)), name
        for j, name in enumerate(t.parents):
            yield base + ("parents", j), name
        for placeholder, name in t.job.side_inputs.items():
            yield base + ("job", "side_inputs", placeholder), name

    def check_references(self, base: KeyPath, t: Transformation) -> None:
        for path, name in self.references(base, t):
            if name == t.name:
                self.error(path, f"'{name}' is this transformation itself; name a parent "
                                 "transformation")
            elif name not in self.written:
                hint = _did_you_mean(name, sorted(self.written))
                self.error(path, f"unknown transformation '{name}'; " + (
                    hint or "write the name of a transformation of this production"))

    def parents(self, t: Transformation) -> list[str]:
        return [p for p in t.all_parents if p in self.by_name and p != t.name]

    def check_cycles(self) -> None:
        """Report each dependency cycle once, at the link of its first transformation."""
        order = {t.name: i for i, t in self.items[::-1]}
        reported: set[frozenset[str]] = set()
        for cycle in _cycles({name: self.parents(t) for name, t in self.by_name.items()}):
            if frozenset(cycle) in reported:
                continue
            reported.add(frozenset(cycle))
            start = min(range(len(cycle)), key=lambda k: order[cycle[k]])
            flow = cycle[start:] + cycle[:start]  # flow[k + 1] reads flow[k]
            child, parent = flow[0], flow[-1]
            base: KeyPath = ("transformations", order[child])
            path = next(p for p, n in self.references(base, self.by_name[child]) if n == parent)
            self.error(path, f"dependency cycle {' -> '.join(flow + [child])}; remove one of "
                             "these links")

    def is_sound(self, name: str, visiting: frozenset[str] = frozenset()) -> bool:
        """Whether ``name``'s output metadata is known: its ancestry is valid and acyclic."""
        if name not in self.sound:
            t = self.by_name.get(name)
            self.sound[name] = bool(
                t and name not in visiting and name in self.queries
                and sum(x.name == name for _, x in self.items) == 1
                and all(p != name and self.is_sound(p, visiting | {name})
                        for p in (t.input.from_ if t.input else [])))
        return self.sound[name]

    # kinds, grouping, queries
    def check_kind(self, base: KeyPath, t: Transformation) -> None:
        if t.type == "mc_simulation":
            if t.runs is None:
                self.error(base + ("runs",), "an mc_simulation needs runs; add "
                                             "'runs: {count: 100}' (one job per run number)")
            if t.input is not None:
                self.error(base + ("input",), "an mc_simulation reads no input; remove "
                                              "'input' (its jobs come from 'runs')", True)
            if "grouping" in t.model_fields_set:
                self.error(base + ("grouping",), "an mc_simulation has no input files to "
                                                 "group; remove 'grouping'", True)
            return
        if t.runs is not None:
            self.error(base + ("runs",), "only an mc_simulation has runs; remove 'runs' or "
                                         "set 'type: mc_simulation'", True)
        if t.input is None:
            self.error(base + ("input",), f"a {t.type} transformation needs input; add "
                                          "'input: {from: <parent>}' or a catalog query")
        elif not t.input.from_ and not t.input.query:
            self.error(base + ("input",), "selects every file of the catalog; add "
                                          "'from: <parent>' or a 'query:'", True)

    def check_grouping(self, base: KeyPath, t: Transformation) -> None:
        if t.type == "mc_simulation":
            return
        g, path = t.grouping, base + ("grouping",)
        written = g.model_fields_set
        if g.plugin == "by_size" and g.size_gb is None:
            self.error(path + ("size_gb",), "plugin by_size needs a target size; add "
                                            "'size_gb: 10' (GB per task)", True)
        if g.plugin == "by_metadata" and g.key is None:
            self.error(path + ("key",), "plugin by_metadata needs the key to group on; add "
                                        "e.g. 'key: run'", True)
        if "group_size" in written and g.plugin in ("by_size", "all"):
            fix = ("use size_gb and max_files" if g.plugin == "by_size"
                   else "plugin all puts every file in one task")
            self.error(path + ("group_size",), f"not used by plugin {g.plugin}; remove it "
                                               f"({fix})", True)
        for option, plugin in (("size_gb", "by_size"), ("max_files", "by_size"),
                               ("key", "by_metadata")):
            if option in written and g.plugin != plugin:
                self.error(path + (option,), f"only used by plugin {plugin}; remove it or "
                                             f"set 'plugin: {plugin}'", True)

    def check_query(self, base: KeyPath, t: Transformation) -> None:
        try:
            self.queries[t.name] = Query.parse(t.input.query if t.input else None)
        except ValueError as exc:
            key, _, message = str(exc).partition(": ")
            self.error(base + ("input", "query", key), message, True)

    def check_overlap(self, base: KeyPath, t: Transformation) -> None:
        """A child's query must be able to match some output of each of its parents."""
        query = self.queries[t.name]
        for parent in t.input.from_ if t.input else []:
            p = self.by_name[parent]
            metas = [static_output_metadata(self.production, p, o) for o in p.outputs]
            conflicts = [query.conflicts_with(meta) for meta in metas]
            if not all(conflicts):
                continue
            for condition in {c.key: c for c in conflicts[0]}.values():
                value = condition.value
                asked = list(value) if isinstance(value, tuple) else value
                self.error(base + ("input", "query", condition.key), (
                    f"never matches the outputs of '{parent}': they carry "
                    f"{condition.key}={metas[0][condition.key]!r}, this asks "
                    f"{condition.key} {condition.op} {asked!r}; change the condition or "
                    f"remove '{parent}' from 'from'"), True)

    # placeholders
    def check_placeholder_names(self, base: KeyPath, t: Transformation) -> None:
        """Parameters, side inputs and output keys name placeholders: no clashes."""
        seen: dict[str, str] = {}
        named = [(base + ("outputs", j, "key"), o.key, "output key")
                 for j, o in enumerate(t.outputs)]
        named += [(base + ("job", "side_inputs", n), n, "side input") for n in t.job.side_inputs]
        named += [(base + ("job", "parameters", n), n, "parameter") for n in t.job.parameters]
        for path, name, what in named:
            if name in RESERVED:
                self.error(path, f"{what} '{name}' hides the built-in placeholder {{{name}}}; "
                                 "rename it", True)
            elif name in seen and not (what == seen[name] == "output key"):
                self.error(path, f"{what} '{name}' clashes with the {seen[name]} of the "
                                 "same name; rename one of them", True)
            seen.setdefault(name, what)

    def fields(self, t: Transformation) -> dict[str, Any]:
        """Placeholders of every pattern of ``t``, with a sample value for format specs."""
        samples: dict[str, Any] = {"production": self.production.production,
                                   "transformation": t.name, "task": 0}
        if t.type == "mc_simulation" or (t.grouping.plugin == "by_metadata"
                                         and t.grouping.key == "run"):
            samples["run"] = 1
        if t.grouping.plugin == "by_metadata" and t.type != "mc_simulation":
            samples["group"] = "value"
        return {**samples, **t.job.parameters}

    def check_command(self, base: KeyPath, t: Transformation) -> None:
        known = self.fields(t)
        known.update({o.key: "out.h5" for o in t.outputs})
        known.update({name: "side.h5" for name in t.job.side_inputs})
        if t.type != "mc_simulation":
            known.update(inputs="in.h5", input="in.h5")
        for j, arg in enumerate(t.job.command):
            path = base + ("job", "command", j)
            if t.type == "mc_simulation" and {"inputs", "input"} & _names(arg):
                self.error(path, "an mc_simulation has no input files; remove {inputs} and "
                                 "{input} (use {run} for the run number)")
                continue
            names = self.check_pattern(path, arg, known)
            if "inputs" in names and arg != "{inputs}":
                self.error(path, f"{{inputs}} expands to one argument per input file and must "
                                 f"stand alone; write it as its own item instead of {arg!r}")

    def check_output_names(self, base: KeyPath, t: Transformation) -> None:
        sound = self.is_sound(t.name)
        for j, output in enumerate(t.outputs):
            path = base + ("outputs", j, "name")
            known = ({**static_output_metadata(self.production, t, output), **self.fields(t)}
                     if sound else None)
            names = self.check_pattern(path, output.name, known)
            if "/" in output.name:
                self.error(path, "an output name is a file name, not a path; remove the '/'")
            elif not self.unique_per_task(t, names):
                self.error(path, f"every task would write the same file name {output.name!r}; "
                                 "add {task}, e.g. '{transformation}_{task:06d}.h5'")

    @staticmethod
    def unique_per_task(t: Transformation, names: set[str]) -> bool:
        if "task" in names or (t.grouping.plugin == "all" and t.type != "mc_simulation"):
            return True
        if t.type == "mc_simulation":
            return "run" in names
        return (t.grouping.plugin == "by_metadata" and "group_size" not in
                t.grouping.model_fields_set and bool(names & {"group", t.grouping.key or ""}))

    def check_pattern(self, path: KeyPath, text: str, known: dict[str, Any] | None) -> set[str]:
        """Report bad placeholders in ``text`` (unknown ones only if ``known``)."""
        try:
            parts = list(string.Formatter().parse(text))
        except ValueError:
            self.error(path, f"unbalanced brace in {text!r}; write '{{{{' or '}}}}' for a "
                             "literal brace")
            return set()
        names: set[str] = set()
        for _, name, spec, conversion in parts:
            if name is None:
                continue
            problem = _placeholder_problem(name, spec or "", conversion, known)
            if problem:
                self.error(path, problem)
            names.add(name)
        return names

    # outputs, sites, LFN base
    def check_outputs(self, base: KeyPath, t: Transformation) -> None:
        for attribute in ("key", "name"):
            first: dict[str, int] = {}
            for j, output in enumerate(t.outputs):
                value = getattr(output, attribute)
                if value in first:
                    self.error(base + ("outputs", j, attribute), (
                        f"duplicate output {attribute} '{value}' (also outputs.{first[value]}); "
                        f"give each output its own {attribute}"))
                first.setdefault(value, j)

    def check_sites(self, path: KeyPath, sites: list[str]) -> None:
        if self.sites is None:
            return
        for j, site in enumerate(sites):
            if site not in self.sites:
                hint = _did_you_mean(site, sorted(self.sites))
                self.error(path + (j,), f"unknown site '{site}'; " + (
                    hint or f"known sites: {', '.join(sorted(self.sites))}"))

    def check_lfn_base(self) -> None:
        self.check_pattern(("lfn_base",), self.production.lfn_base,
                           {"scope": "ctao", "production": self.production.production})


def _placeholder_problem(name: str, spec: str, conversion: str | None,
                         known: dict[str, Any] | None) -> str | None:
    if not name:
        return "empty placeholder {}; write a name inside, e.g. {task}"
    if not re.fullmatch(r"[^.\[\]]+", name):
        return f"placeholder {{{name}}} uses attribute or item access; write a plain name"
    if conversion not in (None, "s"):
        return f"placeholder {{{name}!{conversion}}}: only !s is supported; remove '!{conversion}'"
    if "{" in spec:
        return f"placeholder {{{name}:{spec}}} nests a placeholder in its format; remove it"
    if known is None:
        return None
    if name not in known:
        hint = _did_you_mean(name, sorted(known), "{{{}}}")
        listed = ", ".join(f"{{{k}}}" for k in sorted(known))
        message = f"unknown placeholder {{{name}}}; {hint or 'known: ' + listed}"
        if not name.isidentifier():  # e.g. a shell's ${#1}
            message += f"; for a literal brace write {{{{{name}}}}}"
        return message
    try:
        format(known[name], spec)
    except (ValueError, TypeError):
        return (f"format ':{spec}' does not fit {{{name}}} ({_describe(known[name])}); "
                "fix or remove the format")
    return None


def _names(text: str) -> set[str]:
    try:
        return {name for _, name, _, _ in string.Formatter().parse(text) if name}
    except ValueError:
        return set()


def _cycles(graph: dict[str, list[str]]) -> Iterator[list[str]]:
    """Cycles of ``graph`` (node -> parents), each as parents-first order."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    stack: list[str] = []

    def visit(node: str) -> Iterator[list[str]]:
        state[node] = 1
        stack.append(node)
        for parent in graph.get(node, []):
            if state.get(parent) == 1:
                yield stack[stack.index(parent):][::-1]
            elif parent not in state:
                yield from visit(parent)
        stack.pop()
        state[node] = 2

    for node in graph:
        if node not in state:
            yield from visit(node)


# -- small helpers -----------------------------------------------------------------

def _did_you_mean(word: str, candidates: Iterable[str], form: str = "'{}'") -> str | None:
    candidates = list(candidates)
    lowered = {c.lower(): c for c in candidates}
    match = lowered.get(word.lower()) or next(
        (c for c in candidates if len(word) >= 3 and c.startswith(word)), None)
    close = difflib.get_close_matches(word, candidates, n=1, cutoff=0.6)
    match = match or (close[0] if close else None)
    return f"did you mean {form.format(match)}?" if match else None


def _is_scalar(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool, dt.date))


def _quote(value: Any) -> str:
    if isinstance(value, bool):
        return "quote it: YAML reads unquoted yes/no/on/off/true/false as a boolean"
    return f"quote it: '{_short(value)}'"


def _describe(value: Any) -> str:
    if value is None or value is _MISSING:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the text '{_short(value)}'"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"a {type(value).__name__} ({_short(value)})"


def _short(value: Any, limit: int = 40) -> str:
    text = str(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."
