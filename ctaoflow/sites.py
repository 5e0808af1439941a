"""The computing sites, read from ``config/sites.yaml`` and checked before use.

The file is read like a production spec (bounded, with positions, duplicate names
reported) and every mistake is one line ``file:line:col: sites.NAME.key: what is wrong;
what to write``. A sites file with any mistake is refused as a whole (``SitesError``).
"""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path
from typing import Any

from ctaoflow.backends import BACKENDS
from ctaoflow.backends.base import SiteConfig
from ctaoflow.settings import CONFIG_DIR
from ctaoflow.spec.characters import check_characters
from ctaoflow.spec.messages import ErrorReport, describe, did_you_mean, quote, short
from ctaoflow.spec.model import SITE_NAME_PATTERN
from ctaoflow.spec.validation import SpecError, read_document

FIELDS = tuple(f.name for f in dataclasses.fields(SiteConfig) if f.name != "name")
TEXT_FIELDS = ("connection", "queue", "image", "cvmfs")
STATUSES = ("active", "banned")
_NAME_RULE = ("start with a letter or digit, then letters, digits, '.', '_' or '-' "
              "(63 at most)")


class SitesError(SpecError, ValueError):
    """A sites file with mistakes; ``errors`` holds one line per mistake."""


def sites_path() -> Path:
    """``$CTAOFLOW_SITES``, by default the project's ``config/sites.yaml``."""
    return Path(os.environ.get("CTAOFLOW_SITES", CONFIG_DIR / "sites.yaml"))


def load_sites(path: str | Path | None = None) -> dict[str, SiteConfig]:
    """Site name -> SiteConfig; raises ``SitesError`` with every mistake of the file."""
    report, document = read_document(Path(path or sites_path()))
    sites = {} if document is None else _check(document.data, report)
    if report.entries:
        raise SitesError(report.lines())
    return sites


def _check(data: Any, report: ErrorReport) -> dict[str, SiteConfig]:
    entries = data.get("sites") if isinstance(data, dict) else data
    if not isinstance(entries, dict) or not entries:
        got = "no site" if entries == {} else describe(entries)
        report.add(("sites",) if isinstance(data, dict) else (), (
            f"expected a 'sites:' mapping of site names, got {got}; write "
            "'sites: {local: {backend: local}}'"), of_key=False)
        return {}
    check_characters(data, report)
    for key in data:
        if key != "sites":
            report.add((key,), "unknown key; a sites file holds only 'sites:'")
    sites = {}
    for name, entry in entries.items():
        before = len(report.entries)
        _check_site(name, entry, report)
        if len(report.entries) == before:
            sites[name] = SiteConfig.from_dict({"name": name, **entry})
    return sites


def _check_site(name: Any, entry: Any, report: ErrorReport) -> None:
    base = ("sites", name)
    if not isinstance(name, str) or not re.fullmatch(SITE_NAME_PATTERN, name):
        report.add(base, f"{short(name)!r} is not a valid site name; {_NAME_RULE}")
    if not isinstance(entry, dict):
        report.add(base, f"expected the site's settings, got {describe(entry)}; write "
                         f"'{short(name)}: {{backend: local}}'", of_key=False)
        return
    for key in entry:
        if key not in FIELDS:
            hint = did_you_mean(str(key), FIELDS)
            report.add(base + (key,), f"unknown key; {hint or 'allowed: ' + ', '.join(FIELDS)}")
    if "backend" not in entry:
        report.add(base, f"required key 'backend' missing; add 'backend:' with one of: "
                         f"{', '.join(BACKENDS)}")
    for key, value in entry.items():
        problem = _field_problem(key, value)
        if problem:
            report.add(base + (key,), problem, of_key=False)


def _field_problem(key: Any, value: Any) -> str | None:
    """What is wrong with one setting of a site, or None."""
    if key == "backend":
        return _choice(value, tuple(BACKENDS), "backend")
    if key == "status":
        return _choice(value, STATUSES, "status")
    if key in TEXT_FIELDS and value is not None and not isinstance(value, str):
        return f"expected text, got {describe(value)}; {quote(value)}"
    if key == "slots":
        if isinstance(value, bool) or not isinstance(value, int):
            return f"expected a whole number, got {describe(value)}; write e.g. 'slots: 100'"
        if value < 1:
            return f"{value} is too small; write the number of jobs that may run at once (>= 1)"
    if key == "storages":
        return _storages_problem(value)
    if key == "options" and not isinstance(value, dict):
        return f"expected a mapping, got {describe(value)}; write 'options: {{key: value}}'"
    return None


def _choice(value: Any, allowed: tuple[str, ...], what: str) -> str | None:
    if isinstance(value, str) and value in allowed:
        return None
    hint = did_you_mean(str(value), allowed) if isinstance(value, str) else None
    listed = ", ".join(allowed)
    return (f"unknown {what} {short(value)!r}; "
            + (f"{hint} (allowed: {listed})" if hint else f"write one of: {listed}"))


def _storages_problem(value: Any) -> str | None:
    if isinstance(value, str):
        return f"expected a list, got the text '{short(value)}'; write [{short(value)}]"
    if not isinstance(value, list):
        return f"expected a list of storage names, got {describe(value)}; write [LOCAL-DISK]"
    bad = [item for item in value
           if not isinstance(item, str) or not re.fullmatch(SITE_NAME_PATTERN, item)]
    if bad:
        return f"{short(bad[0])!r} is not a valid storage name; {_NAME_RULE}"
    return None
