"""The Airflow DAG a production becomes, as plain data: one description, two views.

``operators/dag_builder.py`` instantiates it for Airflow's parser; ``ctaoflow render``
(``ctaoflow/ops/render.py``) writes it out as a standalone DAG module. Each
transformation is a task group ``prepare >> run (mapped over chunks, deferrable) >>
finalize``; a child's group follows its parents' groups; ``sync`` comes first,
``report`` last, and a ``watcher`` fails the run when any task failed. The layout depends only on
the spec, so two parses give the same DAG and Airflow's DAG versioning sees no change.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from ctaoflow.spec.graph import topological_order
from ctaoflow.spec.model import Production

START_DATE = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
DEFAULT_ARGS = {"retries": 2, "retry_delay": dt.timedelta(seconds=10)}
# a chunk re-run reconnects to its jobs and resubmits nothing, so it may retry at once
CHUNK_RETRIES = {"retries": 5, "retry_delay": dt.timedelta(seconds=2)}


@dataclass(frozen=True)
class Step:
    """One task: an operator of ``operators.production`` and its arguments."""

    task_id: str  # within its group
    operator: str
    kwargs: dict[str, Any]
    group: str | None = None
    expand: tuple[str, str] | None = None  # (argument, step whose output it is mapped over)

    @property
    def full_id(self) -> str:
        return f"{self.group}.{self.task_id}" if self.group else self.task_id


SYNC, NIGHT, REPORT, WATCHER = PRODUCTION_TASKS = (  # beside the groups
    "sync", "night_data", "report", "watcher")


@dataclass(frozen=True)
class NightSchedule:
    """A nightly production's timetable (``operators.timetables.NightlyTimetable``): a
    run at ``cron`` in ``timezone`` for the night before."""

    cron: str
    timezone: str


@dataclass
class Layout:
    dag: dict[str, Any]  # the DAG's keyword arguments
    groups: dict[str, str] = field(default_factory=dict)  # group id -> tooltip
    steps: list[Step] = field(default_factory=list)  # in an order where sources come first
    edges: list[tuple[str, str]] = field(default_factory=list)  # (upstream, downstream) ids


def layout(production: Production, spec_path: str) -> Layout:
    """The DAG of ``production``; its operators re-read ``spec_path`` when they run."""
    spec = {"spec_path": spec_path}
    nightly = production.nightly
    schedule: str | NightSchedule | None = production.schedule
    if nightly:
        hour, minute = nightly.starts_at.split(":")
        schedule = NightSchedule(f"{int(minute)} {int(hour)} * * *", nightly.timezone)
    plan = Layout(dag={
        "dag_id": production.production, "schedule": schedule,
        "start_date": START_DATE, "catchup": False,
        "max_active_runs": nightly.max_active_nights if nightly else 1,
        "default_args": DEFAULT_ARGS, "tags": ["ctaoflow", *production.tags],
        "description": production.description or None,
        "doc_md": f"ctaoflow production from `{spec_path.rsplit('/', 1)[-1]}`"})
    plan.steps.append(Step(SYNC, "SyncProductionOperator", spec))
    first = SYNC
    if nightly:  # the night's raw data are complete (or timed out) before any intake
        plan.steps.append(Step(NIGHT, "NightDataOperator", spec))
        plan.edges.append((SYNC, NIGHT))
        first = NIGHT
    children = {p for t in production.transformations for p in t.all_parents}
    for t in topological_order(production):
        plan.groups[t.name] = f"{t.type}: {t.description}" if t.description else t.type
        of_t = {**spec, "transformation": t.name}
        plan.steps += [
            Step("prepare", "PrepareTransformationOperator", of_t, t.name),
            Step("run", "RunChunkOperator", {**of_t, **CHUNK_RETRIES,
                                             "poll_interval": production.defaults.poll_interval},
                 t.name, expand=("chunk", f"{t.name}.prepare")),
            Step("finalize", "FinalizeTransformationOperator",
                 {**of_t, "trigger_rule": "all_done"}, t.name)]
        plan.edges += [(f"{t.name}.prepare", f"{t.name}.run"),
                       (f"{t.name}.run", f"{t.name}.finalize")]
        plan.edges += [(f"{parent}.finalize", f"{t.name}.prepare") for parent in t.all_parents]
        if not t.all_parents:
            plan.edges.append((first, f"{t.name}.prepare"))
        if t.name not in children:
            plan.edges.append((f"{t.name}.finalize", REPORT))
    plan.steps.append(Step(REPORT, "ProductionReportOperator",
                           {**spec, "trigger_rule": "all_done"}))
    # finalize and report run whatever happened: the watcher, downstream of every task,
    # fails the run when any of them failed (Airflow's watcher pattern)
    plan.edges += [(step.full_id, WATCHER) for step in plan.steps]
    plan.steps.append(Step(WATCHER, "WatcherOperator",
                           {"trigger_rule": "one_failed", "retries": 0}))
    return plan
