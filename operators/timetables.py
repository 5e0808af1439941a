"""The timetable of nightly productions: one DAG run per night, a night a partition.

Airflow's ``CronPartitionTimetable`` already gives what a night needs: a run when the
night has ended at the site (a cron time in the site's time zone), a partition key per
run, backfill and clearing by partition key. This subclass names the key after the
night (the date its evening began) and the scheduled run ``night__<key>``.
"""

from __future__ import annotations

from typing import Any

from airflow.timetables.trigger import CronPartitionTimetable
from airflow.utils.types import DagRunType


class NightlyTimetable(CronPartitionTimetable):
    """Runs at ``starts_at`` each morning (site time) for the night before it."""

    def __init__(self, cron: str, *, timezone: Any, run_offset: int | None = -1,
                 run_immediately: Any = False, key_format: str = "%Y-%m-%d") -> None:
        super().__init__(cron, timezone=timezone, run_offset=run_offset,
                         run_immediately=run_immediately, key_format=key_format)

    @property
    def summary(self) -> str:
        return f"nightly at {self._expression} ({self._timezone})"

    def iter_partition_dagrun_infos(self, *, earliest: Any, latest: Any) -> Any:
        """Backfill: every night whose date lies in ``[earliest, latest]`` (whole days:
        ``--to-date 2026-12-02`` includes that night, whose tick is in the morning)."""
        end_of_day = latest.replace(hour=23, minute=59, second=59, microsecond=0)
        return super().iter_partition_dagrun_infos(earliest=earliest, latest=end_of_day)

    def generate_run_id(self, *, run_type: DagRunType, **extra: Any) -> str:
        key = extra.get("partition_key")
        if run_type == DagRunType.SCHEDULED and key:
            return f"night__{key}"
        return super().generate_run_id(run_type=run_type, **extra)
