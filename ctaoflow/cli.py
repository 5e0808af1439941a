"""The ``ctaoflow`` command: validate, schema, graph, plan, render, import, demo; and the
operator commands status, night, report, reset, flush, stop, start, extend, accept,
audit."""

from __future__ import annotations

import argparse
import getpass
import importlib.metadata
import importlib.util
import json
import os
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from ctaoflow.backends.base import BackendError
from ctaoflow.catalog.base import CatalogError
from ctaoflow.engine.ledger import LedgerError
from ctaoflow.spec.validation import SpecError, load_production, validate_files

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from ctaoflow.catalog.base import Catalog
    from ctaoflow.connections import Resolved

# Airflow's execution API imports svcs, which imports starlette.testclient; with httpx
# installed rather than httpx2, Starlette then warns (a StarletteDeprecationWarning, a
# UserWarning) in the middle of our output. Nothing of ours uses that test client.
warnings.filterwarnings("ignore", r"Using `httpx` with `starlette\.testclient` is deprecated",
                        UserWarning)


def _resolved() -> "Resolved":
    """The ledger and catalog of the connections (``ctaoflow.connections.resolve``); Airflow's
    connection store is read too when Airflow is installed and ``$AIRFLOW_HOME`` is set."""
    from ctaoflow.connections import resolve

    lookup = None
    if os.environ.get("AIRFLOW_HOME") and importlib.util.find_spec("airflow"):
        from operators.hooks.connections import lookup
    return resolve(lookup)


def _sessions() -> "sessionmaker[Session]":
    """Sessions of the ledger the connections name."""
    from ctaoflow.engine.ledger import session_factory

    return session_factory(_resolved().ledger_url)


def _catalog() -> "Catalog":
    """The catalog the connections name."""
    from ctaoflow.connections import catalog

    return catalog(_resolved().catalog)


def _of_night(args: argparse.Namespace):
    """The production of ``args.file``; of one night (``--night``) when it is nightly."""
    from ctaoflow.spec.nights import for_night

    production = load_production(args.file)
    if production.nightly is None:
        if args.night:
            raise ValueError(f"{args.file}: --night is for nightly productions; remove it")
        return production
    if not args.night:
        raise ValueError(f"{args.file}: {production.production} is nightly; name the night "
                         "with --night YYYY-MM-DD")
    return for_night(production, args.night)


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
        for line in _notes(args.files):
            print(line)
        print(f"{len(args.files)} file(s) valid")
    return 1 if errors else 0


def _notes(files: list[str]) -> list[str]:
    """Notes on catalog queries no known production makes; the productions known are the
    files checked and the other valid YAML files of their folders."""
    from ctaoflow.spec.producers import notes

    named = {Path(f).resolve() for f in files}
    others = []
    for path in sorted({p for f in named for p in f.parent.glob("*.yaml")} - named):
        try:
            others.append(load_production(path))
        except (SpecError, OSError):
            continue
    return notes([load_production(f) for f in files], others)


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
    from ctaoflow.ops.plan import plan

    print(plan(_of_night(args), _catalog(), limit=args.limit))
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


def cmd_import(args: argparse.Namespace) -> int:
    from ctaoflow.spec.prodsteps_yaml import import_prodsteps

    text = import_prodsteps(args.file)
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

    production, sessions = _of_night(args), _sessions()
    print(summary_table(summarize(production, sessions)))
    print("\nSpec versions:", *(f"  {line}" for line in spec_versions(production, sessions)),
          sep="\n")
    return 0


def cmd_night(args: argparse.Namespace) -> int:
    from ctaoflow.ops.night import as_text, night_status

    production = load_production(args.file)
    if production.nightly is None:
        raise ValueError(f"{args.file}: {production.production} is not a nightly production "
                         "(it has no 'nightly' section)")
    status = night_status(production, args.night, ledger_url=_resolved().ledger_url)
    print(json.dumps(status, indent=2) if args.json else as_text(status))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from ctaoflow.ops import report

    text = report.RENDERERS[args.format](report.build(_of_night(args), args.file, _sessions()))
    if args.output:
        _write(args, text)
    else:
        print(text)
    return 0


