"""The HTML of the Productions UI: server-rendered pages in Airflow's look, with inline SVG
charts and a few lines of script (sorting, filtering, the action dialog). Every value
is escaped; every number comes from the ledger."""

from __future__ import annotations

import datetime as dt
from html import escape as e
from typing import Any
from urllib.parse import quote

from ctaoflow.ops import charts
from ctaoflow.ops.overview import ProductionLine
from ctaoflow.ops.report import FILE_COLUMNS, JOB_COLUMNS, Report

STYLE = """
body{font-family:Inter,system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;
 padding:16px 24px;color:#1a202c;background:#fff;font-size:14px}
h1{font-size:22px;margin:4px 0 12px}h2{font-size:17px;margin:24px 0 8px}
a{color:#0b6bcb;text-decoration:none}a:hover{text-decoration:underline}
table{border-collapse:collapse;width:100%;margin:6px 0}
th,td{border-bottom:1px solid #e2e8f0;padding:6px 8px;text-align:left;vertical-align:top}
th{background:#f7fafc;font-weight:600;white-space:nowrap}th[data-sort]{cursor:pointer}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
.badge{display:inline-block;border-radius:10px;padding:1px 8px;font-size:12px;color:#fff}
.bar{background:#edf2f7;border-radius:4px;height:10px;width:160px;display:inline-block}
.bar span{display:block;height:10px;border-radius:4px;background:#3c9a5f}
.card{border:1px solid #e2e8f0;border-radius:8px;padding:12px 16px;margin:12px 0}
.crumbs{color:#718096;font-size:13px}.warn{color:#c53030;font-weight:600}
pre{background:#f7fafc;border:1px solid #e2e8f0;padding:8px;overflow:auto;font-size:12px}
input,select,textarea,button{font:inherit;padding:4px 8px;margin:2px 4px 2px 0}
button{background:#0b6bcb;color:#fff;border:0;border-radius:6px;padding:6px 14px;cursor:pointer}
button:disabled{background:#a0aec0;cursor:not-allowed}
.charts{display:flex;flex-wrap:wrap;gap:16px}
"""
SCRIPT = """
document.querySelectorAll('th[data-sort]').forEach((th, col) => th.addEventListener('click',
 () => { const body = th.closest('table').tBodies[0];
  const idx = [...th.parentNode.children].indexOf(th), up = th.dataset.dir !== 'up';
  th.dataset.dir = up ? 'up' : 'down';
  const key = r => { const c = r.children[idx]; const v = c.dataset.value ?? c.textContent;
   return isNaN(v) || v === '' ? v : Number(v); };
  [...body.rows].sort((a, b) => (key(a) > key(b) ? 1 : key(a) < key(b) ? -1 : 0) * (up ? 1 : -1))
   .forEach(r => body.appendChild(r)); }));
const filter = document.getElementById('filter');
function applyFilter() { const text = filter.value.toLowerCase();
 const status = document.getElementById('status').value;
 const stuck = document.getElementById('stuck').checked;
 document.querySelectorAll('#productions tbody tr').forEach(r => {
  r.hidden = !(r.dataset.name.includes(text) && (!status || r.dataset.status === status)
   && (!stuck || Number(r.dataset.stuck) > 0)); }); }
if (filter) ['input', 'change'].forEach(ev => document.querySelectorAll('.filters *')
 .forEach(el => el.addEventListener(ev, applyFilter)));
"""
ACTION_SCRIPT = r"""
const form = document.getElementById('action-form'), out = document.getElementById('action-out');
async function send(dryRun) {
 const data = Object.fromEntries(new FormData(form));
 const body = {action: data.action, reason: data.reason, dry_run: dryRun,
  night: form.dataset.night || null, transformation: data.transformation || null,
  site: data.site || null, failure_class: data.failure_class || null,
  statuses: data.statuses.split(/[ ,]+/).filter(Boolean), force: data.force === 'on',
  runs: Number(data.runs || 0),
  lfns: data.lfns.trim() ? data.lfns.split(/\s+/).filter(Boolean) : null};
 const answer = await fetch(form.dataset.url, {method: 'POST', credentials: 'same-origin',
  headers: {'Content-Type': 'application/json', 'X-Ctaoflow-Action-Token': form.dataset.token},
  body: JSON.stringify(body)});
 const result = await answer.json();
 return answer.ok ? result : {error: result.detail || answer.statusText};
}
document.getElementById('preview').addEventListener('click', async () => {
 const seen = await send(true);
 if (seen.error) { out.textContent = 'refused: ' + seen.error; return; }
 out.textContent = seen.message;
 if (window.confirm('This will ' + seen.message.replace(/^would /, '') + '. Go on?')) {
  const done = await send(false);
  out.textContent = done.error ? 'refused: ' + done.error
   : 'done: ' + [done.message, ...(done.problems || [])].join('\n');
  if (!done.error) setTimeout(() => location.reload(), 800);
 } });
"""
STATUS_BADGE = {"Active": "#0b6bcb", "Completed": "#2f855a", "Stopped": "#dd6b20",
                "New": "#718096", "Flush": "#3182ce", "Removed": "#a0aec0"}


