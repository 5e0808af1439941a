"""Reports on a production: counts by status, site and failure class, the top errors
with an example log, the files that need a person and the command to act on them.
Rendered as text (CLI, Airflow task log), Markdown or HTML (mail, with inline SVG charts of
files by status, jobs by site and jobs finished over time)."""

from __future__ import annotations

import datetime as dt
import html
import re
from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker

from ctaoflow.engine import summarize, versions
from ctaoflow.engine.intake import GROUP_HELD, HELD, all_group_ran, groups_that_ran
from ctaoflow.engine.ledger import (FileRow, JobRow, NightRow, ProductionRow, SiteRow,
                                    TaskRow, TransformationRow, now, session_factory)
from ctaoflow.ops import charts
from ctaoflow.ops.operations import Action, history
from ctaoflow.spec.model import Production

FILE_COLUMNS = ("Unused", "Assigned", "Processed", "Problematic", "MaxReset")
JOB_COLUMNS = ("Submitted", "Done", "Failed", "Killed")
_SECRETS = [
    (re.compile(r"(?i)\b(password|passwd|pwd|token|secret|api[_-]?key)(\s*[=:]\s*)\S+"),
     r"\1\2***"),
    (re.compile(r"(?i)(authorization:\s*(bearer|basic)\s+)\S+"), r"\1***"),
    (re.compile(r"([a-z][a-z0-9+.-]*://[^/\s:@]+):[^@\s/]+@"), r"\1:***@"),
]


def redact(text: str) -> str:
    """Mask credentials that a job may have printed."""
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


def summary_table(summary: dict[str, dict[str, dict[str, int]]]) -> str:
    """One row per transformation: status, files by status, jobs by status."""
    header = (f"{'transformation':<28} {'status':<10} "
              + " ".join(f"{c:>9}" for c in FILE_COLUMNS) + " | jobs "
              + " ".join(f"{c:>9}" for c in JOB_COLUMNS))
    lines = [header, "-" * len(header)]
    for name, counts in summary.items():
        status = next(iter(counts.get("status", {})), "-")
        files = " ".join(f"{counts['files'].get(c, 0):>9}" for c in FILE_COLUMNS)
        jobs = " ".join(f"{counts['jobs'].get(c, 0):>9}" for c in JOB_COLUMNS)
        lines.append(f"{name:<28} {status:<10} {files} |      {jobs}")
    return "\n".join(lines)


@dataclass
class ErrorGroup:
    failure_class: str
    signature: str
    count: int
    example_job: str
    example_log: str


@dataclass
class Report:
    production: str
    status: str
    summary: dict
    failures: Counter = field(default_factory=Counter)  # (site, class) -> failed jobs
    errors: list[ErrorGroup] = field(default_factory=list)
    needs_a_person: dict[str, dict[str, int]] = field(default_factory=dict)
    paused_sites: dict[str, str] = field(default_factory=dict)  # paused now: why, until when
    waiting_for_a_site: dict[str, int] = field(default_factory=dict)  # all its sites paused
    held_files: dict[str, str] = field(default_factory=dict)  # files of a group that ran: why
    night: str = ""  # a nightly production's night: its raw data, what was missing
    spec_path: str = "PRODUCTION.yaml"
    versions: list[str] = field(default_factory=list)  # the spec's applied versions
    actions: list[Action] = field(default_factory=list)  # operator actions, newest first
    jobs_by_site: dict[str, dict[str, int]] = field(default_factory=dict)  # site -> status -> n
    finished: list[tuple[dt.datetime, str]] = field(default_factory=list)  # (when, status)


def _signature(job: JobRow) -> str:
    """What identifies an error: the last meaningful log line, numbers blurred."""
    lines = [ln.strip() for ln in (job.log_tail or "").splitlines() if ln.strip()]
    text = lines[-1] if lines else f"{job.state} exit {job.exit_code}"
    return re.sub(r"\d+", "N", redact(text))[:160]


