"""The ``ctaoflow`` command: validate, schema, graph, plan, render, demo; and the
operator commands status, report, reset, flush, stop, start, extend, accept, audit."""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

from ctaoflow.backends.base import BackendError
from ctaoflow.catalog.base import CatalogError
from ctaoflow.engine.ledger import LedgerError
from ctaoflow.spec.validation import SpecError, load_production, validate_files

# Airflow's execution API imports svcs, which imports starlette.testclient; with httpx
# installed rather than httpx2, Starlette then warns (a StarletteDeprecationWarning, a
# UserWarning) in the middle of our output. Nothing of ours uses that test client.
warnings.filterwarnings("ignore", r"Using `httpx` with `starlette\.testclient` is deprecated",
                        UserWarning)


def cmd_validate(args: argparse.Namespace) -> int:
    from ctaoflow.sites import SitesError, load_sites

    try:
        sites, errors = set(load_sites()), []
    except SitesError as exc:  # its lines, then the specs checked without site names
        sites, errors = None, exc.errors
    errors += validate_files(args.files, known_sites=sites)
    for line in errors:
        print(line, file=sys.stderr)
    if not errors:
        print(f"{len(args.files)} file(s) valid")
    return 1 if errors else 0


def cmd_schema(args: argparse.Namespace) -> int:
    from ctaoflow.spec.model import Production

    print(json.dumps(Production.model_json_schema(by_alias=True), indent=2))
    return 0


def cmd_graph(args: argparse.Namespace) -> int:
    from ctaoflow.spec.graph import as_mermaid, as_text

    production = load_production(args.file)
    print(as_mermaid(production) if args.mermaid else as_text(production))
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    from ctaoflow import settings
    from ctaoflow.catalog.embedded import EmbeddedCatalog
    from ctaoflow.ops.plan import plan

    production = load_production(args.file)
    catalog = EmbeddedCatalog(settings.home() / "catalog")
    print(plan(production, catalog, limit=args.limit))
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    from ctaoflow.ops.render import render

    production = load_production(args.file)
    text = render(production, Path(args.file))
    if args.output:
        _write(args, text)
    else:
        print(text, end="")
    return 0


def _write(args: argparse.Namespace, text: str) -> None:
    """Write ``text`` to ``args.output``, never over the input file."""
    output = Path(args.output)
    if output.exists() and output.samefile(args.file):
        raise ValueError(f"-o {args.output} is the input file; write to another path")
    output.write_text(text)
    print(f"wrote {args.output}")


def cmd_status(args: argparse.Namespace) -> int:
    from ctaoflow.engine import summarize
    from ctaoflow.ops.report import spec_versions, summary_table

    production = load_production(args.file)
    print(summary_table(summarize(production)))
    print("\nSpec versions:", *(f"  {line}" for line in spec_versions(production)), sep="\n")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from ctaoflow.ops import report

    text = report.RENDERERS[args.format](report.build(load_production(args.file), args.file))
    if args.output:
        _write(args, text)
    else:
        print(text)
    return 0


def cmd_reset(args: argparse.Namespace) -> int:
    from ctaoflow.ops.operations import reset

    count = reset(load_production(args.file), args.transformation, args.site,
                  args.failure_class, tuple(args.status))
    print(f"{count} file(s) back to Unused; the next run regroups them")
    return 0


def cmd_flush(args: argparse.Namespace) -> int:
    from ctaoflow.ops.operations import flush

    flush(load_production(args.file), args.transformation)
    print(f"{args.transformation}: flushed; the next run emits its partial groups")
    return 0


def cmd_stop_start(args: argparse.Namespace) -> int:
    from ctaoflow.ops import operations

    production = load_production(args.file)
    getattr(operations, args.command)(production)
    print(f"{production.production}: {'stopped' if args.command == 'stop' else 'active'}")
    return 0


def cmd_extend(args: argparse.Namespace) -> int:
    from ctaoflow.ops.operations import extend, run_count

    target = extend(load_production(args.file), args.transformation, run_count(args.runs))
    print(f"{args.transformation}: target now {target} runs")
    return 0


