"""The production spec: what a production YAML may say (pydantic models).

These models check shapes and types; cross-field rules (parents, cycles, query
overlap, placeholders) live in ``ctaoflow.spec.validation``. ``ctaoflow schema`` exports
the JSON Schema of ``Production`` for editors.
"""

from __future__ import annotations

import re
from functools import cached_property
from typing import Annotated, Any, Literal

from croniter import croniter
from pydantic import BaseModel, ConfigDict, Field, field_validator

NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_-]{0,62}$"
SITE_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"  # sites and storages: one path part
SiteName = Annotated[str, Field(pattern=SITE_NAME_PATTERN)]
SCHEDULE_PRESETS = ("@once", "@continuous", "@hourly", "@daily", "@weekly", "@monthly",
                    "@quarterly", "@yearly")
TRANSFORMATION_TYPES = ("mc_simulation", "processing", "merging", "training",
                        "apply_models", "command")
Scalar = str | int | float | bool
QueryValue = Scalar | list[Scalar] | dict[str, Scalar | list[Scalar]]


ENV_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
TAG_MAX_LENGTH = 100  # Airflow refuses longer DAG tags


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


_UNITS = {"": 1, "k": 1e-3, "m": 1, "g": 1000, "t": 1_000_000}
_TIME = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def megabytes(value: int | str) -> int:
    """``2000`` (MB), ``"2GB"``, ``"500MB"`` -> megabytes (at least 1)."""
    if isinstance(value, int):
        amount: float = value
    else:
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmMgGtT]?)i?[bB]?\s*", value)
        if not match:
            raise ValueError(f"bad memory {value!r}; write e.g. 2GB or 500MB")
        amount = float(match[1]) * _UNITS[match[2].lower() or "m"]
    if amount <= 0:
        raise ValueError(f"memory {value!r} is not positive; write e.g. 2GB or 500MB")
    return max(1, round(amount))


def seconds(value: int | str) -> int:
    """``3600``, ``"90m"``, ``"1h30m"``, ``"2d"``, ``"01:30:00"`` -> seconds (at least 1)."""
    if isinstance(value, int):
        total = value
    elif re.fullmatch(r"\d+:\d\d:\d\d", value.strip()):
        hours, minutes, secs = (int(p) for p in value.strip().split(":"))
        total = hours * 3600 + minutes * 60 + secs
    else:
        parts = re.findall(r"(\d+)\s*([smhd])", value)
        if not parts or re.sub(r"[\d\s smhd]", "", value):
            raise ValueError(f"bad walltime {value!r}; write e.g. 90m, 2h or 01:30:00")
        total = sum(int(n) * _TIME[unit] for n, unit in parts)
    if total <= 0:
        raise ValueError(f"walltime {value!r} is not positive; write e.g. 90m, 2h or 01:30:00")
    return total


def check_schedule(value: str) -> None:
    """A schedule Airflow accepts: a preset or a 5-field cron expression (croniter)."""
    if value in SCHEDULE_PRESETS:
        return
    fields = len(value.split())
    reason = f"{fields} fields, not 5"
    if fields == 5 or value.startswith("@"):
        try:
            if len(croniter(value).expanded) == 5:
                return
        except (ValueError, TypeError, KeyError) as exc:
            reason = " ".join(str(exc).split()) or "unreadable"
    raise ValueError(f"{value!r} is not a cron expression ({reason}); write 5 fields, "
                     "'minute hour day month weekday' (e.g. '*/30 * * * *'), or a preset: "
                     f"{', '.join(SCHEDULE_PRESETS)}")


