"""Production spec -> Airflow DAG: the layout of ``ctaoflow.spec.layout`` instantiated.

``ctaoflow render`` writes the same layout out as Python, so the two never differ.
"""

from __future__ import annotations

from pathlib import Path

from airflow.sdk import DAG, BaseOperator, TaskGroup

from ctaoflow.spec.layout import START_DATE, NightSchedule, layout
from ctaoflow.spec.model import Production
from operators import production as operators
from operators.timetables import NightlyTimetable


def build_dag(production: Production, spec_path: str | Path) -> DAG:
    """The DAG of ``production``; its operators re-read ``spec_path`` when they run."""
    plan = layout(production, str(Path(spec_path).resolve()))
    schedule = plan.dag["schedule"]
    if isinstance(schedule, NightSchedule):
        schedule = NightlyTimetable(schedule.cron, timezone=schedule.timezone)
    with DAG(**{**plan.dag, "schedule": schedule}) as dag:
        groups = {name: TaskGroup(group_id=name, tooltip=tooltip)
                  for name, tooltip in plan.groups.items()}
        tasks: dict[str, BaseOperator] = {}
        for step in plan.steps:
            operator = getattr(operators, step.operator)
            kwargs = {"task_id": step.task_id, "task_group": groups.get(step.group),
                      **step.kwargs}
            if step.expand:
                argument, source = step.expand
                tasks[step.full_id] = operator.partial(**kwargs).expand(
                    **{argument: tasks[source].output})
            else:
                tasks[step.full_id] = operator(**kwargs)
        upstreams: dict[str, list[BaseOperator]] = {}
        for upstream, downstream in plan.edges:
            upstreams.setdefault(downstream, []).append(tasks[upstream])
        for downstream, sources in upstreams.items():  # one call per task, not per edge
            tasks[downstream].set_upstream(sources)
    return dag


class InvalidProductions(DAG):
    """A DAG that fails Airflow's validation with the spec errors of broken YAMLs.

    Airflow records the failure as an import error of the loader file and still
    loads the valid productions of the same file.
    """

    def validate(self) -> None:
        raise ValueError(self.description)


def invalid_productions_dag(errors: list[str]) -> DAG:
    return InvalidProductions(dag_id="ctaoflow_invalid_productions", schedule=None,
                              start_date=START_DATE, description="\n".join(errors))