def layout(title: str, body: str, crumbs: list[tuple[str, str]] | None = None,
           script: str = "") -> str:
    trail = " / ".join(f'<a href="{e(href)}">{e(text)}</a>' if href else e(text)
                       for text, href in crumbs or [])
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{e(title)}</title>"
            f"<style>{STYLE}</style></head><body><div class='crumbs'>{trail}</div>{body}"
            f"<script>{SCRIPT}{script}</script></body></html>")


def _badge(status: str) -> str:
    return (f"<span class='badge' style='background:{STATUS_BADGE.get(status, '#718096')}'>"
            f"{e(status)}</span>")


def _bar(done: int, total: int) -> str:
    share = done / total if total else 0.0
    return (f"<span class='bar' title='{done} of {total} files Processed'>"
            f"<span style='width:{share:.1%}'></span></span> {share:.0%}")


def _when(at: dt.datetime | None) -> str:
    return f"{at:%Y-%m-%d %H:%M} UTC" if at else "-"


def production_href(root: str, dag_id: str, night: str | None = None) -> str:
    return f"{root}/productions/{quote(dag_id)}" + (f"?night={night}" if night else "")


def list_page(root: str, lines: list[ProductionLine]) -> str:
    """All productions: sortable, filterable, with progress and what needs a person."""
    statuses = sorted({line.status for line in lines})
    rows = []
    for line in lines:
        href = production_href(root, line.dag_id, line.night)
        stuck = line.needs_a_person
        rows.append(
            f"<tr data-name='{e(line.name.lower())}' data-status='{e(line.status)}' "
            f"data-stuck='{stuck}'><td><a href='{e(href)}'>{e(line.dag_id)}</a></td>"
            f"<td>{e(line.night or '')}</td><td>{_badge(line.status)}</td>"
            f"<td data-value='{line.processed / line.total if line.total else 0:.6f}'>"
            f"{_bar(line.processed, line.total)}</td>"
            f"<td class='n'>{line.processed}</td><td class='n'>{line.total}</td>"
            f"<td class='n'>{line.running}</td>"
            f"<td class='n{' warn' if stuck else ''}'>{stuck}</td>"
            f"<td data-value='{line.last_activity or ''}'>{_when(line.last_activity)}</td></tr>")
    head = "".join(f"<th data-sort{' class=n' if n else ''}>{e(label)}</th>" for label, n in (
        ("Production", 0), ("Night", 0), ("Status", 0), ("Progress", 0), ("Processed", 1),
        ("Files", 1), ("Jobs running", 1), ("Need a person", 1), ("Last activity", 0)))
    options = "".join(f"<option>{e(s)}</option>" for s in statuses)
    body = (f"<h1>Productions</h1><div class='filters'>"
            f"<input id='filter' placeholder='Filter by name' size='30'>"
            f"<select id='status'><option value=''>any status</option>{options}</select>"
            f"<label><input type='checkbox' id='stuck'> only with files that need a person"
            f"</label></div><p>{len(lines)} production(s), "
            f"{sum(line.needs_a_person for line in lines)} file(s) need a person, "
            f"{sum(line.running for line in lines)} job(s) running.</p>"
            f"<table id='productions'><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>")
    return layout("Productions", body, [("Productions", "")])


def _counts_cells(counts: dict[str, int], columns: tuple[str, ...], link: str = "") -> str:
    cells = []
    for column in columns:
        n = counts.get(column, 0)
        shown = (f"<a href='{e(link)}'>{n}</a>" if link and n and column in
                 ("Problematic", "MaxReset") else str(n))
        cells.append(f"<td class='n' data-column='{column}'>{shown}</td>")
    return "".join(cells)


def _sites(sites: dict[str, dict[str, int]]) -> str:
    return "<br>".join(f"{e(site)}: " + ", ".join(f"{n} {e(s)}" for s, n in sorted(by.items()))
                       for site, by in sorted(sites.items())) or "-"


