"""The cross-field rules of a spec, on the transformations whose shape is valid: names,
references, cycles, transformation kinds, grouping options, queries against the parents'
output metadata, placeholders, outputs and sites."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ctaoflow.spec.chaining import StaticMetadata
from ctaoflow.spec.layout import PRODUCTION_TASKS
from ctaoflow.spec.messages import ErrorReport, Suggestions
from ctaoflow.spec.model import Production, Transformation
from ctaoflow.spec.placeholders import PlaceholderChecks, names_in
from ctaoflow.spec.query import Query
from ctaoflow.spec.yamlio import KeyPath


def check_names(raw: list[Any], report: ErrorReport) -> None:
    """Transformation names must be unique and not those of the production's own tasks."""
    first: dict[str, int] = {}
    for i, item in enumerate(raw):
        name = item.get("name") if isinstance(item, dict) else None
        if not isinstance(name, str):
            continue
        if name in PRODUCTION_TASKS:
            report.add(("transformations", i, "name"), (
                f"'{name}' is the name of the production's own {name} task in Airflow; "
                "rename the transformation"), of_key=False)
        if name in first:
            line = report.document.position(("transformations", first[name], "name"))[0]
            report.add(("transformations", i, "name"), (
                f"duplicate transformation name '{name}' (also transformations.{first[name]}, "
                f"line {line}); give each transformation its own name"), of_key=False)
        first.setdefault(name, i)


