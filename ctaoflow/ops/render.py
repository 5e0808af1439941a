"""``ctaoflow render``: a production's DAG as a standalone Python module.

The module spells out the DAG that ``dags/productions.py`` builds (same ids, same
dependencies, same operators) for sites that prefer static DAG files.
"""

from __future__ import annotations

from pathlib import Path

from ctaoflow.spec.graph import topological_order
from ctaoflow.spec.model import Production

_HEAD = '''"""DAG of production {name!r}, rendered by `ctaoflow render` from {source}.

Regenerate after editing the YAML; the operators read the spec file when they run.
"""

from airflow.sdk import DAG, TaskGroup, TriggerRule

from operators.dag_builder import CHUNK_RETRIES, DEFAULT_ARGS, START_DATE
from operators.production import (FinalizeTransformationOperator,
                                  PrepareTransformationOperator, ProductionReportOperator,
                                  RunChunkOperator, SyncProductionOperator)

SPEC = {spec!r}

with DAG(dag_id={name!r}, schedule={schedule!r}, start_date=START_DATE, catchup=False,
         max_active_runs=1, default_args=DEFAULT_ARGS, tags={tags!r},
         description={description!r},
         doc_md={doc!r}) as dag:
    sync = SyncProductionOperator(task_id="sync", spec_path=SPEC)
    report = ProductionReportOperator(task_id="report", spec_path=SPEC,
                                      trigger_rule=TriggerRule.ALL_DONE)
'''

_GROUP = '''
    with TaskGroup(group_id={name!r}, tooltip={tooltip!r}) as {var}:
        prepare = PrepareTransformationOperator(task_id="prepare", spec_path=SPEC,
                                                transformation={name!r})
        run = RunChunkOperator.partial(task_id="run", spec_path=SPEC, transformation={name!r},
                                       **CHUNK_RETRIES, poll_interval={poll!r}).expand(
            chunk=prepare.output)
        finalize = FinalizeTransformationOperator(task_id="finalize", spec_path=SPEC,
                                                  transformation={name!r},
                                                  trigger_rule=TriggerRule.ALL_DONE)
        prepare >> run >> finalize
'''


def render(production: Production, spec_path: Path) -> str:
    """Python source of the production's DAG."""
    order = topological_order(production)
    var = {t.name: f"g_{t.name.replace('-', '_')}" for t in order}
    parts = [_HEAD.format(name=production.production, source=spec_path.name,
                          spec=str(spec_path.resolve()), schedule=production.schedule,
                          tags=["ctaoflow", *production.tags],
                          description=production.description or None,
                          doc=f"ctaoflow production from `{spec_path.name}`")]
    for t in order:
        parts.append(_GROUP.format(name=t.name, var=var[t.name], tooltip=f"{t.type}: {t.description}",
                                   poll=production.defaults.poll_interval))
        for parent in t.all_parents:
            parts.append(f"    {var[parent]} >> {var[t.name]}\n")
        if not t.all_parents:
            parts.append(f"    sync >> {var[t.name]}\n")
    children = {p for t in order for p in t.all_parents}
    leaves = ", ".join(var[t.name] for t in order if t.name not in children)
    parts.append(f"    [{leaves}] >> report\n")
    return "".join(parts)