def production_page(root: str, dag_id: str, report: Report, jobs: dict[str, dict[str, Any]],
                    order: list[tuple[str, list[str]]], night: str | None,
                    nights: list[ProductionLine], night_table: dict[str, Any] | None,
                    can_edit: bool, token: str) -> str:
    """One production (or one night of a nightly one): graph, counts, errors, charts,
    drill-down links, actions and history."""
    here = production_href(root, dag_id, night)
    query = f"?night={night}" if night else ""
    files_href = f"{root}/productions/{quote(dag_id)}/files{query}"
    total = sum(n for c in report.summary.values() for s, n in c["files"].items()
                if s != "Removed")
    done = sum(c["files"].get("Processed", 0) for c in report.summary.values())
    status_of = {name: ("Problems" if name in report.needs_a_person
                        else next(iter(c["status"]))) for name, c in report.summary.items()}
    rows = "".join(
        f"<tr data-transformation='{e(name)}'><td>{e(name)}</td><td>{_badge(jobs.get(name, {}).get('status', 'New'))}</td>"
        + _counts_cells(c["files"], FILE_COLUMNS, f"{files_href}{'&' if query else '?'}"
                        f"transformation={quote(name)}")
        + f"<td>{_sites(jobs.get(name, {}).get('sites', {}))}</td>"
        + "<td>" + (", ".join(f"{n} {e(k)}" for k, n in
                              sorted(jobs.get(name, {}).get("classes", {}).items())) or "-")
        + "</td></tr>" for name, c in report.summary.items())
    head = "".join(f"<th{' class=n' if c in FILE_COLUMNS else ''}>{e(c)}</th>"
                   for c in ("Transformation", "Status", *FILE_COLUMNS, "Jobs by site",
                             "Failure classes"))
    parts = [f"<h1>{e(report.production)} {_badge(report.status)}</h1>",
             f"<p>{_bar(done, total)} &nbsp; {done} of {total} files Processed. "
             f"<a href='/dags/{quote(dag_id)}' target='_top'>Airflow DAG</a> · "
             f"<a href='{e(here)}{'&' if query else '?'}format=report'>HTML report</a> · "
             f"<a href='{root}/api/productions/{quote(dag_id)}{query}'>JSON</a> · "
             f"<a href='{e(files_href)}'>Files that need a person</a></p>"]
    if report.night:
        parts.append(f"<p>{e(report.night)}</p>")
    if nights:
        parts.append("<h2>Nights</h2><p>" + " · ".join(
            f"<a href='{e(production_href(root, dag_id, n.night))}'>{e(n.night or '')}"
            f"</a> {_badge(n.status)} {n.processed}/{n.total}" for n in nights) + "</p>")
    if night_table:
        parts.append(_night_table(night_table))
    links = {name: f"{files_href}{'&' if query else '?'}transformation={quote(name)}"
             for name in report.summary}
    parts += [f"<div class='card'>{charts.graph(order, status_of, links)}</div>",
              f"<h2>Transformations</h2><table id='transformations'><thead><tr>{head}</tr>"
              f"</thead><tbody>{rows}</tbody></table>", _charts(report)]
    if report.errors:
        parts.append("<h2>Top errors</h2>" + "".join(
            f"<div class='card'><b>{g.count} × {e(g.failure_class)}</b>: <code>"
            f"{e(g.signature)}</code><br>e.g. job {e(g.example_job)}<pre>{e(g.example_log)}"
            "</pre></div>" for g in report.errors))
    notes = ([f"{site} paused: {why}" for site, why in report.paused_sites.items()]
             + [f"{n}: {why}" for n, why in report.held_files.items()])
    if notes:
        parts.append("<h2>Sites and held files</h2><ul>"
                     + "".join(f"<li>{e(x)}</li>" for x in notes) + "</ul>")
    parts.append(_actions(root, dag_id, night, list(report.summary), report, can_edit, token))
    parts.append("<h2>History</h2>" + ("<table id='history'><thead><tr><th>When</th>"
                 "<th>Transformation</th><th>What</th><th>Who</th><th>Why</th></tr></thead>"
                 "<tbody>" + "".join(
                     f"<tr><td>{_when(a.at)}</td><td>{e(a.transformation)}</td>"
                     f"<td>{e(a.what)}</td><td>{e(a.user)}</td><td>{e(a.reason or '')}</td></tr>"
                     for a in report.actions) + "</tbody></table>"
                 if report.actions else "<p>No operator action yet.</p>"))
    crumbs = [("Productions", f"{root}/productions"), (dag_id, production_href(root, dag_id))]
    if night:
        crumbs.append((night, ""))
    return layout(report.production, "".join(parts), crumbs, ACTION_SCRIPT if can_edit else "")


