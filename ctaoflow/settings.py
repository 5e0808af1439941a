"""Where ctaoflow finds its configuration and keeps its state on the embedded defaults."""

from __future__ import annotations

import os
from pathlib import Path

CONFIG_DIR = Path(__file__).resolve().parents[1] / "config"  # the project's config/


def home() -> Path:
    """``$CTAOFLOW_HOME``, by default ``~/.ctaoflow``: ledger, embedded catalog, job dirs."""
    path = Path(os.environ.get("CTAOFLOW_HOME", Path.home() / ".ctaoflow"))
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        why = "a file stands there" if path.is_file() else exc.strerror
        raise OSError(f"CTAOFLOW_HOME {path}: cannot be used as a folder ({why}); point "
                      "CTAOFLOW_HOME at a folder this user can write") from None
    return path