def spec_versions(production: Production, sessions: sessionmaker | None = None) -> list[str]:
    """One line per applied version of the production's spec: when, how, what changed."""
    with (sessions or session_factory())() as session:
        prod = session.scalar(select(ProductionRow)
                              .where(ProductionRow.name == production.production))
        return [f"v{v.version} {v.applied_at:%Y-%m-%d %H:%M} UTC {v.how}"
                + (f": {v.changes}" if v.changes else "")
                + (f" (reason: {v.reason})" if v.reason else "")
                for v in (versions.history(session, prod.id) if prod else [])]


def build(production: Production, spec_path: str = "PRODUCTION.yaml",
          sessions: sessionmaker | None = None, top: int = 5) -> Report:
    """The report of ``production`` from the ledger."""
    sessions = sessions or session_factory()
    with sessions() as session:
        prod = session.scalar(select(ProductionRow)
                              .where(ProductionRow.name == production.production))
        report = Report(production.production, prod.status if prod else "New",
                        summarize(production, sessions), spec_path=spec_path)
        if prod is None:
            return report
        names = [t.name for t in production.transformations]
        ids = dict(session.execute(select(TransformationRow.name, TransformationRow.id).where(
            TransformationRow.production_id == prod.id, TransformationRow.name.in_(names))).all())
        rows = {ids[name]: name for name in names if name in ids}  # the spec's order
        report.versions = spec_versions(production, sessions)
        report.actions = history(production, sessions, limit=10)
        failed = session.scalars(
            select(JobRow).join(TaskRow, JobRow.task_id == TaskRow.id)
            .where(TaskRow.transformation_id.in_(rows), JobRow.failure_class.is_not(None))
            .order_by(JobRow.id)).all()
        for site, status, n in session.execute(
                select(JobRow.site, JobRow.status, func.count())
                .join(TaskRow, JobRow.task_id == TaskRow.id)
                .where(TaskRow.transformation_id.in_(rows))
                .group_by(JobRow.site, JobRow.status).order_by(JobRow.site)):
            report.jobs_by_site.setdefault(site, {})[status] = n
        report.finished = [(at, status) for at, status in session.execute(
            select(JobRow.finished_at, JobRow.status)
            .join(TaskRow, JobRow.task_id == TaskRow.id)
            .where(TaskRow.transformation_id.in_(rows), JobRow.finished_at.is_not(None)))
            if at is not None]
        groups: dict[tuple[str, str], list[JobRow]] = {}
        for job in failed:
            report.failures[(job.site, job.failure_class)] += 1
            groups.setdefault((job.failure_class, _signature(job)), []).append(job)
        for (cls, signature), jobs in sorted(groups.items(), key=lambda g: -len(g[1]))[:top]:
            last = jobs[-1]
            tail = "\n".join(redact(last.log_tail or last.reason).splitlines()[-6:]) or (
                f"(the job's log is empty) {last.state}, exit code {last.exit_code}")
            report.errors.append(ErrorGroup(cls, signature, len(jobs), jobs[-1].name, tail))
        for row_id, name in rows.items():
            stuck = Counter(session.scalars(select(FileRow.status).where(
                FileRow.transformation_id == row_id,
                FileRow.status.in_(["Problematic", "MaxReset"]))))
            if stuck:
                report.needs_a_person[name] = dict(stuck)
        paused = session.scalars(select(SiteRow).where(SiteRow.paused_until > now())
                                 .order_by(SiteRow.name)).all()
        report.paused_sites = {s.name: f"{s.reason} (until {s.paused_until:%Y-%m-%d %H:%M} UTC)"
                               for s in paused}
        for row_id, name in rows.items():
            t = production.transformation(name)
            if set(t.sites or production.defaults.sites) <= set(report.paused_sites):
                waiting = session.scalar(select(func.count()).where(
                    TaskRow.transformation_id == row_id, TaskRow.status == "Created"))
                if waiting:
                    report.waiting_for_a_site[name] = waiting
            row = session.get(TransformationRow, row_id)
            if all_group_ran(session, row, t):
                new = session.scalar(select(func.count()).where(
                    FileRow.transformation_id == row_id, FileRow.status == "Unused"))
                if new:
                    report.held_files[name] = f"{new} new input file(s): {HELD}"
            elif ran := groups_that_ran(session, row, t):
                unused = session.scalars(select(FileRow.meta).where(
                    FileRow.transformation_id == row_id, FileRow.status == "Unused")).all()
                values = sorted({str(m.get(t.grouping.key)) for m in unused} & ran)
                if values:
                    late = sum(str(m.get(t.grouping.key)) in ran for m in unused)
                    report.held_files[name] = (f"{late} new input file(s) of {t.grouping.key} "
                                               f"{', '.join(values)}: {GROUP_HELD}")
        night = session.get(NightRow, prod.id)
        if night is not None:
            report.night = (f"night {night.night}: raw data {night.status}, {night.raw_files} "
                            "file(s)" + "".join(f"; missing: {m}" for m in night.missing))
    return report