class Semantics(PlaceholderChecks):
    """The cross-field rules, on the transformations whose shape is valid."""

    def __init__(self, production: Production, indexes: list[int], raw: list[Any],
                 report: ErrorReport, sites: set[str] | None) -> None:
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
        self.name_hints = Suggestions(self.written)
        self.site_hints = Suggestions(sites or ())
        self.queries: dict[str, Query] = {}
        self.sound: dict[str, bool] | None = None
        self.static = StaticMetadata(production)

    def run(self) -> None:
        self.check_lfn_base()
        self.check_nightly()
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
            if isinstance(name, str):
                yield base + ("job", "side_inputs", placeholder), name

    def check_references(self, base: KeyPath, t: Transformation) -> None:
        for path, name in self.references(base, t):
            if name == t.name:
                self.error(path, f"'{name}' is this transformation itself; name a parent "
                                 "transformation")
            elif name not in self.written:
                hint = self.name_hints.hint(name)
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

    def is_sound(self, name: str) -> bool:
        """Whether ``name``'s output metadata is known: its ancestry is valid and acyclic."""
        if self.sound is None:
            self.sound = self._sound()
        return self.sound.get(name, False)

    def _sound(self) -> dict[str, bool]:
        """Every transformation's soundness, parents first (Kahn's order on inputs)."""
        counts = Counter(t.name for _, t in self.items)
        inputs = {name: list(dict.fromkeys(t.input.from_ if t.input else []))
                  for name, t in self.by_name.items()}
        waiting = {name: len(parents) for name, parents in inputs.items()}
        children: dict[str, list[str]] = {}
        for name, parents in inputs.items():
            for parent in parents:
                children.setdefault(parent, []).append(name)
        ready = [name for name, count in waiting.items() if count == 0]
        sound: dict[str, bool] = {}
        while ready:
            name = ready.pop()
            sound[name] = (counts[name] == 1 and name in self.queries
                           and all(sound.get(p, False) for p in inputs[name]))
            for child in children.get(name, []):
                waiting[child] -= 1
                if waiting[child] == 0:
                    ready.append(child)
        return sound  # names on or below a cycle never become ready: unsound

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
        for placeholder, source in t.job.side_inputs.items():
            if isinstance(source, dict):
                try:
                    Query.parse(source)
                except ValueError as exc:
                    key, _, message = str(exc).partition(": ")
                    self.error(base + ("job", "side_inputs", placeholder, key), message, True)

    def check_overlap(self, base: KeyPath, t: Transformation) -> None:
        """A child's query must be able to match some output of each of its parents."""
        query = self.queries[t.name]
        for parent in t.input.from_ if t.input else []:
            p = self.by_name[parent]
            metas = [self.static.output(p, o) for o in p.outputs]
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
        for j, output in enumerate(t.outputs):
            if output.per_input and t.type == "mc_simulation":
                self.error(base + ("outputs", j, "per_input"), (
                    "an mc_simulation has no input files to write one output per input "
                    "for; remove 'per_input'"))

    def check_sites(self, path: KeyPath, sites: list[str]) -> None:
        if self.sites is None:
            return
        for j, site in enumerate(sites):
            if site not in self.sites:
                hint = self.site_hints.hint(site)
                self.error(path + (j,), f"unknown site '{site}'; " + (
                    hint or f"known sites: {self.site_hints.listed()}"))

    def check_nightly(self) -> None:
        """A nightly production: a real time zone, a timetable instead of a schedule, one
        completeness condition, and queries that select one night."""
        nightly = self.production.nightly
        if nightly is None:
            return
        path: KeyPath = ("nightly",)
        if self.production.schedule is not None:
            self.error(("schedule",), "a nightly production runs once per night at "
                                      "nightly.starts_at; remove 'schedule'")
        try:
            ZoneInfo(nightly.timezone)
        except (ValueError, ZoneInfoNotFoundError):
            self.error(path + ("timezone",), f"unknown time zone {nightly.timezone!r}; write "
                                             "an IANA name, e.g. Atlantic/Canary")
        conditions = [k for k, v in nightly.complete_when if v is not None]
        if len(conditions) != 1:
            self.error(path + ("complete_when",), (
                f"{len(conditions)} conditions ({', '.join(conditions) or 'none'}); write "
                "exactly one of run_summary, dataset_closed, quiet_for"), True)
        queries = [(path + ("raw",), nightly.raw)]
        if nightly.complete_when.run_summary is not None:
            queries.append((path + ("complete_when", "run_summary"),
                            nightly.complete_when.run_summary))
        queries += [(("transformations", i, "input", "query"), t.input.query)
                    for i, t in self.items if t.input and not t.input.from_]
        for where, query in queries:
            try:
                Query.parse(query)
            except ValueError as exc:
                key, _, message = str(exc).partition(": ")
                self.error(where + (key,), message, True)
                continue
            if not any("night" in names_in(str(value)) for value in query.values()):
                self.error(where, "selects every night's files; add the night, e.g. "
                                  "night: '{night}'", True)

    def check_lfn_base(self) -> None:
        """An absolute path, without '.', '..' or empty parts that could escape it."""
        path: KeyPath = ("lfn_base",)
        self.check_pattern(path, self.production.lfn_base,
                           {"scope": "ctao", "production": self.production.production,
                            **self.night_samples()})
        base = self.production.lfn_base
        if not base.startswith("/"):
            self.error(path, f"{base!r} is not an absolute path; start it with '/', e.g. "
                             "'/ctao/{scope}/{production}'")
        elif any(part in ("", ".", "..") for part in base.rstrip("/").split("/")[1:]):
            self.error(path, f"{base!r} has an empty, '.' or '..' part, which could leave "
                             "the production's area; write a plain path, e.g. "
                             "'/ctao/{scope}/{production}'")


def _cycles(graph: dict[str, list[str]]) -> Iterator[list[str]]:
    """Cycles of ``graph`` (node -> parents), each as parents-first order; a depth-first
    walk with an explicit stack, so a long chain never reaches the recursion limit."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for root in graph:
        if root in state:
            continue
        path: list[str] = [root]
        where: dict[str, int] = {root: 0}  # node on the path -> its index
        pending = [iter(graph.get(root, []))]
        state[root] = 1
        while pending:
            parent = next(pending[-1], None)
            if parent is None:
                node = path.pop()
                del where[node]
                state[node] = 2
                pending.pop()
            elif state.get(parent) == 1:
                yield path[where[parent]:][::-1]
            elif parent not in state:
                state[parent] = 1
                where[parent] = len(path)
                path.append(parent)
                pending.append(iter(graph.get(parent, [])))
