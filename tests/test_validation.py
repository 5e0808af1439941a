"""Production spec validation: one exact line per error, at the right place."""

from __future__ import annotations

import os
import re
import sys
import textwrap
import time
import types
from pathlib import Path

import pytest
import yaml

from ctaoflow.spec import messages, yamlio
from ctaoflow.spec.graph import topological_order
from ctaoflow.spec.validation import (
    SpecError,
    load_production,
    load_site_names,
    validate_files,
)
from ctaoflow.spec.yamlio import MAX_BYTES, MAX_VALUES

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "config" / "productions").glob("*.yaml"))
LINE = re.compile(r"^[^:\n]+:\d+:\d+: \S+: [^\n]+$")

HEAD = "production: t\ntransformations:\n"
PROCESS = """\
  - name: process
    type: processing
    input:
      query: {data_level: DL0, particle: gamma}
    job:
      command: [run, --output, "{output}", "{inputs}"]
    outputs:
      - name: "{particle}_{task:04d}.h5"
        metadata: {data_level: DL1}
"""


@pytest.fixture
def check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Validate YAML text as ``f.yaml``; return its error lines."""
    monkeypatch.chdir(tmp_path)

    def run(text: str, sites=None) -> list[str]:
        Path("f.yaml").write_text(textwrap.dedent(text))
        errors = validate_files(["f.yaml"], sites)
        assert all(LINE.match(e) for e in errors), errors
        return errors
    return run


# -- the examples ------------------------------------------------------------------

def test_examples_exist() -> None:
    names = {p.name for p in EXAMPLES}
    assert {"demo.yaml", "seeds_dl0_to_dl2.yaml", "seeds_merge.yaml", "seeds_apply.yaml",
            "mc_simulation.yaml"} <= names


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_validate_cleanly(path: Path) -> None:
    assert validate_files([path]) == []


def test_examples_use_known_sites() -> None:
    assert validate_files(EXAMPLES, ROOT / "config" / "sites.yaml") == []


@pytest.mark.parametrize("path", [*EXAMPLES, ROOT / "config" / "failures.yaml"],
                         ids=lambda p: p.name)
def test_libyaml_and_pure_parser_give_the_same_document(path: Path) -> None:
    text = path.read_text() + "dup: 1\ndup: 2\nshared: &a {x: 1}\nuse: {<<: *a, y: 2}\n"
    fast, pure = (yamlio._compose(loader(text)) for loader in (yaml.CSafeLoader, yaml.SafeLoader))
    assert (fast.data, fast.keys, fast.values, fast.problems) == (
        pure.data, pure.keys, pure.values, pure.problems)
    assert fast.problems and fast.data["use"] == {"x": 1, "y": 2}


def test_demo_structure() -> None:
    p = load_production(ROOT / "config/productions/demo.yaml")
    names = [t.name for t in p.transformations]
    assert names == ["process_gamma", "process_proton", "merge_gamma", "merge_proton",
                     "train_classifier", "apply_gamma"]
    train, apply = p.transformation("train_classifier"), p.transformation("apply_gamma")
    assert train.input.from_ == ["merge_gamma", "merge_proton"]
    assert train.grouping.plugin == "all"
    assert apply.job.side_inputs == {"model": "train_classifier"}
    assert apply.all_parents == ["merge_gamma", "train_classifier"]
    assert p.defaults.sites == ["local"] and p.defaults.storage == "LOCAL-DISK"
    assert all(t.job.command[:3] == ["python", "-m", "ctaoflow.demo.payload"]
               for t in p.transformations)


def test_seeds_structure() -> None:
    seeds = {name: load_production(ROOT / f"config/productions/seeds_{name}.yaml")
             for name in ("dl0_to_dl2", "merge", "train_energy", "train_classifier", "apply")}
    assert [len(p.transformations) for p in seeds.values()] == [7, 21, 3, 1, 4]
    process, merge = seeds["dl0_to_dl2"], seeds["merge"]
    # CTADIRAC's grouping: 5 DL0 files per job, one DL2 per DL0
    assert {t.grouping.group_size for t in process.transformations} == {5}
    assert {(o.name, o.per_input) for t in process.transformations for o in t.outputs} == {
        ("{input_stem}.DL2.h5", True)}
    assert {t.job.command[2:] == ["{inputs}", "{output}"] for t in process.transformations} == {True}
    assert [t.grouping.group_size for t in merge.transformations[:3]] == [50, 25, 10000]
    assert [t.outputs[0].metadata["merged"] for t in merge.transformations[:3]] == [1, 2, 3]
    # the productions name no other: each reads the previous one's outputs by query
    firsts = [merge.transformations[0], seeds["train_energy"].transformations[0],
              *seeds["train_classifier"].transformations, *seeds["apply"].transformations]
    assert all(t.input.query and not t.input.from_ for t in firsts)
    assert process.transformations[6].input.query == {
        "MCCampaign": "PROD6", "array_layout": "Alpha", "site": "LaPalma", "thetaP": 20,
        "phiP": 180, "data_level": 0, "outputType": "Data", "particle": "electron",
        "split": "test"}
    apply = seeds["apply"].transformation("apply_gamma_test")
    assert apply.job.side_inputs["classifier_model"]["outputType"] == "Model"
    assert apply.all_parents == []  # its models come by query, from another production
    assert seeds["train_classifier"].transformations[0].job.side_inputs["background"][
        "particle"] == "proton"


def test_mc_structure() -> None:
    p = load_production(ROOT / "config/productions/mc_simulation.yaml")
    sim = p.transformations[0]
    assert sim.type == "mc_simulation" and sim.runs.count == 20 and sim.input is None
    assert [t.input.from_ for t in p.transformations[1:]] == [["simulate_gamma"],
                                                              ["process_gamma"]]


# -- reading and YAML ----------------------------------------------------------------

def test_syntax_error_at_parser_position(check) -> None:
    assert check("production: t\ntransformations: [a, b\nx: 1\n") == [
        ("f.yaml:3:2: (syntax): expected ',' or ']', but got ':' (while parsing a flow "
         "sequence at line 2); close the bracket opened on that line, or quote values "
         "containing ':' or ','")]


def test_tab_indentation(check) -> None:
    assert check("production: t\n\ttransformations: []\n") == [
        ("f.yaml:2:1: (syntax): found character '\\t' that cannot start any token; indent "
         "with spaces, not tabs")]


def test_duplicate_keys_reported_at_second(check) -> None:
    errors = check(HEAD + PROCESS.replace("    type: processing\n",
                                          "    type: processing\n    type: merging\n"))
    assert errors == [("f.yaml:5:5: transformations.0.type: duplicate key (first written at "
                       "line 4); keep only one of them")]


def test_missing_file_and_not_a_mapping(check, tmp_path: Path) -> None:
    assert validate_files(["nope.yaml"]) == [
        "nope.yaml:1:1: (file): cannot read: No such file or directory; check the path"]
    assert check("- a\n- b\n") == [
        ("f.yaml:1:1: (document): expected a mapping with 'production:' and "
         "'transformations:', got a list; start the file with 'production: <name>'")]


def test_python_tags_are_refused(check, tmp_path: Path) -> None:
    assert check("production: !!python/object/apply:os.system ['touch pwned']\n") == [
        ("f.yaml:1:13: (syntax): the tag 'tag:yaml.org,2002:python/object/apply:os.system' is "
         "not allowed; remove it: only plain YAML values are allowed")]
    assert check("production: !!python/name:os.system\n") == [
        ("f.yaml:1:13: (syntax): could not determine a constructor for the tag "
         "'tag:yaml.org,2002:python/name:os.system'; remove the tag: only plain YAML values "
         "are allowed")]
    assert not (tmp_path / "pwned").exists()


def test_alias_bomb_is_refused_fast(check) -> None:
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        previous, name = chr(ord("a") + i - 1), chr(ord("a") + i)
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{previous}"] * 10) + "]")
    start = time.perf_counter()
    errors = check("\n".join(lines) + "\n")
    assert time.perf_counter() - start < 2
    assert len(errors) == 1 and f"aliases repeat more than {MAX_VALUES} values" in errors[0]


def test_recursive_alias_and_deep_nesting(check) -> None:
    assert check("production: &p [*p]\n") == [
        ("f.yaml:1:13: (syntax): an alias refers to a mapping or list that contains it; "
         "remove the recursive alias")]
    start = time.perf_counter()
    assert check("x: " + "[" * 100_000 + "]" * 100_000 + "\n") == [
        "f.yaml:1:1: (syntax): nested deeper than 64 levels; flatten the document"]
    assert time.perf_counter() - start < 1


def test_huge_file_is_refused(check) -> None:
    assert check("a: " + "x" * MAX_BYTES + "\n") == [
        (f"f.yaml:1:1: (file): larger than {MAX_BYTES} bytes; a spec or sites file is a few "
         "kB: check that this is the right file")]


def test_endless_or_huge_sources_are_refused_before_reading(check, tmp_path: Path) -> None:
    sparse = tmp_path / "sparse.yaml"
    with sparse.open("wb") as file:
        file.truncate(50 * 2**30)  # 50 GB of holes: reading it would take minutes
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)  # no writer: opening it for a blocking read would hang
    assert validate_files([sparse, fifo, "/dev/zero", tmp_path]) == [
        (f"{sparse}:1:1: (file): larger than {MAX_BYTES} bytes; a spec or sites file is a few "
         "kB: check that this is the right file"),
        f"{fifo}:1:1: (file): not a regular file; give the path of a YAML file",
        "/dev/zero:1:1: (file): not a regular file; give the path of a YAML file",
        f"{tmp_path}:1:1: (file): not a regular file; give the path of a YAML file"]


def test_a_file_growing_after_its_size_was_taken_is_cut_at_the_limit(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "f.yaml"
    path.write_text("production: " + "x" * 100)
    real_fstat = os.fstat
    monkeypatch.setattr(yamlio.os, "fstat", lambda fd: types.SimpleNamespace(
        st_mode=real_fstat(fd).st_mode, st_size=0))  # it was empty when looked at
    with pytest.raises(yamlio.UnreadableFile, match="larger than 10 bytes"):
        yamlio.read_bounded(path, 10)


def test_yaml_surprises_get_a_quoting_fix(check) -> None:
    text = HEAD + PROCESS.replace("particle: gamma}", "night: 2024-01-01}").replace(
        "    type: processing\n", "    type: processing\n    on: 1\n")
    assert check(text) == [
        ("f.yaml:5:5: transformations.0.True: a key must be text, not the boolean true; quote "
         "it: YAML reads unquoted yes/no/on/off/true/false as a boolean"),
        ("f.yaml:7:39: transformations.0.input.query.night: got a date (2024-01-01); quote "
         "it: '2024-01-01'")]


def test_merge_keys_keep_positions(check) -> None:
    text = HEAD + PROCESS + """\
  - name: merge
    type: merging
    input: {from: process}
    grouping: &g {plugin: standard, group_sise: 5}
    job: {command: [merge, "{inputs}", "{output}"]}
    outputs: [{name: "m_{task}.h5"}]
  - <<: &base {type: merging, input: {from: merge}}
    name: merge2
    grouping: *g
    job: {command: [merge, "{inputs}", "{output}"]}
    outputs: [{name: "m_{task}.h5"}]
