"""Where ctaoflow finds its configuration and keeps its state on the embedded defaults."""

from __future__ import annotations

import os
from pathlib import Path

CONFIG_DIR = Path(__file__).resolve().parents[1] / "config"  # the project's config/


def home() -> Path:
    """``$CTAOFLOW_HOME``, by default ``~/.ctaoflow``: ledger, embedded catalog, job dirs."""
    path = Path(os.environ.get("CTAOFLOW_HOME", Path.home() / ".ctaoflow"))
    path.mkdir(parents=True, exist_ok=True)
    return path