def _charts(report: Report) -> str:
    pictures = [charts.cumulative("Progress: jobs done over time (UTC)", report.finished,
                                  "Done"),
                charts.columns("Throughput: jobs finished per interval (UTC)",
                               charts.time_bins(report.finished), JOB_COLUMNS)]
    if report.jobs_by_site:
        pictures.append(charts.bars("Jobs by site and status", report.jobs_by_site,
                                    ("Submitting",) + JOB_COLUMNS))
    return "<h2>Charts</h2><div class='charts'>" + "".join(
        f"<div class='card'>{svg}</div>" for svg in pictures) + "</div>"


def _night_table(status: dict[str, Any]) -> str:
    stages = status["stages"]
    head = "".join(f"<th>{e(s)}</th>" for s in ["run", *stages])
    rows = "".join(
        f"<tr><td>{e(run)}</td>" + "".join(
            f"<td>{cells[s]['done']}/{cells[s]['total']}</td>" if s in cells else "<td>-</td>"
            for s in stages) + "</tr>" for run, cells in status["runs"].items())
    missing = "".join(f"<li>{e(m)}</li>" for m in status["missing"])
    return (f"<h2>Night {e(status['night'])}: raw data {e(status['data'])}, "
            f"{status['raw_files']} file(s)</h2>" + (f"<ul>{missing}</ul>" if missing else "")
            + f"<table id='night'><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")


def _actions(root: str, dag_id: str, night: str | None, transformations: list[str],
             report: Report, can_edit: bool, token: str) -> str:
    if not can_edit:
        return ("<h2>Actions</h2><p id='no-actions'>You may look but not act: the actions "
                "(reset, flush, stop, start, extend, audit) need edit permission on this DAG.</p>")
    options = "".join(f"<option>{e(t)}</option>" for t in transformations)
    sites = "".join(f"<option>{e(s)}</option>" for s in sorted(report.jobs_by_site))
    classes = "".join(f"<option>{e(c)}</option>"
                      for c in sorted({cls for _, cls in report.failures}))
    return (
        f"<h2>Actions</h2><form id='action-form' class='card' onsubmit='return false' "
        f"data-url='{root}/api/productions/{quote(dag_id)}/actions' data-token='{e(token)}' "
        f"data-night='{e(night or '')}'>"
        "<select name='action'><option>reset</option><option>flush</option>"
        "<option>stop</option><option>start</option><option>extend</option><option>audit</option>"
        "</select>"
        f"<select name='transformation'><option value=''>every transformation</option>"
        f"{options}</select><select name='site'><option value=''>any site</option>{sites}"
        f"</select><select name='failure_class'><option value=''>any failure class</option>"
        f"{classes}</select><input name='statuses' value='Problematic MaxReset' size='22' "
        "title='file statuses to reset'><label><input type='checkbox' name='force'> force "
        "(Processed too)</label><input name='runs' type='number' min='0' placeholder='runs "
        "(extend)' style='width:110px'><br><textarea name='lfns' rows='2' cols='80' "
        "placeholder='only these LFNs (one per line; empty: all that match)'></textarea><br>"
        "<input name='reason' size='60' placeholder='why (recorded with your name)' required>"
        "<button id='preview' type='button'>Preview…</button>"
        "<div id='action-out' class='crumbs'></div></form>")


def files_page(root: str, dag_id: str, night: str | None, files: list[dict[str, Any]],
               title: str) -> str:
    """The files that need a person, with the last job of their task."""
    query = f"&night={night}" if night else ""
    task = f"{root}/productions/{quote(dag_id)}/tasks"
    rows = "".join(
        f"<tr><td>{e(f['transformation'])}</td><td>{e(f['lfn'])}</td><td>{e(f['status'])}</td>"
        f"<td class='n'>{f['errors']}</td><td>"
        + (f"<a href='{task}/{quote(f['transformation'])}/{f['task']}?{query[1:]}'>"
           f"{f['task']}</a>" if f["task"] is not None else "-")
        + f"</td><td>{e(f['job'] or '-')}</td><td>{e(f['site'] or '-')}</td>"
        f"<td>{e(f['class'] or '-')}</td><td class='n'>{'' if f['exit_code'] is None else f['exit_code']}</td></tr>"
        for f in files)
    head = "".join(f"<th data-sort>{h}</th>" for h in (
        "Transformation", "LFN", "Status", "Errors", "Task", "Last job", "Site", "Class",
        "Exit code"))
    body = (f"<h1>{e(title)}</h1><p>{len(files)} file(s).</p><table id='files'><thead><tr>"
            f"{head}</tr></thead><tbody>{rows}</tbody></table>")
    return layout(title, body, [("Productions", f"{root}/productions"),
                                (dag_id, production_href(root, dag_id, night)),
                                ("files", "")])