"""
    assert check(text) == [
        ("f.yaml:15:37: transformations.1.grouping.group_sise: unknown key; did you mean "
         "'group_size'?"),
        ("f.yaml:15:37: transformations.2.grouping.group_sise: unknown key; did you mean "
         "'group_size'?")]


# -- shapes (pydantic) ---------------------------------------------------------------

def test_unknown_key_did_you_mean(check) -> None:
    text = HEAD + PROCESS.replace("    job:\n", "    grouping:\n      group_sise: 5\n    job:\n")
    assert check(text) == [("f.yaml:8:7: transformations.0.grouping.group_sise: unknown key; "
                            "did you mean 'group_size'?")]


def test_unknown_key_lists_allowed(check) -> None:
    assert check(HEAD.replace("production: t\n", "production: t\nflavour: x\n") + PROCESS) == [
        ("f.yaml:2:1: flavour: unknown key; allowed here: production, description, scope, "
         "lfn_base, schedule, tags, common, defaults, nightly, transformations")]


def test_missing_key_at_parent(check) -> None:
    assert check(HEAD + "  - name: a\n    type: processing\n    input: {query: {x: 1}}\n"
                 "    outputs: [{name: 'a{task}'}]\n") == [
        "f.yaml:3:5: transformations.0.job: required key missing; add 'job:' here"]


def test_wrong_types(check) -> None:
    text = HEAD + PROCESS + "    sites: local\n    max_attempts: many\n"
    assert check(text) == [
        ("f.yaml:12:12: transformations.0.sites: expected a list, got the text 'local'; "
         "write [local]"),
        ("f.yaml:13:19: transformations.0.max_attempts: expected a whole number, got the "
         "text 'many'; write a whole number, e.g. 5")]


def test_union_value_of_wrong_kind(check) -> None:
    text = HEAD + PROCESS.replace("particle: gamma}", "particle: null, zenith: {'>=': {a: 1}}}")
    assert check(text) == [
        ("f.yaml:6:42: transformations.0.input.query.particle: got nothing (null); write "
         "text, a number, true/false, a list or a mapping"),
        ("f.yaml:6:63: transformations.0.input.query.zenith.>=: got a mapping; write text, a "
         "number, true/false or a list")]


def test_literal_and_pattern_and_validator(check) -> None:
    text = HEAD + PROCESS.replace("type: processing", "type: proc").replace(
        "name: process", "name: 2process") + "    job_x: 1\n"
    text = text.replace('"{inputs}"]', '"{inputs}"]\n      resources: {memory: 2 gigs}')
    assert check(text) == [
        ("f.yaml:3:11: transformations.0.name: '2process' is not a valid name; start with a "
         "letter, then letters, digits, '_' or '-' (63 at most), e.g. 'process_gamma'"),
        ("f.yaml:4:11: transformations.0.type: 'proc' is not allowed; did you mean "
         "'processing'? (allowed: mc_simulation, processing, merging, training, "
         "apply_models, command)"),
        ("f.yaml:9:27: transformations.0.job.resources.memory: bad memory '2 gigs'; write "
         "e.g. 2GB or 500MB"),
        "f.yaml:13:5: transformations.0.job_x: unknown key; did you mean 'job'?"]


def test_shape_errors_do_not_hide_semantic_errors(check) -> None:
    text = HEAD + PROCESS.replace("type: processing", "type: proc") + """\
  - name: merge
    type: merging
    input: {from: procss}
    job: {command: [merge, "{inputs}", "{output}"]}
    outputs: [{name: "m_{task}.h5"}]
