"""Production spec -> Airflow DAG: one task group per transformation.

Each group is ``prepare >> run (mapped over chunks, deferrable) >> finalize``; a
child's group follows its parents' groups. The DAG depends only on the spec, so two
parses give the same DAG and Airflow's DAG versioning sees no change.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from airflow.sdk import DAG, TaskGroup, TriggerRule

from ctaoflow.spec.graph import topological_order
from ctaoflow.spec.model import Production
from operators.production import (FinalizeTransformationOperator,
                                  PrepareTransformationOperator, ProductionReportOperator,
                                  RunChunkOperator, SyncProductionOperator)

START_DATE = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
DEFAULT_ARGS = {"retries": 2, "retry_delay": dt.timedelta(seconds=10)}
# a chunk re-run reconnects to its jobs and resubmits nothing, so it may retry at once
CHUNK_RETRIES = {"retries": 5, "retry_delay": dt.timedelta(seconds=2)}


def build_dag(production: Production, spec_path: str | Path) -> DAG:
    """The DAG of ``production``; its operators re-read ``spec_path`` when they run."""
    spec = str(Path(spec_path).resolve())
    with DAG(dag_id=production.production, schedule=production.schedule,
             start_date=START_DATE, catchup=False, max_active_runs=1,
             default_args=DEFAULT_ARGS, tags=["ctaoflow", *production.tags],
             description=production.description or None,
             doc_md=f"ctaoflow production from `{Path(spec_path).name}`") as dag:
        sync = SyncProductionOperator(task_id="sync", spec_path=spec)
        report = ProductionReportOperator(task_id="report", spec_path=spec,
                                          trigger_rule=TriggerRule.ALL_DONE)
        groups: dict[str, TaskGroup] = {}
        for t in topological_order(production):
            with TaskGroup(group_id=t.name, tooltip=f"{t.type}: {t.description}") as group:
                prepare = PrepareTransformationOperator(task_id="prepare", spec_path=spec,
                                                        transformation=t.name)
                run = RunChunkOperator.partial(
                    task_id="run", spec_path=spec, transformation=t.name, **CHUNK_RETRIES,
                    poll_interval=production.defaults.poll_interval).expand(chunk=prepare.output)
                finalize = FinalizeTransformationOperator(task_id="finalize", spec_path=spec,
                                                          transformation=t.name,
                                                          trigger_rule=TriggerRule.ALL_DONE)
                prepare >> run >> finalize
            for parent in t.all_parents:
                groups[parent] >> group
            if not t.all_parents:
                sync >> group
            groups[t.name] = group
        children = {p for t in production.transformations for p in t.all_parents}
        [groups[name] for name in groups if name not in children] >> report
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