def task_page(root: str, dag_id: str, night: str | None, task: dict[str, Any]) -> str:
    """One task: its files, every job with batch id, site, exit code and log, its outputs."""
    files = "".join(f"<tr><td>{e(f['lfn'])}</td><td>{e(f['status'])}</td>"
                    f"<td class='n'>{f['errors']}</td></tr>" for f in task["files"])
    jobs = "".join(
        f"<tr><td>{j['attempt']}</td><td>{e(j['name'])}</td><td>{e(j['site'])}</td>"
        f"<td>{e(j['batch_id'] or '-')}</td><td>{e(j['status'])}</td>"
        f"<td>{'' if j['exit_code'] is None else j['exit_code']}</td><td>{e(j['class'] or '-')}"
        f"</td><td>{_when(j['finished_at'])}</td></tr>"
        + (f"<tr><td></td><td colspan='7'>{e(j['reason'])}<pre>{e(j['log'])}</pre></td></tr>"
           if j["log"] or j["reason"] else "") for j in task["jobs"])
    outputs = "".join(f"<li>{e(lfn)}</li>" for lfn in task["outputs"]) or "<li>none yet</li>"
    if not files:
        files = ("<tr><td colspan='3'>none now: its files were reset and went to other tasks"
                 "</td></tr>")
    chunk = (f"{root}/productions/{quote(dag_id)}/chunks/{quote(task['transformation'])}/"
             f"{task['chunk']}" + (f"?night={night}" if night else ""))
    body = (f"<h1>Task {task['index']} of {e(task['transformation'])} {_badge(task['status'])}"
            f"</h1><p>{task['attempts']} attempt(s); in <a href='{e(chunk)}'>chunk "
            f"{task['chunk']}</a>" + (f"; run {task['run']}" if task["run"] is not None else "")
            + (f"; group {e(task['group'])}" if task["group"] else "")
            + (f". {e(task['message'])}" if task["message"] else "") + "</p>"
            f"<h2>Files</h2><table id='task-files'><thead><tr><th>LFN</th><th>Status</th>"
            f"<th class=n>Errors</th></tr></thead><tbody>{files}</tbody></table>"
            "<h2>Jobs</h2><table id='jobs'><thead><tr><th>Attempt</th><th>Job</th><th>Site</th>"
            "<th>Batch id</th><th>Status</th><th>Exit</th><th>Class</th><th>Finished</th></tr>"
            f"</thead><tbody>{jobs}</tbody></table><h2>Outputs</h2><ul id='outputs'>{outputs}"
            "</ul>")
    return layout(f"task {task['index']}", body, [
        ("Productions", f"{root}/productions"), (dag_id, production_href(root, dag_id, night)),
        (f"{task['transformation']} task {task['index']}", "")])


def chunk_page(root: str, dag_id: str, night: str | None, transformation: str, chunk: int,
               tasks: list[dict[str, Any]]) -> str:
    """The tasks that one Airflow chunk task instance manages, and a way back to it."""
    query = f"?night={night}" if night else ""
    base = f"{root}/productions/{quote(dag_id)}/tasks/{quote(transformation)}"
    rows = "".join(
        f"<tr><td><a href='{base}/{t['task']}{query}'>{t['task']}</a></td>"
        f"<td>{e(t['status'])}</td><td class='n'>{t['attempts']}</td><td>{e(t['job'] or '-')}"
        f"</td><td>{e(t['site'] or '-')}</td><td>{e(t['batch_id'] or '-')}</td>"
        f"<td>{e(t['job_status'] or '-')}</td></tr>" for t in tasks)
    grid = f"/dags/{quote(dag_id)}/tasks/{quote(transformation)}.run"
    body = (f"<h1>{e(transformation)}: chunk {chunk}</h1><p>{len(tasks)} task(s). "
            f"<a href='{e(grid)}' target='_top'>The chunk's task instances in Airflow</a></p>"
            "<table id='chunk'><thead><tr><th>Task</th><th>Status</th><th class=n>Attempts</th>"
            "<th>Last job</th><th>Site</th><th>Batch id</th><th>Job status</th></tr></thead>"
            f"<tbody>{rows}</tbody></table>")
    return layout(f"chunk {chunk}", body, [
        ("Productions", f"{root}/productions"), (dag_id, production_href(root, dag_id, night)),
        (f"{transformation} chunk {chunk}", "")])