"""
    errors = check(text)
    assert len(errors) == 2
    assert errors[1] == ("f.yaml:14:19: transformations.1.input.from: unknown transformation "
                         "'procss'; did you mean 'process'?")


# -- semantics -----------------------------------------------------------------------

def child(body: str) -> str:
    return HEAD + PROCESS + textwrap.indent(textwrap.dedent(body), "  ")


def test_duplicate_names(check) -> None:
    assert check(HEAD + PROCESS + PROCESS) == [
        ("f.yaml:12:11: transformations.1.name: duplicate transformation name 'process' "
         "(also transformations.0, line 3); give each transformation its own name")]


def test_unknown_parents_everywhere(check) -> None:
    assert check(child("""\
        - name: apply
          type: apply_models
          input: {from: [procss]}
          parents: [zzz]
          job:
            command: [apply, "{model}", "{inputs}", "{output}"]
            side_inputs: {model: proces}
          outputs: [{name: "a_{task}.h5"}]
        """)) == [
        ("f.yaml:14:20: transformations.1.input.from.0: unknown transformation 'procss'; "
         "did you mean 'process'?"),
        ("f.yaml:15:15: transformations.1.parents.0: unknown transformation 'zzz'; write the "
         "name of a transformation of this production"),
        ("f.yaml:18:28: transformations.1.job.side_inputs.model: unknown transformation "
         "'proces'; did you mean 'process'?")]


def test_self_reference(check) -> None:
    assert check(child("""\
        - name: merge
          type: merging
          input: {from: merge}
          job: {command: [merge, "{inputs}", "{output}"]}
          outputs: [{name: "m_{task}.h5"}]
        """)) == [("f.yaml:14:19: transformations.1.input.from: 'merge' is this "
                   "transformation itself; name a parent transformation")]


def test_cycle_is_named(check) -> None:
    body = textwrap.dedent("""\
        - name: {name}
          type: merging
          input: {{from: {parent}}}
          job: {{command: [merge, "{{inputs}}", "{{output}}"]}}
          outputs: [{{name: "m_{{task}}.h5"}}]
        """)
    errors = check(child(body.format(name="a", parent="c") + body.format(name="b", parent="a")
                         + body.format(name="c", parent="b")))
    assert errors == [("f.yaml:14:19: transformations.1.input.from: dependency cycle "
                       "a -> b -> c -> a; remove one of these links")]


def test_kinds(check) -> None:
    assert check(HEAD + """\
  - name: sim
    type: mc_simulation
    input: {query: {a: 1}}
    grouping: {group_size: 2}
    job: {command: [sim, "{input}", "{output}"]}
    outputs: [{name: "s.h5"}]
  - name: proc
    type: processing
    runs: {count: 3}
    job: {command: [p, "{output}"]}
    outputs: [{name: "p_{task}.h5"}]
  - name: all_files
    input: {}
    job: {command: [p, "{output}"]}
    outputs: [{name: "p_{task}.h5"}]