def cmd_accept(args: argparse.Namespace) -> int:
    from ctaoflow.engine.ledger import session_factory
    from ctaoflow.engine.versions import accept

    production = load_production(args.file)
    with session_factory().begin() as session:
        version = accept(session, production, args.reason)
        print(f"{production.production}: spec version {version.version} accepted "
              f"({version.changes or 'no change'}); the next run applies it")
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    from ctaoflow import settings
    from ctaoflow.ops.audit import audit
    from ctaoflow.backends import make_backend
    from ctaoflow.catalog.embedded import EmbeddedCatalog
    from ctaoflow.sites import load_sites

    problems = audit(load_production(args.file), EmbeddedCatalog(settings.home() / "catalog"),
                     load_sites(), make_backend)
    for line in problems:
        print(line)
    print(f"audit: {len(problems)} discrepancies" if problems else "audit clean")
    return 1 if problems else 0


def cmd_demo(args: argparse.Namespace) -> int:
    from ctaoflow.demo.run import run_demo

    return run_demo(home=args.home, keep=args.keep, full=args.full)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="ctaoflow", description=__doc__)
    sub = top.add_subparsers(dest="command", required=True)
    p = sub.add_parser("validate", help="check production YAML files; exit 1 on any error")
    p.add_argument("files", nargs="+")
    p.set_defaults(func=cmd_validate)
    p = sub.add_parser("schema", help="print the JSON Schema of a production YAML")
    p.set_defaults(func=cmd_schema)
    p = sub.add_parser("graph", help="print the transformation graph")
    p.add_argument("file")
    p.add_argument("--mermaid", action="store_true", help="as a Mermaid flowchart")
    p.set_defaults(func=cmd_graph)
    p = sub.add_parser("plan", help="show which input files would form which tasks")
    p.add_argument("file")
    p.add_argument("--limit", type=int, default=20, help="tasks shown per transformation")
    p.set_defaults(func=cmd_plan)
    p = sub.add_parser("render", help="write the production's DAG as a standalone module")
    p.add_argument("file")
    p.add_argument("-o", "--output")
    p.set_defaults(func=cmd_render)
    p = sub.add_parser("status", help="files, tasks and jobs by status from the ledger")
    p.add_argument("file")
    p.set_defaults(func=cmd_status)
    p = sub.add_parser("report", help="counts, top errors, files that need a person")
    p.add_argument("file")
    p.add_argument("--format", choices=["text", "markdown", "html"], default="text")
    p.add_argument("-o", "--output")
    p.set_defaults(func=cmd_report)
    p = sub.add_parser("reset", help="put Problematic/MaxReset files back to Unused")
    p.add_argument("file")
    p.add_argument("--transformation")
    p.add_argument("--site", help="only files whose last job ran at this site")
    p.add_argument("--class", dest="failure_class",
                   choices=["infrastructure", "data", "application"])
    p.add_argument("--status", nargs="+", default=["Problematic", "MaxReset"],
                   choices=["Problematic", "MaxReset", "Unused"])
    p.set_defaults(func=cmd_reset)
    p = sub.add_parser("flush", help="emit a transformation's partial groups at the next run")
    p.add_argument("file")
    p.add_argument("transformation")
    p.set_defaults(func=cmd_flush)
    for name, text in (("stop", "stop submitting jobs"), ("start", "resume a stopped production")):
        p = sub.add_parser(name, help=text)
        p.add_argument("file")
        p.set_defaults(func=cmd_stop_start)
    p = sub.add_parser("extend", help="add runs to an MC simulation")
    p.add_argument("file")
    p.add_argument("transformation")
    p.add_argument("runs")
    p.set_defaults(func=cmd_extend)
    p = sub.add_parser("accept", help="apply a spec change that sync refused, on purpose: "
                                      "record it as the next version, with the reason")
    p.add_argument("file", help="the production YAML with the change")
    p.add_argument("--reason", required=True, help="why; kept in the spec history")
    p.set_defaults(func=cmd_accept)
    p = sub.add_parser("audit", help="reconcile ledger, catalog and batch systems; exit 1 "
                                     "with the discrepancies")
    p.add_argument("file")
    p.set_defaults(func=cmd_audit)
    p = sub.add_parser("demo", help="run the demo production end to end through Airflow")
    p.add_argument("--home", help="state folder (default: $CTAOFLOW_HOME/demo)")
    p.add_argument("--keep", action="store_true", help="keep the previous demo state")
    p.add_argument("--full", action="store_true",
                   help="with the real services: inputs in Rucio, jobs on Slurm")
    p.set_defaults(func=cmd_demo)
    return top


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    try:
        code = args.func(args)
    except SpecError as exc:
        print(exc, file=sys.stderr)
        code = 1
    except (OSError, ValueError, CatalogError, BackendError, LedgerError) as exc:
        print(f"ctaoflow {args.command}: {exc}", file=sys.stderr)
        code = 1
    sys.exit(code)


if __name__ == "__main__":
    main()
