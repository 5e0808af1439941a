"""Failure classes: infrastructure (retry elsewhere), application, data."""

from __future__ import annotations

from ctaoflow.backends.base import JobState, JobStatus

INFRASTRUCTURE = "infrastructure"
APPLICATION = "application"
DATA = "data"

_INFRASTRUCTURE_STATES = {JobState.NODE_FAIL, JobState.TIMEOUT, JobState.OUT_OF_MEMORY,
                          JobState.LOST, JobState.CANCELLED}


def classify(status: JobStatus) -> str:
    """The class of a failed job from its final state."""
    return INFRASTRUCTURE if status.state in _INFRASTRUCTURE_STATES else APPLICATION
