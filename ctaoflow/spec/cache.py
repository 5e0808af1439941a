"""Validated specs cached on disk, so Airflow's constant re-parsing stays cheap.

Airflow parses DAG files in fresh processes over and over. A spec whose bytes, known
sites and validating code (every module of ``ctaoflow.spec``) are unchanged was valid
before: it is read back from ``$CTAOFLOW_HOME/spec-cache/<sha256>.json`` instead of
being validated again. A CTADIRAC ProdSteps file is named after its stem, which is part
of the key too. A cache that cannot be written (a read-only or full home) is
stepped over: the spec is validated each time instead.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path
from typing import Iterable

from ctaoflow import settings
from ctaoflow.spec import validation
from ctaoflow.spec.model import Production
from ctaoflow.spec.yamlio import UnreadableFile, read_bounded

CODE_FILES = sorted(Path(__file__).parent.glob("*.py"))  # the whole spec package
_CODE = hashlib.sha256(b"".join(path.read_bytes() for path in CODE_FILES)).digest()


def load_production(path: str | os.PathLike, known_sites: Iterable[str] | None = None
                    ) -> Production:
    """``validation.load_production`` with a cache keyed by content, sites and code."""
    known = set(known_sites) if known_sites is not None else None
    sites = "\n".join(sorted(known)) if known is not None else "*"
    try:
        text = read_bounded(path)
    except UnreadableFile:  # validation words the reason
        return validation.load_production(path, known_sites=known)
    # the file's stem too: it names a CTADIRAC ProdSteps production
    name = Path(path).stem.encode(errors="surrogateescape")
    key = hashlib.sha256(b"\0".join((_CODE, sites.encode(), name, text))).hexdigest()
    try:
        cached = settings.home() / "spec-cache" / f"{key}.json"
        return Production.model_validate_json(cached.read_bytes())
    except (OSError, ValueError):
        pass
    production = validation.load_production(path, known_sites=known)
    _store(production, key)
    return production


def _store(production: Production, key: str) -> None:
    """Cache a validated production; a home that cannot be written is skipped, not fatal."""
    partial = None
    try:
        cached = settings.home() / "spec-cache" / f"{key}.json"
        cached.parent.mkdir(exist_ok=True)
        partial = cached.with_suffix(f".{os.getpid()}.part")
        # only what the YAML said: a default left unsaid stays unsaid (a by_metadata
        # grouping without group_size is one task per value, not one per file)
        partial.write_text(production.model_dump_json(by_alias=True, exclude_unset=True))
        os.replace(partial, cached)
    except OSError:
        if partial is not None:
            with contextlib.suppress(OSError):
                partial.unlink(missing_ok=True)