def _reset_command(report: Report, transformation: str) -> str:
    return (f"ctaoflow reset {report.spec_path} --transformation {transformation} "
            "--status Problematic MaxReset")


def as_text(report: Report) -> str:
    lines = [f"Production {report.production}: {report.status}", "",
             *([report.night, ""] if report.night else []), summary_table(report.summary)]
    if report.failures:
        lines += ["", "Failed jobs by site and class:"]
        lines += [f"  {site:<16} {cls:<15} {n:>6}"
                  for (site, cls), n in sorted(report.failures.items())]
    if report.errors:
        lines += ["", "Top errors:"]
        for e in report.errors:
            lines += [f"  {e.count:>5} x {e.failure_class}: {e.signature}",
                      f"        e.g. {e.example_job}:"]
            lines += [f"          {ln}" for ln in e.example_log.splitlines()]
    if report.needs_a_person:
        lines += ["", "Files that need a person:"]
        for name, counts in report.needs_a_person.items():
            lines += [f"  {name}: {', '.join(f'{n} {s}' for s, n in counts.items())}",
                      f"    to retry them: {_reset_command(report, name)}"]
    if report.paused_sites:
        lines += ["", "Paused sites:"] + [f"  {s}: {why}" for s, why in report.paused_sites.items()]
    lines += [f"  {name}: {n} task(s) wait: every site allowed to them is paused"
              for name, n in report.waiting_for_a_site.items()]
    if report.held_files:
        lines += ["", "Files held:"] + [f"  {name}: {why}"
                                        for name, why in report.held_files.items()]
    if len(report.versions) > 1:
        lines += ["", "Spec versions:"] + [f"  {v}" for v in report.versions]
    if report.actions:
        lines += ["", "Operator actions (newest first):"] + [
            f"  {_action(a)}" for a in report.actions]
    return "\n".join(lines)


def _action(a: Action) -> str:
    return (f"{a.at:%Y-%m-%d %H:%M} UTC {a.transformation}: {a.what} by {a.user}"
            + (f" ({a.reason})" if a.reason else ""))


def as_markdown(report: Report) -> str:
    lines = [f"# Production {report.production}: {report.status}", "",
             "| transformation | status | " + " | ".join(FILE_COLUMNS) + " | jobs done | jobs failed |",
             "|---" * (len(FILE_COLUMNS) + 4) + "|"]
    for name, c in report.summary.items():
        lines.append(f"| {name} | {next(iter(c['status']))} | "
                     + " | ".join(str(c["files"].get(s, 0)) for s in FILE_COLUMNS)
                     + f" | {c['jobs'].get('Done', 0)} | {c['jobs'].get('Failed', 0)} |")
    if report.errors:
        lines += ["", "## Top errors"]
        for e in report.errors:
            lines += ["", f"- **{e.count} x {e.failure_class}**: `{e.signature}` "
                          f"(e.g. `{e.example_job}`)", "", "```", e.example_log, "```"]
    if report.needs_a_person:
        lines += ["", "## Files that need a person"]
        for name, counts in report.needs_a_person.items():
            lines.append(f"- {name}: {', '.join(f'{n} {s}' for s, n in counts.items())}: "
                         f"`{_reset_command(report, name)}`")
    return "\n".join(lines) + "\n"


