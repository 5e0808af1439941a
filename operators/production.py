"""The operators of a production DAG: sync, prepare, run a chunk, finalize, report.

Each holds only task logic and drives ``ctaoflow.engine.Engine``; an Airflow task
instance manages a chunk of batch jobs, never a single one.
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any, Callable

from airflow.providers.standard.triggers.temporal import DateTimeTrigger
from airflow.sdk import BaseOperator, Context
from airflow.sdk.exceptions import AirflowFailException

from ctaoflow.backends import JobStatus
from ctaoflow.engine import ChunkResult, Engine, nights
from ctaoflow.engine.ledger import LedgerError
from ctaoflow.engine.versions import SpecChangeRefused
from ctaoflow.ops import report
from ctaoflow.spec.nights import night_of
from operators.hooks.production import ProductionHook
from operators.links import ChunkLink, ProductionLink
from operators.triggers import JobsTrigger


def _plain_failures(method: Callable[..., Any]) -> Callable[..., Any]:
    """The task's error is its one line: a refused spec change fails it at once (no
    retry); a ledger error is retried, without the database's traceback."""

    @functools.wraps(method)
    def wrapper(self: "ProductionOperator", *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except SpecChangeRefused as exc:
            raise AirflowFailException(exc.line(self.spec_path)) from None
        except LedgerError as exc:
            raise LedgerError(str(exc)) from None
    return wrapper


class ProductionOperator(BaseOperator):
    """Base: knows its production's spec file and, for most, one transformation."""

    ui_color = "#d6e4f0"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name in ("execute", "resume", "resume_held"):
            if name in cls.__dict__:
                setattr(cls, name, _plain_failures(cls.__dict__[name]))

    def __init__(self, *, spec_path: str, transformation: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.spec_path = spec_path
        self.transformation = transformation

    def hook(self, context: Context) -> ProductionHook:
        """The production's hook; of this run's night in a nightly production (recorded in
        ``night`` for the extra links)."""
        self.night = run_night(context, self.spec_path)
        return ProductionHook(self.spec_path, night=self.night)


def run_night(context: Context, spec_path: str) -> str | None:
    """The night of a nightly production's run: its partition key (scheduled runs,
    backfills), else ``conf["night"]`` (a manual trigger); None for other productions."""
    if ProductionHook(spec_path).production().nightly is None:
        return None
    key = context.get("partition_key") or (context["dag_run"].conf or {}).get("night")
    if not key:
        raise AirflowFailException(
            "this run of a nightly production names no night: trigger it with the night as "
            "partition key (YYYY-MM-DD) or with conf {\"night\": \"YYYY-MM-DD\"}")
    try:
        return night_of(str(key))
    except ValueError as exc:
        raise AirflowFailException(str(exc)) from None


class SyncProductionOperator(ProductionOperator):
    """Records the production and its transformations in the ledger; fails on a spec
    change that would redo or orphan work (``ctaoflow accept`` applies it on purpose)."""

    def execute(self, context: Context) -> None:
        self.hook(context).engine().sync()


class NightDataOperator(ProductionOperator):
    """Waits, deferred, until the night's raw data are complete in the catalog or the
    wait timed out (then the night is processed with what is there, and what was
    missing is logged and kept in the ledger)."""

    ui_color = "#e0d6f0"

    def execute(self, context: Context) -> None:
        hook = self.hook(context)
        found = nights.check(hook.engine(), hook.night)
        if found.next_check is not None:
            self.log.info("night %s: waiting for its raw data (%d file(s) so far; %s); next "
                          "check at %s UTC", hook.night, found.raw_files,
                          "; ".join(found.missing), found.next_check)
            self.defer(trigger=DateTimeTrigger(
                moment=found.next_check.replace(tzinfo=dt.timezone.utc)), method_name="resume")
        self.log.info("night %s: %s with %d raw file(s)", hook.night, found.status,
                      found.raw_files)
        for line in found.missing:
            self.log.warning("night %s: missing: %s", hook.night, line)

    def resume(self, context: Context, event: Any = None) -> None:
        return self.execute(context)


class PrepareTransformationOperator(ProductionOperator):
    """Takes in new input files, groups them into tasks; returns the chunks to run."""

    def execute(self, context: Context) -> list[int]:
        chunks = self.hook(context).engine().prepare(self.transformation)
        self.log.info("%s: %d chunk(s) with work: %s", self.transformation, len(chunks), chunks)
        return chunks


class RunChunkOperator(ProductionOperator):
    """Runs one chunk of jobs: submit, defer until all are final, collect, retry.

    Re-running the task (a clear in the UI, a retry after a crash) reconnects to jobs
    already submitted and resubmits only unfinished tasks. Its ``map_index_template``
    (``ctaoflow.spec.layout``) shows ``chunk_label``: the chunk's tasks and sites.
    """

    ui_color = "#f0e4d6"
    operator_extra_links = (ChunkLink(),)

    def __init__(self, *, chunk: int, poll_interval: float = 5.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.chunk = chunk
        self.poll_interval = poll_interval

    def execute(self, context: Context) -> None:
        engine = self.hook(context).engine()
        result = engine.submit(self.transformation, self.chunk, revive=True)
        return self._next(context, engine, result)

    def resume(self, context: Context, event: dict[str, Any]) -> None:
        engine = self.hook(context).engine()
        statuses = {site: {i: JobStatus.from_dict(s) for i, s in by_id.items()}
                    for site, by_id in event["statuses"].items()}
        engine.collect(self.transformation, self.chunk, statuses)
        return self._next(context, engine, engine.submit(self.transformation, self.chunk))

    def resume_held(self, context: Context, event: Any = None) -> None:
        engine = self.hook(context).engine()
        return self._next(context, engine, engine.submit(self.transformation, self.chunk))

    def _next(self, context: Context, engine: Engine, result: ChunkResult) -> None:
        label = engine.label(self.transformation, self.chunk)
        context["chunk_label"] = label  # type: ignore[typeddict-unknown-key]
        if result.in_flight:
            jobs = sum(len(ids) for ids in result.in_flight.values())
            self.log.info("chunk %d: waiting for %d job(s) at %s", self.chunk, jobs,
                          ", ".join(sorted(result.in_flight)))
            self.defer(trigger=JobsTrigger(
                sites={s: engine.sites[s].to_dict() for s in result.in_flight},
                jobs=result.in_flight, poll_interval=self.poll_interval), method_name="resume")
        if result.held_until:
            self.log.warning("chunk %d: every site allowed to its tasks is paused; waiting "
                             "until %s UTC", self.chunk, result.held_until)
            self.defer(trigger=DateTimeTrigger(
                moment=result.held_until.replace(tzinfo=dt.timezone.utc)),
                method_name="resume_held")
        self.log.info("chunk %d: %d task(s) done, %d failed", self.chunk, result.done,
                      len(result.failed))
        for line in result.failed:
            self.log.error("%s", line)
        if result.failed:
            raise AirflowFailException(f"chunk {self.chunk}: {len(result.failed)} task(s) failed; "
                                       "their files are back to Unused (clear this task to retry)")


class FinalizeTransformationOperator(ProductionOperator):
    """Completes the transformation when nothing is left; logs its counts."""

    def execute(self, context: Context) -> dict[str, dict[str, int]]:
        summary = self.hook(context).engine().finalize(self.transformation)
        self.log.info("%s: %s", self.transformation, summary)
        return summary


class ProductionReportOperator(ProductionOperator):
    """Logs the production's report and the link to its page; fails, so that the run is
    not green, while files of the production need a person."""

    operator_extra_links = (ProductionLink(),)

    def execute(self, context: Context) -> None:
        hook = self.hook(context)
        built = report.build(hook.production(), self.spec_path, hook.sessions(), top=3)
        page = ProductionLink().get_link(self, ti_key=context["ti"])
        self.log.info("\n%s\n\nThe production's page: %s", report.as_text(built), page)
        if built.needs_a_person:
            stuck = sum(n for counts in built.needs_a_person.values() for n in counts.values())
            raise AirflowFailException(
                f"{stuck} file(s) need a person ({', '.join(built.needs_a_person)}): see "
                f"{page} or reset them (ctaoflow reset {self.spec_path} --status Problematic "
                "MaxReset)")


class WatcherOperator(BaseOperator):
    """Fails the DAG run when any of its tasks failed (Airflow's watcher pattern): finalize
    and report run whatever happened, so without it a run whose chunks failed would end
    "success"."""

    ui_color = "#f0d6d6"

    def execute(self, context: Context) -> None:
        raise AirflowFailException("a task of this run failed: see the failed task's log and "
                                   "the report")
