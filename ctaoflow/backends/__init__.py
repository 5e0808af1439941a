"""Batch-system backends (local, Slurm, HTCondor, Kubernetes, simulated) behind
``Backend`` (``base``), and the registry that builds one for a site.

May import: ``ctaoflow.settings``; never the engine, the spec or Airflow.
"""

from __future__ import annotations

import importlib
from typing import Any

from ctaoflow.backends.base import (Backend, BackendError, JobSpec, JobState, JobStatus,
                                    SiteConfig)

BACKENDS = {
    "local": "ctaoflow.backends.local:LocalBackend",
    "slurm": "ctaoflow.backends.slurm:SlurmBackend",
    "htcondor": "ctaoflow.backends.htcondor:HTCondorBackend",
    "kubernetes": "ctaoflow.backends.kubernetes:KubernetesBackend",
    "simulated": "ctaoflow.backends.simulated:SimulatedBackend",
}


def make_backend(site: SiteConfig, params: dict[str, Any] | None = None) -> Backend:
    """The backend of ``site``; ``params`` come from the site's Airflow connection."""
    try:
        module, cls = BACKENDS[site.backend].split(":")
    except KeyError:
        raise BackendError(f"site {site.name}: unknown backend {site.backend!r}; "
                           f"use one of {', '.join(BACKENDS)}") from None
    return getattr(importlib.import_module(module), cls)(site, params)


__all__ = ["Backend", "BackendError", "JobSpec", "JobState", "JobStatus", "SiteConfig",
           "make_backend", "BACKENDS"]