def _user() -> str:
    """Who runs the command, recorded with each action: the OS user."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry and no $USER
        return "unknown"


def _acts(args: argparse.Namespace) -> dict:
    """The who/why/dry-run keywords every action takes."""
    return {"user": _user(), "reason": args.reason, "dry_run": args.dry_run,
            "sessions": _sessions()}


def cmd_reset(args: argparse.Namespace) -> int:
    from ctaoflow.ops.operations import reset

    count = reset(_of_night(args), args.transformation, args.site,
                  args.failure_class, tuple(args.status), force=args.force, **_acts(args))
    print(f"{count} file(s) would go back to Unused (dry run: nothing changed)"
          if args.dry_run else f"{count} file(s) back to Unused; the next run regroups them")
    return 0


def cmd_flush(args: argparse.Namespace) -> int:
    from ctaoflow.ops.operations import flush

    waiting = flush(_of_night(args), args.transformation, **_acts(args))
    print(f"{args.transformation}: {'would flush' if args.dry_run else 'flushed'}; the next "
          f"run emits its partial groups ({waiting} file(s) waiting)")
    return 0


def cmd_stop_start(args: argparse.Namespace) -> int:
    from ctaoflow.ops import operations

    production = _of_night(args)
    changed = getattr(operations, args.command)(production, **_acts(args))
    state = "stopped" if args.command == "stop" else "active"
    print(f"{production.production}: {changed} transformation(s) would become {state} "
          "(dry run: nothing changed)" if args.dry_run else f"{production.production}: {state}")
    return 0


def cmd_extend(args: argparse.Namespace) -> int:
    from ctaoflow.ops.operations import extend, run_count

    target = extend(load_production(args.file), args.transformation, run_count(args.runs),
                    **_acts(args))
    print(f"{args.transformation}: target {'would be' if args.dry_run else 'now'} "
          f"{target} runs")
    return 0


def cmd_accept(args: argparse.Namespace) -> int:
    from ctaoflow.ops.operations import accept

    production = load_production(args.file)
    version, changes = accept(production, args.reason, _sessions(), user=_user(),
                              dry_run=args.dry_run)
    print(f"{production.production}: spec version {version} "
          f"{'would be ' if args.dry_run else ''}accepted ({changes})"
          + ("" if args.dry_run else "; the next run applies it"))
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    from ctaoflow.backends import make_backend
    from ctaoflow.ops.audit import audit
    from ctaoflow.sites import load_sites

    problems = audit(_of_night(args), _catalog(), load_sites(), make_backend, _sessions())
    for line in problems:
        print(line)
    print(f"audit: {len(problems)} discrepancies" if problems else "audit clean")
    return 1 if problems else 0


def cmd_demo(args: argparse.Namespace) -> int:
    from ctaoflow.demo.run import run_demo

    return run_demo(home=args.home, keep=args.keep, full=args.full)


ENVIRONMENT = """environment:
  CTAOFLOW_HOME            state on the embedded defaults: ledger, embedded catalog, job
                           folders, spec cache (default ~/.ctaoflow)
  CTAOFLOW_SITES           the sites file (default config/sites.yaml)
  CTAOFLOW_PRODUCTIONS     the productions folder Airflow reads (default config/productions)
  CTAOFLOW_FAILURES        the failure rules (default config/failures.yaml)
  CTAOFLOW_LEDGER_TIMEOUT  seconds to wait for a locked ledger (default 60)
  CTAOFLOW_LEDGER_URL      the ledger's URL (postgresql://user:pw@host/db, sqlite:///path);
                           before the ctaoflow_ledger connection
  AIRFLOW_CONN_CTAOFLOW_LEDGER, AIRFLOW_CONN_CTAOFLOW_CATALOG
                           Airflow connections (a URI or Airflow's JSON) of the ledger
                           (type postgres, or a sqlite:/// URI) and of the Rucio catalog
                           (type rucio), read by every command and the DAGs; with
                           $AIRFLOW_HOME set, Airflow's stored connections too
  CTAOFLOW_OPENSEARCH      monitoring's OpenSearch server, http(s)://[user:password@]
                           host:port; set (or AIRFLOW_CONN_CTAOFLOW_OPENSEARCH), changes
                           are recorded for it (see `ctaoflow monitoring --help`)
  CTAOFLOW_MONITORING_BACKLOG
                           monitoring documents kept at most while OpenSearch is away
                           (default 1000000)
  CTAOFLOW_USER            who acts, in the monitoring event of an operator action
                           (default: the login name)"""
SPEC_HELP = "the production YAML (or a CTADIRAC ProdSteps file)"


NIGHTLY_AWARE = (cmd_plan, cmd_status, cmd_report, cmd_reset, cmd_flush, cmd_stop_start,
                 cmd_audit)
ACTIONS = (cmd_reset, cmd_flush, cmd_stop_start, cmd_extend, cmd_accept)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="ctaoflow", description=__doc__, epilog=ENVIRONMENT,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    top.add_argument("--version", action="version",
                     version=f"%(prog)s {importlib.metadata.version('ctaoflow')}")
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, text: str, func: Callable[[argparse.Namespace], int],
                spec: bool = True) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=text, description=text[0].upper() + text[1:] + ".",
                           epilog=ENVIRONMENT,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        if spec:
            p.add_argument("file", help=SPEC_HELP)
        if func in NIGHTLY_AWARE:
            p.add_argument("--night", help="of a nightly production: the night (YYYY-MM-DD)")
        if func in ACTIONS:
            p.add_argument("--dry-run", action="store_true",
                           help="say what it would touch; change nothing")
            if func is not cmd_accept:
                p.add_argument("--reason", help="why; recorded in the ledger's events with "
                                                "the OS user")
        p.set_defaults(func=func)
        return p

    p = command("validate", "check production YAML files and the sites file; exit 1 on any "
                            "error", cmd_validate, spec=False)
    p.add_argument("files", nargs="+", metavar="file", help="production YAML files")
    command("schema", "print the JSON Schema of a production YAML", cmd_schema, spec=False)
    p = command("graph", "print the transformation graph", cmd_graph)
    p.add_argument("--mermaid", action="store_true", help="as a Mermaid flowchart")
    p = command("plan", "show which catalog files would form which tasks now, without "
                        "running", cmd_plan)
    p.add_argument("--limit", type=int, default=20, help="tasks shown per transformation")
    p = command("render", "write the production's DAG as a standalone Python module",
                cmd_render)
    p.add_argument("-o", "--output", help="the module to write (default: standard output); "
                                          "never the input file")
    p = command("import", "write a CTADIRAC ProdSteps file (cta-prod-submit's YAML) as a "
                          "commented production YAML", cmd_import)
    p.add_argument("-o", "--output", help="the YAML to write (default: standard output); "
                                          "never the input file")
    command("status", "files, tasks and jobs by status from the ledger, and the spec "
                      "versions", cmd_status)
    p = command("night", "one night of a nightly production: its raw data and, per run "
                         "and stage, input files processed / taken in", cmd_night)
    p.add_argument("night", help="the night, YYYY-MM-DD (the date its evening began) or "
                                 "YYYYMMDD")
    p.add_argument("--json", action="store_true", help="the table's data as JSON")
    p = command("report", "counts, top errors with a log, files that need a person",
                cmd_report)
    p.add_argument("--format", choices=["text", "markdown", "html"], default="text",
                   help="text (default), markdown or html (for mail)")
    p.add_argument("-o", "--output", help="the file to write (default: standard output); "
                                          "never the input file")
    p = command("reset", "put Problematic/MaxReset files back to Unused", cmd_reset)
    p.add_argument("--transformation", help="only this transformation's files")
    p.add_argument("--site", help="only files whose last job ran at this site")
    p.add_argument("--class", dest="failure_class", help="only files whose last job "
                   "failed for this class", choices=["infrastructure", "data", "application"])
    p.add_argument("--status", nargs="+", default=["Problematic", "MaxReset"],
                   choices=["Problematic", "MaxReset", "Unused", "Processed"],
                   help="the file statuses to reset (default: Problematic MaxReset)")
    p.add_argument("--force", action="store_true",
                   help="allow --status Processed (recorded); children may have used them")
    p = command("flush", "emit a transformation's partial groups at the next run", cmd_flush)
    p.add_argument("transformation", help="the transformation to flush")
    command("stop", "stop submitting jobs (running jobs finish)", cmd_stop_start)
    command("start", "resume a stopped production", cmd_stop_start)
    p = command("extend", "add runs to an MC simulation", cmd_extend)
    p.add_argument("transformation", help="the mc_simulation transformation")
    p.add_argument("runs", help="how many runs to add (a whole positive number)")
    p = command("accept", "apply a spec change that sync refused, on purpose: record it as "
                          "the next version, with the reason", cmd_accept)
    p.add_argument("--reason", required=True, help="why; kept in the spec history")
    command("audit", "reconcile ledger, catalog and batch systems; exit 1 with the "
                     "discrepancies", cmd_audit)
    p = command("demo", "run the demo production end to end through Airflow", cmd_demo,
                spec=False)
    p.add_argument("--home", help="state folder (default: $CTAOFLOW_HOME/demo)")
    p.add_argument("--keep", action="store_true", help="keep the previous demo state")
    p.add_argument("--full", action="store_true",
                   help="with the real services: inputs in Rucio, jobs on Slurm")
    from ctaoflow.monitoring.cli import add_commands as monitoring_commands
    monitoring_commands(sub, command)
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