""") == [
        ("f.yaml:3:5: transformations.0.runs: an mc_simulation needs runs; add "
         "'runs: {count: 100}' (one job per run number)"),
        ("f.yaml:5:5: transformations.0.input: an mc_simulation reads no input; remove "
         "'input' (its jobs come from 'runs')"),
        ("f.yaml:6:5: transformations.0.grouping: an mc_simulation has no input files to "
         "group; remove 'grouping'"),
        ("f.yaml:7:26: transformations.0.job.command.1: an mc_simulation has no input files; "
         "remove {inputs} and {input} (use {run} for the run number)"),
        ("f.yaml:8:22: transformations.0.outputs.0.name: every task would write the same "
         "file name 's.h5'; add {task}, e.g. '{transformation}_{task:06d}.h5'"),
        ("f.yaml:9:5: transformations.1.input: a processing transformation needs input; add "
         "'input: {from: <parent>}' or a catalog query"),
        ("f.yaml:11:5: transformations.1.runs: only an mc_simulation has runs; remove "
         "'runs' or set 'type: mc_simulation'"),
        ("f.yaml:15:5: transformations.2.input: selects every file of the catalog; add "
         "'from: <parent>' or a 'query:'")]


def test_query_never_matches_parent(check) -> None:
    assert check(child("""\
        - name: merge
          type: merging
          input:
            from: process
            query: {particle: proton, data_level: {in: [DL1, DL2]}, zenith: 20}
          job: {command: [merge, "{inputs}", "{output}"]}
          outputs: [{name: "m_{task}.h5"}]
        """)) == [
        ("f.yaml:16:15: transformations.1.input.query.particle: never matches the outputs of "
         "'process': they carry particle='gamma', this asks particle = 'proton'; change the "
         "condition or remove 'process' from 'from'")]


def test_bad_query_operator(check) -> None:
    assert check(HEAD + PROCESS.replace("particle: gamma}", "zenith: {gte: 20}}")) == [
        ("f.yaml:6:32: transformations.0.input.query.zenith: unknown operator 'gte'; use one "
         "of = != > < >= <= in nin")]


def test_placeholders(check) -> None:
    text = HEAD + PROCESS.replace(
        '[run, --output, "{output}", "{inputs}"]',
        '[run, "--in={inputs}", "{outptu}", "{group}", "{production:04d}", "{a.b}", "x}", '
        "'${#1}'" + ']'
    ).replace('"{particle}_{task:04d}.h5"', '"{particle}_{zenith}_{task:04d}.h5"')
    assert check(text) == [
        ("f.yaml:8:22: transformations.0.job.command.1: {inputs} expands to one argument per "
         "input file and must stand alone; write it as its own item instead of '--in={inputs}'"),
        ("f.yaml:8:39: transformations.0.job.command.2: unknown placeholder {outptu}; did "
         "you mean {output}?"),
        ("f.yaml:8:51: transformations.0.job.command.3: unknown placeholder {group}; known: "
         "{input}, {inputs}, {output}, {production}, {task}, {transformation}"),
        ("f.yaml:8:62: transformations.0.job.command.4: format ':04d' does not fit "
         "{production} (the text 't'); fix or remove the format"),
        ("f.yaml:8:82: transformations.0.job.command.5: placeholder {a.b} uses attribute or "
         "item access; write a plain name"),
        ("f.yaml:8:91: transformations.0.job.command.6: unbalanced brace in 'x}'; write '{{' "
         "or '}}' for a literal brace"),
        ("f.yaml:8:97: transformations.0.job.command.7: unknown placeholder {#1}; known: "
         "{input}, {inputs}, {output}, {production}, {task}, {transformation}; for a literal "
         "brace write {{#1}}"),
        ("f.yaml:10:15: transformations.0.outputs.0.name: unknown placeholder {zenith}; known: "
         "{data_level}, {particle}, {production}, {task}, {transformation}")]


def test_placeholder_name_clashes(check) -> None:
    text = HEAD + PROCESS.replace('"{inputs}"]', '"{inputs}"]\n      parameters: {task: 1, output: 2}')
    assert check(text) == [
        ("f.yaml:9:20: transformations.0.job.parameters.task: parameter 'task' hides the "
         "built-in placeholder {task}; rename it"),
        ("f.yaml:9:29: transformations.0.job.parameters.output: parameter 'output' clashes "
         "with the output key of the same name; rename one of them")]


def test_grouping_contradictions(check) -> None:
    text = HEAD + PROCESS.replace("    job:\n", "    grouping: {plugin: by_size, group_size: 3, "
                                  "key: run}\n    job:\n")
    assert check(text) == [
        ("f.yaml:7:5: transformations.0.grouping.size_gb: plugin by_size needs a target size; "
         "add 'size_gb: 10' (GB per task)"),
        ("f.yaml:7:33: transformations.0.grouping.group_size: not used by plugin by_size; "
         "remove it (use size_gb and max_files)"),
        ("f.yaml:7:48: transformations.0.grouping.key: only used by plugin by_metadata; "
         "remove it or set 'plugin: by_metadata'")]
    text = HEAD + PROCESS.replace("    job:\n", "    grouping: {plugin: by_metadata}\n    job:\n")
    assert check(text) == [
        ("f.yaml:7:5: transformations.0.grouping.key: plugin by_metadata needs the key to "
         "group on; add e.g. 'key: run'")]


def test_by_metadata_group_names_and_all(check) -> None:
    text = HEAD + PROCESS.replace("    job:\n", "    grouping: {plugin: by_metadata, key: run}"
                                  "\n    job:\n").replace("{particle}_{task:04d}", "run{run}")
    assert check(text) == []
    text = HEAD + PROCESS.replace("    job:\n", "    grouping: {plugin: all, group_size: 2}"
                                  "\n    job:\n").replace("{particle}_{task:04d}", "model")
    assert check(text) == [("f.yaml:7:29: transformations.0.grouping.group_size: not used by "
                            "plugin all; remove it (plugin all puts every file in one task)")]


def test_outputs(check) -> None:
    text = HEAD + PROCESS + """\
      - name: "{particle}_{task:04d}.h5"
      - key: log
        name: "sub/{task}.log"
      - key: log
        name: "x.log"