class Resources(Model):
    cores: int = Field(1, ge=1)
    memory: int | str = Field("2GB", description="MB as a number, or e.g. 2GB, 500MB")
    walltime: int | str = Field("2h", description="seconds, or e.g. 90m, 2h, 01:30:00")

    @field_validator("cores", "memory", "walltime", mode="before")
    @classmethod
    def _not_boolean(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError(f"expected a number, got the boolean {str(value).lower()}; "
                             "write e.g. 'cores: 4', 'memory: 2GB', 'walltime: 2h'")
        return value

    @field_validator("memory")
    @classmethod
    def _memory(cls, value: int | str) -> int | str:
        megabytes(value)
        return value

    @field_validator("walltime")
    @classmethod
    def _walltime(cls, value: int | str) -> int | str:
        seconds(value)
        return value

    @property
    def memory_mb(self) -> int:
        return megabytes(self.memory)

    @property
    def walltime_s(self) -> int:
        return seconds(self.walltime)


class Environment(Model):
    """The job's software: a container image and/or a CVMFS software path."""

    image: str | None = None
    cvmfs: str | None = None


class Job(Model):
    """The job template: the command as an argument list with placeholders."""

    command: list[str] = Field(min_length=1, description=(
        "argument vector; placeholders {inputs} (one argument per input file, must stand "
        "alone), {input}, output keys (a per-input output's: one argument per input file, "
        "must stand alone), {task}, {run}, {group}, {production}, "
        "{transformation}, parameter names and side-input names"))
    parameters: dict[str, Scalar] = Field(default_factory=dict)
    environment: Environment | None = None
    resources: Resources | None = None
    env: dict[Annotated[str, Field(pattern=ENV_NAME_PATTERN)], str] = Field(
        default_factory=dict)
    side_inputs: dict[str, str | dict[str, QueryValue]] = Field(
        default_factory=dict, description=(
            "placeholder -> files every job also reads (e.g. a model): the outputs of a "
            "transformation (its name), or the catalog files a query selects, across "
            "productions (a query mapping)"))


class Grouping(Model):
    """How selected files are cut into tasks."""

    plugin: Literal["standard", "by_size", "by_metadata", "all"] = "standard"
    group_size: int = Field(1, ge=1, description="files per task (standard, by_metadata)")
    size_gb: float | None = Field(None, gt=0, description="by_size: target GB per task")
    max_files: int | None = Field(None, ge=1, description="by_size: files per task at most")
    key: str | None = Field(None, description="by_metadata: the metadata key, e.g. run")


class Output(Model):
    key: str = Field("output", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
                     description="the placeholder naming this output's path in the command")
    name: str = Field(description=(
        "file name pattern, e.g. '{transformation}_{task:06d}.DL2.h5'; a per-input output's "
        "must contain {input_stem}, e.g. '{input_stem}.DL2.h5'"))
    metadata: dict[str, Scalar] = Field(default_factory=dict)
    per_input: bool = Field(False, description=(
        "one file per input file instead of one per task: its metadata is inherited from that "
        "input alone, {input_stem} is that input's file name without its extension "
        "(a compression extension counts with the one before it: run1.simtel.zst -> run1), "
        "and its key expands in the command to one argument per input file, in the order "
        "of {inputs} (it must stand alone)"))


class Input(Model):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    from_: list[str] = Field(default_factory=list, alias="from",
                             description="parent transformations whose outputs are the input")
    query: dict[str, QueryValue] = Field(default_factory=dict)

    @field_validator("from_", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


class Runs(Model):
    """An MC simulation's jobs: one per run number, extendable later."""

    count: int = Field(ge=1)
    start: int = Field(1, ge=0)


class Transformation(Model):
    name: str = Field(pattern=NAME_PATTERN)
    type: Literal["mc_simulation", "processing", "merging", "training", "apply_models",
                  "command"] = "command"
    description: str = ""
    input: Input | None = None
    runs: Runs | None = None
    parents: list[str] = Field(default_factory=list,
                               description="extra ordering dependencies besides input.from")
    grouping: Grouping = Grouping()
    job: Job
    outputs: list[Output] = Field(min_length=1)
    storage: SiteName | None = None
    sites: list[SiteName] | None = Field(None, min_length=1)
    max_attempts: int | None = Field(None, ge=1)

    @property
    def all_parents(self) -> list[str]:
        """Input parents, then ordering parents, then side-input sources, deduplicated."""
        names = list(self.input.from_ if self.input else []) + self.parents
        names += [s for s in self.job.side_inputs.values() if isinstance(s, str)]
        return list(dict.fromkeys(names))


class Defaults(Model):
    sites: list[SiteName] = Field(default_factory=lambda: ["local"], min_length=1)
    storage: SiteName = "LOCAL-DISK"
    max_attempts: int = Field(3, ge=1, description=(
        "application failures of one task before it fails (its files are reset)"))
    max_infrastructure_retries: int = Field(5, ge=0, description=(
        "infrastructure failures of one task retried at once on another site"))
    max_reassign: int = Field(2, ge=1, description=(
        "resets of a file after application failures before it goes Problematic"))
    max_resets: int = Field(10, ge=1, description=(
        "resets of a file after infrastructure failures before MaxReset"))
    chunk_size: int = Field(100, ge=1, description="jobs per Airflow task instance")
    poll_interval: float = Field(10.0, ge=0.1, description="seconds between batch-system "
                                 "polls (0.1 at least: a smaller one polls without pause)")
    environment: Environment = Environment()
    resources: Resources = Resources()
    provenance: bool = Field(False, description=(
        "record each output's input LFNs in its catalog metadata (key 'inputs')"))


class Completeness(Model):
    """When a night's raw data are complete: exactly one condition."""

    run_summary: dict[str, QueryValue] | None = Field(None, description=(
        "query of the night's run summary file; complete once it is registered and, when "
        "its metadata 'subruns' lists run:count pairs, every listed subrun is"))
    dataset_closed: str | None = Field(None, description=(
        "a catalog dataset of the night's raw data, e.g. 'LST1_R0_{night}'; complete once "
        "it is closed"))
    quiet_for: int | str | None = Field(None, description=(
        "complete once no new raw file arrived for this long, e.g. 30m"))

    @field_validator("quiet_for")
    @classmethod
    def _quiet(cls, value: int | str | None) -> int | str | None:
        if value is not None:
            seconds(value)
        return value


class Nightly(Model):
    """A nightly production: one DAG run per night, started when the night ends at the
    site; ``{night}`` (YYYYMMDD) and ``{version}`` fill queries, names and paths."""

    timezone: str = Field("Atlantic/Canary", description="the site's IANA time zone")
    starts_at: str = Field("07:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$", description=(
        "local time (HH:MM) on the morning after the night when its run starts"))
    version: str = Field("v1", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$", description=(
        "processing version: a new one writes new outputs and ledger rows beside the old"))
    raw: dict[str, QueryValue] = Field(description=(
        "query of the night's raw files, e.g. {data_level: R0, night: '{night}'}"))
    run_key: str = Field("run", description="raw-file metadata key of the run number")
    complete_when: Completeness = Field(description="when the night's raw data are complete")
    timeout: int | str = Field("6h", description=(
        "after this long the night is processed with what is there, and what was missing "
        "is reported"))
    poll_interval: int | str = Field("5m", description="between two checks of the catalog")
    max_active_nights: int = Field(2, ge=1, description="nights processed at once")

    @field_validator("timeout", "poll_interval")
    @classmethod
    def _duration(cls, value: int | str) -> int | str:
        seconds(value)
        return value


class Production(Model):
    production: str = Field(pattern=NAME_PATTERN, description="the DAG id")
    description: str = ""
    scope: str = Field("ctao", pattern=r"^[a-z][a-z0-9_-]*$")
    lfn_base: str = Field("/ctao/{scope}/{production}",
                          description="outputs go to <lfn_base>/<transformation>/<name>")
    schedule: str | None = Field(None, description="cron or preset; none = triggered by hand")

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: str | None) -> str | None:
        if value is not None:
            check_schedule(value)
        return value
    tags: list[Annotated[str, Field(min_length=1, max_length=TAG_MAX_LENGTH)]] = Field(
        default_factory=list)
    common: dict[str, Scalar] = Field(default_factory=dict,
                                      description="metadata added to every output")
    defaults: Defaults = Defaults()
    nightly: Nightly | None = Field(None, description="one DAG run per night (LST-1)")
    transformations: list[Transformation] = Field(min_length=1)

    def transformation(self, name: str) -> Transformation:
        """The (first) transformation called ``name``; KeyError if there is none."""
        return self.by_name[name]

    @cached_property
    def by_name(self) -> dict[str, Transformation]:
        """Transformation name -> transformation; the first of a repeated name wins."""
        return {t.name: t for t in reversed(self.transformations)}

    @property
    def output_base(self) -> str:
        return self.lfn_base.format(scope=self.scope, production=self.production)
