"""The batch-system interface: bulk submit, bulk poll, cancel, fetch log."""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence


class JobState(str, enum.Enum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    DONE = "DONE"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    TIMEOUT = "TIMEOUT"
    NODE_FAIL = "NODE_FAIL"
    OUT_OF_MEMORY = "OUT_OF_MEMORY"
    LOST = "LOST"  # the backend no longer knows the job and kept no record of it

    @property
    def final(self) -> bool:
        return self not in (JobState.PENDING, JobState.RUNNING)


@dataclass(frozen=True)
class JobStatus:
    state: JobState
    exit_code: int | None = None
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"state": self.state.value, "exit_code": self.exit_code, "reason": self.reason}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "JobStatus":
        return cls(JobState(data["state"]), data.get("exit_code"), data.get("reason", ""))


@dataclass(frozen=True)
class JobSpec:
    """One batch job: an argument vector (never a shell string) run in ``workdir``."""

    name: str  # deterministic: <production>.<transformation>.<task>.<attempt>
    command: tuple[str, ...]
    workdir: str
    env: dict[str, str] = field(default_factory=dict)
    cores: int = 1
    memory_mb: int = 2000
    walltime_s: int = 3600
    image: str | None = None  # container image (Apptainer/Kubernetes)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["command"] = list(self.command)
        return data


@dataclass(frozen=True)
class SiteConfig:
    """A computing site: which backend runs its jobs and where its data sit."""

    name: str
    backend: str  # local | slurm | htcondor | kubernetes | simulated
    connection: str | None = None  # Airflow connection id of the endpoint
    queue: str | None = None  # partition / queue / namespace
    slots: int = 100
    storages: tuple[str, ...] = ()  # storage elements read locally
    image: str | None = None
    cvmfs: str | None = None
    status: str = "active"  # active | banned
    options: dict[str, Any] = field(default_factory=dict)  # backend specific settings

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["storages"] = list(self.storages)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SiteConfig":
        return cls(**{**data, "storages": tuple(data.get("storages", ()))})


class BackendError(RuntimeError):
    """A batch-system call failed; one line naming the site."""


class Backend(ABC):
    """A batch system at one site. All calls are bulk: one command per call."""

    def __init__(self, site: SiteConfig, params: dict[str, Any] | None = None) -> None:
        self.site = site
        self.params = params or {}

    @abstractmethod
    def submit(self, jobs: Sequence[JobSpec]) -> dict[str, str]:
        """Submit jobs at once (an array where the system has them); job name -> id."""

    @abstractmethod
    def find(self, names: Sequence[str]) -> dict[str, str]:
        """Ids of jobs with these names already known to the system (to reconnect)."""

    @abstractmethod
    def poll(self, job_ids: Sequence[str]) -> dict[str, JobStatus]:
        """States of these jobs, in one query to the system."""

    @abstractmethod
    def cancel(self, job_ids: Sequence[str]) -> None:
        """Cancel these jobs (no error for jobs already finished)."""

    @abstractmethod
    def log(self, job_id: str, tail_bytes: int = 20000) -> str:
        """The end of the job's output (stdout and stderr)."""

    def job_names(self, prefix: str) -> list[str] | None:
        """Names of every job the system keeps whose name starts with ``prefix``, for the
        audit's orphan check; None where the system cannot list them."""
        return None
