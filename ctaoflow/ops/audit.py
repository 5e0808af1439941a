"""``ctaoflow audit``: reconcile the ledger with the catalog and the batch systems."""

from __future__ import annotations

from collections import Counter
from typing import Callable

from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from ctaoflow.backends.base import Backend, SiteConfig
from ctaoflow.catalog.base import Catalog
from ctaoflow.engine.ledger import (FileRow, FileStatus, JobRow, JobStatusName, ProductionRow, TaskRow,
                             TaskStatus, TransformationRow, session_factory)
from ctaoflow.spec.model import Production


def audit(production: Production, catalog: Catalog, sites: dict[str, SiteConfig],
          backend_for: Callable[[SiteConfig], Backend],
          sessions: sessionmaker | None = None) -> list[str]:
    """One line per discrepancy; an empty list means the production is consistent."""
    problems: list[str] = []
    with (sessions or session_factory())() as session:
        prod = session.scalar(select(ProductionRow).where(
            ProductionRow.name == production.production))
        if prod is None:
            return [f"{production.production}: not in the ledger"]
        rows = session.scalars(select(TransformationRow)  # in id order on both ledgers
                               .where(TransformationRow.production_id == prod.id)
                               .order_by(TransformationRow.id)).all()
        all_outputs: Counter[str] = Counter()
        for row in rows:
            tasks = {t.id: t for t in session.scalars(
                select(TaskRow).where(TaskRow.transformation_id == row.id)
                .order_by(TaskRow.id))}
            for f in session.scalars(select(FileRow).where(FileRow.transformation_id == row.id)
                                     .order_by(FileRow.id)):
                task = tasks.get(f.task_id)
                done = task is not None and task.status == TaskStatus.DONE.value
                if f.status == FileStatus.PROCESSED.value and not done:
                    problems.append(f"{row.name}: {f.lfn} is Processed without a done task")
                elif done and f.status != FileStatus.PROCESSED.value:
                    problems.append(f"{row.name}: {f.lfn} is {f.status} but its task "
                                    f"{task.index} is done")
            outputs = [lfn for t in tasks.values() if t.status == TaskStatus.DONE.value
                       for lfn in t.outputs]
            all_outputs.update(outputs)
            present = catalog.local_paths(outputs) if outputs else {}
            problems += [f"{row.name}: output {lfn} of a done task is not in the catalog"
                         for lfn in outputs if lfn not in present]
        problems += [f"output {lfn} registered by {n} tasks"
                     for lfn, n in all_outputs.items() if n > 1]
        jobs = session.scalars(select(JobRow).join(TaskRow, JobRow.task_id == TaskRow.id)
                               .where(TaskRow.transformation_id.in_([r.id for r in rows]))
                               .order_by(JobRow.id)).all()
        problems += _job_problems(prod, jobs, sites, backend_for)
    return problems


def _job_problems(prod: ProductionRow, jobs: list[JobRow], sites: dict[str, SiteConfig],
                  backend_for: Callable[[SiteConfig], Backend]) -> list[str]:
    """Jobs stuck in the ledger, finished but uncollected, or unknown to the ledger."""
    problems = [f"job {j.name}: still Submitting (never reached {j.site})"
                for j in jobs if j.status == JobStatusName.SUBMITTING.value]
    names = Counter(j.name for j in jobs)
    problems += [f"job name {n} used {c} times" for n, c in names.items() if c > 1]
    for site_name in sorted({j.site for j in jobs}):
        site = sites.get(site_name)
        if site is None:
            problems.append(f"site {site_name}: not in the sites file any more")
            continue
        backend = backend_for(site)
        waiting = [j for j in jobs if j.site == site_name
                   and j.status == JobStatusName.SUBMITTED.value]
        if waiting:
            states = backend.poll([j.backend_id for j in waiting])
            problems += [f"job {j.name} at {site_name}: finished ({states[j.backend_id].state.value})"
                         " but not collected" for j in waiting if states[j.backend_id].state.final]
        listed = backend.job_names(f"{prod.name}-{prod.uid}.")
        problems += [f"job {n} at {site_name}: on the batch system but not in the ledger"
                     for n in sorted(listed or ()) if n not in names]
    return problems
