"""A night's raw data: are they complete in the catalog, and what is missing?

One check per call, recorded in the ledger's ``nights`` row of the night's production:
the Airflow layer calls ``check`` again after ``poll_interval`` until the night is
Complete, or TimedOut (processed with what is there; ``missing`` says what was not).
A decided night stays decided: rerunning it takes in whatever arrived since.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy import select

from ctaoflow.engine.context import Context, event
from ctaoflow.engine.ledger import NightRow, NightStatus, ProductionRow, now
from ctaoflow.spec.model import Nightly, seconds
from ctaoflow.spec.query import Query


@dataclass
class NightCheck:
    status: str
    raw_files: int
    missing: list[str] = field(default_factory=list)
    next_check: dt.datetime | None = None  # while Waiting

    @property
    def ready(self) -> bool:
        return self.status != NightStatus.WAITING.value


def check(ctx: Context, night: str) -> NightCheck:
    """Look at the night's raw data once; decide Complete, TimedOut or still Waiting."""
    nightly = ctx.production.nightly
    assert nightly is not None, "check() is for the production of one night (for_night)"
    per_run = Counter(str(f.metadata.get(nightly.run_key))
                      for f in ctx.catalog.query(Query.parse(nightly.raw)))
    raw = sum(per_run.values())
    with ctx.sessions.begin() as session:
        production = session.scalar(select(ProductionRow)
                                    .filter_by(name=ctx.production.production))
        if production is None:
            ctx.sync()
            return check(ctx, night)
        row = session.get(NightRow, production.id)
        if row is None:
            row = NightRow(production_id=production.id, night=night, raw_files=raw,
                           status=NightStatus.WAITING.value, waiting_since=now(),
                           last_change_at=now(), missing=[])
            session.add(row)
        if row.status != NightStatus.WAITING.value:
            return NightCheck(row.status, raw, list(row.missing))
        if raw != row.raw_files:
            row.raw_files, row.last_change_at = raw, now()
        complete, missing = _complete(ctx, nightly, per_run, row)
        row.missing = missing  # what it waits for, while Waiting
        waited = (now() - row.waiting_since).total_seconds()
        if complete or waited >= seconds(nightly.timeout):
            row.status = (NightStatus.COMPLETE if complete else NightStatus.TIMED_OUT).value
            row.decided_at = now()
            event(session, None, "night", f"night {night}: {row.status} with {raw} raw "
                  "file(s)" + (f"; missing: {'; '.join(missing)}" if missing else ""))
            return NightCheck(row.status, raw, missing)
        pause = dt.timedelta(seconds=min(seconds(nightly.poll_interval),
                                         seconds(nightly.timeout) - waited))
        return NightCheck(row.status, raw, missing, next_check=now() + pause)


def _complete(ctx: Context, nightly: Nightly, per_run: Counter,
              row: NightRow) -> tuple[bool, list[str]]:
    """Whether the condition holds, and what it still waits for."""
    condition = nightly.complete_when
    if condition.dataset_closed is not None:
        closed = ctx.catalog.dataset_closed(condition.dataset_closed)
        return closed, [] if closed else [f"dataset {condition.dataset_closed} is still open"]
    if condition.quiet_for is not None:
        quiet = (now() - row.last_change_at).total_seconds() >= seconds(condition.quiet_for)
        if row.raw_files and quiet:
            return True, []
        return False, [f"raw files still arriving (or none yet) within {condition.quiet_for}"]
    assert condition.run_summary is not None
    summaries = list(ctx.catalog.query(Query.parse(condition.run_summary)))
    if not summaries:
        return False, ["the run summary is not registered"]
    missing = [f"run {run}: {per_run.get(run, 0)} of {expected} subruns"
               for summary in summaries
               for run, expected in expected_subruns(summary.metadata.get("subruns")).items()
               if per_run.get(run, 0) < expected]
    return not missing, missing


def expected_subruns(value: object) -> dict[str, int]:
    """A run summary's ``subruns`` metadata, ``{"2001": 4}`` or ``"2001:4,2002:3"``, as a
    run -> subrun count mapping (empty when the summary lists none)."""
    if isinstance(value, dict):
        return {str(run): int(count) for run, count in value.items()}
    if isinstance(value, str) and value.strip():
        pairs = (item.split(":") for item in value.replace(" ", "").split(",") if item)
        return {run: int(count) for run, count in pairs}
    return {}
