"""Placeholder rules of a spec: the ``{name:format}`` fields of commands, output names
and the LFN base, and the names that parameters, side inputs and outputs give them."""

from __future__ import annotations

import re
import string
from typing import Any, Callable

from ctaoflow.spec.chaining import StaticMetadata
from ctaoflow.spec.messages import describe, did_you_mean
from ctaoflow.spec.model import Production, Transformation
from ctaoflow.spec.yamlio import KeyPath

MAX_NAME_BYTES = 255  # NAME_MAX of Linux file systems
MAX_FORMAT_WIDTH = MAX_NAME_BYTES  # a wider field fits no file name (and could fill memory)
MAX_ARGUMENT_BYTES = 131_072  # Linux's MAX_ARG_STRLEN: execve refuses a longer argument
RESERVED = ("inputs", "input", "input_stem", "task", "run", "group", "production",
            "transformation")
COMPRESSED = (".gz", ".bz2", ".xz", ".zst", ".lz4")  # counted with the extension before


def input_stem(lfn: str) -> str:
    """``{input_stem}`` of a per-input output: the input's file name without its
    extension, a compression extension counting with the one before it
    (``/a/run1.simtel.zst`` -> ``run1``, ``/a/run1.DL1.h5`` -> ``run1.DL1``)."""
    name = lfn.rsplit("/", 1)[-1]
    for _ in range(2):
        stem, dot, extension = name.rpartition(".")
        if not (dot and stem):
            break
        name = stem
        if f".{extension}" not in COMPRESSED:
            break
    return name


class PlaceholderChecks:
    """The placeholder half of ``Semantics`` (which provides ``production``, ``static``,
    ``error`` and ``is_sound``)."""

    production: Production
    static: StaticMetadata
    error: Callable[..., None]
    is_sound: Callable[[str], bool]

    def check_placeholder_names(self, base: KeyPath, t: Transformation) -> None:
        """Parameters, side inputs and output keys name placeholders: no clashes."""
        seen: dict[str, str] = {}
        named = [(base + ("outputs", j, "key"), o.key, "output key")
                 for j, o in enumerate(t.outputs)]
        named += [(base + ("job", "side_inputs", n), n, "side input") for n in t.job.side_inputs]
        named += [(base + ("job", "parameters", n), n, "parameter") for n in t.job.parameters]
        for path, name, what in named:
            if name in RESERVED or name in self.night_samples():
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
        return {**samples, **self.night_samples(), **t.job.parameters}

    def night_samples(self) -> dict[str, str]:
        """``{night}`` and ``{version}``, in a nightly production."""
        nightly = self.production.nightly
        return {"night": "20261201", "version": nightly.version} if nightly else {}

    def check_command(self, base: KeyPath, t: Transformation) -> None:
        known = self.fields(t)
        known.update({o.key: "out.h5" for o in t.outputs})
        known.update({name: "side.h5" for name in t.job.side_inputs})
        if t.type != "mc_simulation":
            known.update(inputs="in.h5", input="in.h5")
        lists = {"inputs"} | {o.key for o in t.outputs if o.per_input}  # one argument per input
        if not t.job.command[0].strip():
            self.error(base + ("job", "command", 0), "the program to run is empty; write its "
                                                     "name or path first, e.g. [ctapipe-process]")
        for j, arg in enumerate(t.job.command):
            path = base + ("job", "command", j)
            if t.type == "mc_simulation" and {"inputs", "input"} & names_in(arg):
                self.error(path, "an mc_simulation has no input files; remove {inputs} and "
                                 "{input} (use {run} for the run number)")
                continue
            if len(arg.encode()) > MAX_ARGUMENT_BYTES:
                self.error(path, f"{len(arg.encode())} bytes long, more than a command line "
                                 f"argument may hold ({MAX_ARGUMENT_BYTES}); pass a file instead")
            names = self.check_pattern(path, arg, known)
            for name in sorted(names & lists):
                if arg != f"{{{name}}}":
                    self.error(path, f"{{{name}}} expands to one argument per input file and "
                                     f"must stand alone; write it as its own item instead of "
                                     f"{arg!r}")

    def check_output_names(self, base: KeyPath, t: Transformation) -> None:
        sound = self.is_sound(t.name)
        for j, output in enumerate(t.outputs):
            path = base + ("outputs", j, "name")
            # {input_stem} outside a per-input output is refused below, not as unknown
            stem = output.per_input or "input_stem" in names_in(output.name)
            known = ({**self.static.output(t, output), **self.fields(t),
                      **({"input_stem": "run1"} if stem else {})} if sound else None)
            names = self.check_pattern(path, output.name, known)
            if "/" in output.name:
                self.error(path, "an output name is a file name, not a path; remove the '/'")
            elif output.name.strip() in ("", ".", ".."):
                self.error(path, f"{output.name!r} is not a file name; write e.g. "
                                 "'{transformation}_{task:06d}.h5'")
            elif len(output.name.encode()) > MAX_NAME_BYTES:
                self.error(path, f"{len(output.name.encode())} bytes long, more than a file "
                                 f"name may be ({MAX_NAME_BYTES}); shorten it")
            elif (output.per_input and "input_stem" not in names
                  and t.type != "mc_simulation"):  # one there is refused by check_outputs
                self.error(path, f"a per-input output needs {{input_stem}} in its name, or "
                                 f"every input of a task would write {output.name!r}; write "
                                 "e.g. '{input_stem}.DL2.h5'")
            elif not output.per_input and "input_stem" in names:
                self.error(path, "{input_stem} names a per-input output; add "
                                 "'per_input: true' to this output or remove {input_stem}")
            elif not output.per_input and not self.unique_per_task(t, names):
                self.error(path, f"every task would write the same file name {output.name!r}; "
                                 "add {task}, e.g. '{transformation}_{task:06d}.h5'")
            for name in sorted(names & set(known or ())):
                value = str(known[name]) if known else ""
                if "/" in value or value in (".", ".."):
                    self.error(path, f"{{{name}}} is {value!r} here, which would put the file "
                                     f"outside its folder; remove {{{name}}} from the name or "
                                     f"change that value")

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
    if any(int(number) > MAX_FORMAT_WIDTH for number in re.findall(r"\d+", spec)):
        return (f"placeholder {{{name}:{spec}}} asks for more than {MAX_FORMAT_WIDTH} "
                "characters; write a width such as :06d")
    if known is None:
        return None
    if name not in known:
        hint = did_you_mean(name, sorted(known), "{{{}}}")
        names = sorted(known)
        listed = ", ".join(f"{{{k}}}" for k in names[:20]) + (
            f" and {len(names) - 20} more" if len(names) > 20 else "")
        message = f"unknown placeholder {{{name}}}; {hint or 'known: ' + listed}"
        if not name.isidentifier():  # e.g. a shell's ${#1}
            message += f"; for a literal brace write {{{{{name}}}}}"
        return message
    try:
        format(known[name], spec)
    except (ValueError, TypeError):
        return (f"format ':{spec}' does not fit {{{name}}} ({describe(known[name])}); "
                "fix or remove the format")
    return None


def names_in(text: str) -> set[str]:
    """The placeholder names of ``text`` (none when its braces are unbalanced)."""
    try:
        return {name for _, name, _, _ in string.Formatter().parse(text) if name}
    except ValueError:
        return set()
