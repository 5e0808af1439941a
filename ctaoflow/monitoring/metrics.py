"""ctaoflow's metrics, named as Airflow names its own (``scheduler.tasks.running``,
``ti.finish.<dag_id>.<task_id>.<state>``), sent through whatever ``stats`` object is
given: in an Airflow process, Airflow's own (``airflow.sdk.observability.stats``, StatsD
when ``[metrics] statsd_on``), so they go where Airflow's metrics go.

Gauges, from the ledger (every sender round in an Airflow task, and by
``ctaoflow monitoring send --metrics``):

- ``ctaoflow.jobs.<site>.<state>``: jobs by site and state (Submitting, Submitted, Done,
  Failed, Killed);
- ``ctaoflow.files.<status>``: files by status (Unused is the intake backlog);
- ``ctaoflow.monitoring.backlog``: documents waiting for OpenSearch;
- ``ctaoflow.monitoring.lag``: seconds the oldest of them has waited.

Counter ``ctaoflow.monitoring.sent`` (documents acknowledged) and timers
``ctaoflow.poll.latency.<site>`` (one bulk poll of a site; ``poll_latency``) and
``ctaoflow.intake.lag.<production>.<transformation>`` (``intake_lag``: from a file's
registration in the catalog to its intake, when the catalog says when it registered it).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from ctaoflow.engine.ledger import FileRow, JobRow, OutboxRow, now

_NAME = re.compile(r"[^a-zA-Z0-9_-]")


def part(name: str) -> str:
    """One dot-free part of a metric name (Airflow's rule: ``[a-zA-Z0-9_.-]``)."""
    return _NAME.sub("_", str(name))


def gauges(session: Session) -> dict[str, float]:
    """The gauges now, by metric name."""
    values: dict[str, float] = {}
    for site, state, count in session.execute(
            select(JobRow.site, JobRow.status, func.count()).group_by(JobRow.site, JobRow.status)):
        values[f"ctaoflow.jobs.{part(site)}.{part(state)}"] = count
    for status, count in session.execute(
            select(FileRow.status, func.count()).group_by(FileRow.status)):
        values[f"ctaoflow.files.{part(status)}"] = count
    waiting, oldest = session.execute(select(func.count(), func.min(OutboxRow.at))).one()
    values["ctaoflow.monitoring.backlog"] = waiting
    values["ctaoflow.monitoring.lag"] = (
        round((now() - oldest).total_seconds(), 3) if oldest else 0.0)
    return values


def emit_gauges(sessions: sessionmaker[Session], stats: Any, _sender: Any = None) -> None:
    with sessions() as session:
        for name, value in gauges(session).items():
            stats.gauge(name, value)


def poll_latency(stats: Any, site: str, seconds: float) -> None:
    stats.timing(f"ctaoflow.poll.latency.{part(site)}", dt.timedelta(seconds=seconds))


def intake_lag(stats: Any, production: str, transformation: str, seconds: float) -> None:
    stats.timing(f"ctaoflow.intake.lag.{part(production)}.{part(transformation)}",
                 dt.timedelta(seconds=seconds))