def as_html(report: Report) -> str:
    e = html.escape
    rows = "".join(
        f"<tr><td>{e(name)}</td><td>{e(next(iter(c['status'])))}</td>"
        + "".join(f"<td>{c['files'].get(s, 0)}</td>" for s in FILE_COLUMNS)
        + f"<td>{c['jobs'].get('Done', 0)}</td><td>{c['jobs'].get('Failed', 0)}</td></tr>"
        for name, c in report.summary.items())
    head = "".join(f"<th>{s}</th>" for s in ("transformation", "status", *FILE_COLUMNS,
                                            "jobs done", "jobs failed"))
    parts = [f"<h1>Production {e(report.production)}: {e(report.status)}</h1>",
             *([f"<p>{e(report.night)}</p>"] if report.night else []),
             f"<table><tr>{head}</tr>{rows}</table>", *_charts(report)]
    if report.errors:
        parts.append("<h2>Top errors</h2>")
        parts += [f"<p><b>{g.count} x {e(g.failure_class)}</b>: <code>{e(g.signature)}</code> "
                  f"(e.g. {e(g.example_job)})</p><pre>{e(g.example_log)}</pre>"
                  for g in report.errors]
    if report.needs_a_person:
        parts.append("<h2>Files that need a person</h2><ul>")
        parts += [f"<li>{e(name)}: {e(', '.join(f'{n} {s}' for s, n in counts.items()))}: "
                  f"<code>{e(_reset_command(report, name))}</code></li>"
                  for name, counts in report.needs_a_person.items()]
        parts.append("</ul>")
    notes = ([f"{site} paused: {why}" for site, why in report.paused_sites.items()]
             + [f"{name}: {n} task(s) wait: every site allowed to them is paused"
                for name, n in report.waiting_for_a_site.items()]
             + [f"{name}: {why}" for name, why in report.held_files.items()])
    if notes:
        parts.append("<h2>Sites and held files</h2><ul>"
                     + "".join(f"<li>{e(line)}</li>" for line in notes) + "</ul>")
    if len(report.versions) > 1:
        parts.append("<h2>Spec versions</h2><ul>"
                     + "".join(f"<li>{e(v)}</li>" for v in report.versions) + "</ul>")
    if report.actions:
        parts.append("<h2>Operator actions</h2><ul>"
                     + "".join(f"<li>{e(_action(a))}</li>" for a in report.actions) + "</ul>")
    return "<html><body>" + "".join(parts) + "</body></html>\n"


def _charts(report: Report) -> list[str]:
    """The HTML report's pictures: files by status per transformation, jobs by site and
    status, jobs finished per time bin (UTC)."""
    files = {name: c["files"] for name, c in report.summary.items()}
    pictures = [charts.bars("Files by status", files, FILE_COLUMNS)] if files else []
    if report.jobs_by_site:
        pictures.append(charts.bars("Jobs by site and status", report.jobs_by_site,
                                    ("Submitting",) + JOB_COLUMNS))
    if report.finished:
        pictures.append(charts.columns("Jobs finished over time (UTC)",
                                       charts.time_bins(report.finished), JOB_COLUMNS))
    return [f"<div>{svg}</div>" for svg in pictures]


RENDERERS = {"text": as_text, "markdown": as_markdown, "html": as_html}
