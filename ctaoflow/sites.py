"""The computing sites, read from ``config/sites.yaml``."""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from ctaoflow.backends.base import SiteConfig
from ctaoflow.settings import CONFIG_DIR


def sites_path() -> Path:
    """``$CTAOFLOW_SITES``, by default the project's ``config/sites.yaml``."""
    return Path(os.environ.get("CTAOFLOW_SITES", CONFIG_DIR / "sites.yaml"))


def load_sites(path: str | Path | None = None) -> dict[str, SiteConfig]:
    """Site name -> SiteConfig; raises ValueError with the file and the site at fault."""
    path = Path(path or sites_path())
    data = yaml.safe_load(path.read_text()) or {}
    sites = {}
    for name, entry in (data.get("sites") or {}).items():
        try:
            sites[name] = SiteConfig.from_dict({"name": name, **entry})
        except TypeError as exc:
            raise ValueError(f"{path}: site {name}: {exc}; see the comment at the top") from None
    return sites