"""
    assert check(text) == [
        ("f.yaml:12:9: transformations.0.outputs.1.key: duplicate output key 'output' (also "
         "outputs.0); give each output its own key"),
        ("f.yaml:12:15: transformations.0.outputs.1.name: duplicate output name "
         "'{particle}_{task:04d}.h5' (also outputs.0); give each output its own name"),
        ("f.yaml:14:15: transformations.0.outputs.2.name: an output name is a file name, not "
         "a path; remove the '/'"),
        ("f.yaml:15:14: transformations.0.outputs.3.key: duplicate output key 'log' (also "
         "outputs.2); give each output its own key"),
        ("f.yaml:16:15: transformations.0.outputs.3.name: every task would write the same "
         "file name 'x.log'; add {task}, e.g. '{transformation}_{task:06d}.h5'")]


def test_sites(check, tmp_path: Path) -> None:
    (tmp_path / "sites.yaml").write_text("sites:\n  local: {backend: local}\n"
                                         "  CSCS-slurm: {backend: slurm}\n")
    text = HEAD.replace("production: t\n", "production: t\ndefaults: {sites: [locl]}\n") + \
        PROCESS + "    sites: [CSCS, PIC]\n"
    assert check(text, "sites.yaml") == [
        "f.yaml:2:20: defaults.sites.0: unknown site 'locl'; did you mean 'local'?",
        ("f.yaml:13:13: transformations.0.sites.0: unknown site 'CSCS'; did you mean "
         "'CSCS-slurm'?"),
        ("f.yaml:13:19: transformations.0.sites.1: unknown site 'PIC'; known sites: "
         "CSCS-slurm, local")]
    assert check(HEAD + PROCESS, {"local"}) == []
    assert load_site_names(tmp_path / "sites.yaml") == {"local", "CSCS-slurm"}


def test_bad_sites_file(tmp_path: Path) -> None:
    (tmp_path / "sites.yaml").write_text("sites: []\n")
    errors = validate_files([EXAMPLES[0]], tmp_path / "sites.yaml")
    assert errors == [(f"{tmp_path / 'sites.yaml'}:1:1: sites: expected a 'sites:' mapping of "
                      "site names, got a list; write 'sites: {local: {backend: local}}'")]


def test_lfn_base_placeholders(check) -> None:
    assert check(HEAD.replace("production: t\n", "production: t\nlfn_base: /ctao/{scpe}\n")
                 + PROCESS) == [("f.yaml:2:11: lfn_base: unknown placeholder {scpe}; did you "
                                 "mean {scope}?")]


# -- the API -------------------------------------------------------------------------

def test_load_production_raises_all_errors(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(HEAD + PROCESS + "    sites: 3\n" + PROCESS.replace(
        "name: process", "name: other").replace("{inputs}", "{inputz}"))
    with pytest.raises(SpecError) as info:
        load_production(path)
    text = str(info.value)
    assert "Traceback" not in text and "pydantic" not in text and "For further" not in text
    assert text.splitlines() == info.value.errors == [
        f"{path}:12:12: transformations.0.sites: expected a list, got the number 3; write [3]",
        (f"{path}:18:44: transformations.1.job.command.3: unknown placeholder {{inputz}}; "
        "did you mean {input}?")]


# -- what could escape, what no command line carries, what cannot run ----------------

NAME_RULE = ("is not a valid name; start with a letter or digit, then letters, digits, '.', "
             "'_' or '-' (63 at most), e.g. 'LOCAL-DISK'")


def test_storage_and_site_names_cannot_escape(check) -> None:
    text = HEAD.replace("production: t\n", "production: t\ndefaults: {storage: ../up, "
                        "sites: [a/b]}\n") + PROCESS + "    storage: /abs\n    sites: ['..']\n"
    assert check(text) == [
        f"f.yaml:2:21: defaults.storage: '../up' {NAME_RULE}",
        f"f.yaml:2:36: defaults.sites.0: 'a/b' {NAME_RULE}",
        f"f.yaml:13:14: transformations.0.storage: '/abs' {NAME_RULE}",
        f"f.yaml:14:13: transformations.0.sites.0: '..' {NAME_RULE}"]


@pytest.mark.parametrize("base", ["/ctao/../{production}", "/ctao//x", "/ctao/./x", "ctao/x"])
def test_lfn_base_is_a_plain_absolute_path(check, base: str) -> None:
    (error,) = check(HEAD.replace("production: t\n", f"production: t\nlfn_base: {base}\n")
                     + PROCESS)
    assert error.startswith(f"f.yaml:2:11: lfn_base: '{base}' ")


def test_output_name_is_a_file_name(check) -> None:
    assert check(HEAD + PROCESS.replace('"{particle}_{task:04d}.h5"', '".."')) == [
        ("f.yaml:10:15: transformations.0.outputs.0.name: '..' is not a file name; write "
         "e.g. '{transformation}_{task:06d}.h5'")]


def test_control_characters_anywhere_but_free_text(check) -> None:
    text = HEAD.replace("production: t\n", 'production: t\ndescription: "a\\tb\\nc"\n'
                        'common: {site: "x\\0y", "k\\x1b": 1}\n') + PROCESS.replace(
        "      command: [run,", '      parameters: {p: "a\\x01"}\n      command: ["r\\0un",')
    carry = "which no command line or file name can carry; remove it"
    assert check(text) == [
        f"f.yaml:3:16: common.site: the value holds the control character '\\x00', {carry}",
        f"f.yaml:3:24: common.k\\x1b: the key holds the control character '\\x1b', {carry}",
        (f"f.yaml:10:23: transformations.0.job.parameters.p: the value holds the control "
         f"character '\\x01', {carry}"),
        (f"f.yaml:11:17: transformations.0.job.command.0: the value holds the control "
         f"character '\\x00', {carry}")]


@pytest.mark.parametrize("schedule, reason", [
    ("every day", "2 fields, not 5"), ("* * * * * *", "6 fields, not 5"),
    ("60 * * * *", "[60 * * * *] is not acceptable, out of range")])
def test_schedule_is_a_cron_expression(check, schedule: str, reason: str) -> None:
    text = HEAD.replace("production: t\n", f"production: t\nschedule: '{schedule}'\n") + PROCESS
    assert check(text) == [
        (f"f.yaml:2:11: schedule: '{schedule}' is not a cron expression ({reason}); write 5 "
         "fields, 'minute hour day month weekday' (e.g. '*/30 * * * *'), or a preset: @once, "
         "@continuous, @hourly, @daily, @weekly, @monthly, @quarterly, @yearly")]


@pytest.mark.parametrize("schedule", ["'*/30 * * * *'", "'@daily'", "'@once'", "null"])
def test_good_schedules(check, schedule: str) -> None:
    assert check(HEAD.replace("production: t\n", f"production: t\nschedule: {schedule}\n")
                 + PROCESS) == []


def test_resources_must_be_positive_and_sites_not_empty(check) -> None:
    text = HEAD.replace("production: t\n", "production: t\ndefaults: {sites: [], resources: "
                        "{memory: 0, walltime: 0m, cores: 0}}\n") + PROCESS.replace(
        "      command:", "      resources: {memory: 0GB, walltime: -5, cores: true}\n"
        "      command:") + "    sites: []\n"
    assert check(text) == [
        "f.yaml:2:19: defaults.sites: must not be empty; write at least 1 item(s)",
        "f.yaml:2:43: defaults.resources.memory: memory 0 is not positive; write e.g. 2GB or 500MB",
        ("f.yaml:2:56: defaults.resources.walltime: walltime '0m' is not positive; write e.g. "
         "90m, 2h or 01:30:00"),
        "f.yaml:2:67: defaults.resources.cores: 0 is too small; write a number >= 1",
        ("f.yaml:9:27: transformations.0.job.resources.memory: memory '0GB' is not positive; "
         "write e.g. 2GB or 500MB"),
        ("f.yaml:9:42: transformations.0.job.resources.walltime: walltime -5 is not positive; "
         "write e.g. 90m, 2h or 01:30:00"),
        ("f.yaml:9:53: transformations.0.job.resources.cores: expected a number, got the "
         "boolean true; write e.g. 'cores: 4', 'memory: 2GB', 'walltime: 2h'"),
        "f.yaml:14:12: transformations.0.sites: must not be empty; write at least 1 item(s)"]


def test_a_production_name_used_by_two_files_names_both(tmp_path: Path) -> None:
    a, b, c = (tmp_path / name for name in ("a.yaml", "b.yaml", "c.yaml"))
    a.write_text(HEAD + PROCESS)
    b.write_text("# the same production again\n" + HEAD + PROCESS)
    c.write_text(HEAD.replace("production: t", "production: other") + PROCESS)
    assert validate_files([a, b, c]) == [
        (f"{a}:1:13: production: production 't' is also defined in {b}; give each "
         "production its own name"),
        (f"{b}:2:13: production: production 't' is also defined in {a}; give each "
         "production its own name")]
    assert validate_files([a, a, c]) == []


# -- long and wide specs ---------------------------------------------------------------

def chain(length: int, cycle: bool = False) -> str:
    """A production of ``length`` transformations, each reading the previous one."""
    lines = [HEAD]
    for i in range(length):
        source = (f"from: t{length - 1}" if cycle else "query: {particle: gamma}") if i == 0 \
            else f"from: t{i - 1}"
        lines.append(f"  - {{name: t{i}, type: processing, input: {{{source}}}, job: "
                     f"{{command: [run, \"{{output}}\", \"{{inputs}}\"]}}, outputs: [{{name: "
                     f"\"{{particle}}_{{task}}.h5\"}}]}}\n")
    return "".join(lines)


def test_a_chain_longer_than_the_recursion_limit_validates(check) -> None:
    length = sys.getrecursionlimit() + 200
    text = chain(length).replace(f"input: {{from: t{length - 2}}}",
                                 f"input: {{from: t{length - 2}, query: {{particle: proton}}}}")
    column = text.splitlines()[-1].index("particle: proton") + 1
    assert check(text) == [
        (f"f.yaml:{length + 2}:{column}: transformations.{length - 1}.input.query.particle: "
         f"never matches the outputs of 't{length - 2}': they carry particle='gamma', this "
         f"asks particle = 'proton'; change the condition or remove 't{length - 2}' from "
         "'from'")]


def test_a_cycle_longer_than_the_recursion_limit_is_one_line(check) -> None:
    length = sys.getrecursionlimit() + 200
    (error,) = check(chain(length, cycle=True))
    names = " -> ".join(f"t{i}" for i in [*range(length), 0])
    assert error == (f"f.yaml:3:48: transformations.0.input.from: dependency cycle {names}; "
                     "remove one of these links")


def test_graph_order_of_a_long_chain_keeps_parents_first(tmp_path: Path) -> None:
    length = sys.getrecursionlimit() + 200
    path = tmp_path / "f.yaml"
    path.write_text(chain(length))
    order = [t.name for t in topological_order(load_production(path))]
    assert order == [f"t{i}" for i in range(length)]


def test_what_airflow_or_a_process_would_refuse_later(check) -> None:
    text = HEAD.replace("production: t\n", "production: t\ntags: [ok, '" + "x" * 101 + "', '']\n"
                        "common: {w: .nan}\ndefaults: {poll_interval: .inf}\n") + PROCESS.replace(
        "      command:", "      env: {A=B: x, GOOD_1: y, 1X: z}\n      command:")
    rule = "is not a valid name; use letters, digits and '_', not starting with a digit"
    assert check(text) == [
        "f.yaml:2:12: tags.1: longer than 100 characters; shorten it",
        "f.yaml:2:117: tags.2: must not be empty; write some text",
        "f.yaml:3:13: common.w: nan is not a finite number; write a plain number",
        "f.yaml:4:27: defaults.poll_interval: inf is not a finite number; write a plain number",
        f"f.yaml:11:13: transformations.0.job.env.A=B: 'A=B' {rule}",
        f"f.yaml:11:32: transformations.0.job.env.1X: '1X' {rule}"]


def test_deep_block_nesting_is_one_line(check) -> None:
    text = "".join("  " * i + "a:\n" for i in range(1000)) + "  " * 1000 + "b: 1\n"
    assert check(text) == [
        "f.yaml:1:1: (syntax): nested deeper than 64 levels; flatten the document"]


@pytest.mark.parametrize("name", ["sync", "report"])
def test_a_transformation_cannot_take_the_name_of_a_production_task(check, name: str) -> None:
    assert check(HEAD + PROCESS.replace("name: process", f"name: {name}")) == [
        (f"f.yaml:3:11: transformations.0.name: '{name}' is the name of the production's own "
         f"{name} task in Airflow; rename the transformation")]


def test_values_written_in_the_spec_cannot_move_an_output_or_overflow_an_argument(check) -> None:
    text = HEAD.replace("production: t\n", "production: t\ncommon: {particle: '../../etc'}\n") + \
        PROCESS.replace("command: [run,", "command: [run, '" + "x" * 140_000 + "',")
    assert check(text) == [
        ("f.yaml:9:22: transformations.0.job.command.1: 140000 bytes long, more than a command "
         "line argument may hold (131072); pass a file instead"),
        ("f.yaml:11:15: transformations.0.outputs.0.name: {particle} is '../../etc' here, which "
         "would put the file outside its folder; remove {particle} from the name or change "
         "that value")]


def test_many_unknown_names_get_a_bounded_search_for_suggestions(
        check, monkeypatch: pytest.MonkeyPatch) -> None:
    searched: list[str] = []
    real = messages.difflib.get_close_matches
    monkeypatch.setattr(messages.difflib, "get_close_matches",
                        lambda word, *args, **kwargs: searched.append(word) or real(
                            word, *args, **kwargs))
    length = 500
    errors = check(chain(length).replace("{from: t", "{from: x").replace(
        "{from: x0}", "{from: T0}"))
    assert len(errors) == length - 1 and len(searched) <= 50
    assert errors[0].endswith("unknown transformation 'T0'; did you mean 't0'?")
    assert errors[-1].endswith(f"unknown transformation 'x{length - 2}'; write the name of a "
                               "transformation of this production")


def test_an_output_name_longer_than_a_file_name_may_be(check) -> None:
    name = "{task}_" + "x" * 250
    assert check(HEAD + PROCESS.replace('"{particle}_{task:04d}.h5"', f'"{name}"')) == [
        ("f.yaml:10:15: transformations.0.outputs.0.name: 257 bytes long, more than a file "
         "name may be (255); shorten it")]


def test_a_value_yaml_types_but_python_cannot_build_is_one_line(check) -> None:
    assert check("production: t\nx: 1" + "0" * 5000 + "\n") == [
        ("f.yaml:2:4: (syntax): cannot read the value (Exceeds the limit (4300 digits) for "
         "integer string conversion); quote it to keep it as text, or fix it")]
    assert check("production: t\ncommon: {night: 2024-13-45}\n") == [
        ("f.yaml:2:17: (syntax): cannot read the value (month must be in 1..12); quote it to "
         "keep it as text, or fix it")]


def test_a_format_width_that_would_fill_memory_is_refused(check) -> None:
    text = HEAD + PROCESS.replace('"{particle}_{task:04d}.h5"', '"{task:99999999999d}"').replace(
        '"{output}"', '"{output:>999999}"')
    assert check(text) == [
        ("f.yaml:8:32: transformations.0.job.command.2: placeholder {output:>999999} asks for "
         "more than 255 characters; write a width such as :06d"),
        ("f.yaml:10:15: transformations.0.outputs.0.name: placeholder {task:99999999999d} asks "
         "for more than 255 characters; write a width such as :06d")]


def test_an_empty_program_is_one_line(check) -> None:
    assert check(HEAD + PROCESS.replace("command: [run,", "command: ['',")) == [
        ("f.yaml:8:17: transformations.0.job.command.0: the program to run is empty; write its "
         "name or path first, e.g. [ctapipe-process]")]


def test_a_poll_interval_that_would_poll_without_pause_is_refused(check) -> None:
    assert check("production: t\ndefaults: {poll_interval: 0.000000001}\ntransformations:\n"
                 + PROCESS) == [
        "f.yaml:2:27: defaults.poll_interval: 1e-09 is too small; write a number >= 0.1"]
