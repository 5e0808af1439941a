"""Failure classes of failed jobs, from their final state, exit code and log tail.

The rules live in ``config/failures.yaml`` (``$CTAOFLOW_FAILURES``): states, log
patterns and exit codes per class, with additions per transformation type.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

from ctaoflow.backends.base import JobStatus
from ctaoflow.settings import CONFIG_DIR

INFRASTRUCTURE = "infrastructure"
DATA = "data"
APPLICATION = "application"
CLASSES = (INFRASTRUCTURE, DATA, APPLICATION)


@dataclass(frozen=True)
class Rule:
    states: frozenset[str]
    exit_codes: frozenset[int]
    patterns: tuple[re.Pattern, ...]


def rules_path() -> Path:
    return Path(os.environ.get("CTAOFLOW_FAILURES", CONFIG_DIR / "failures.yaml"))


@cache
def _rules(path: str, mtime: float) -> dict[str, dict[str, Rule]]:
    data = yaml.safe_load(Path(path).read_text()) or {}
    default = data.get("default") or {}
    types = {None: default, **{k: v for k, v in (data.get("types") or {}).items()}}
    result: dict[str, dict[str, Rule]] = {}
    for job_type, extra in types.items():
        result[job_type or ""] = {cls: _rule(default.get(cls) or {},
                                             (extra or {}).get(cls) or {} if job_type else {})
                                  for cls in (INFRASTRUCTURE, DATA)}
    return result


def _rule(base: dict, extra: dict) -> Rule:
    def merged(key: str) -> list:
        return list(base.get(key) or []) + list(extra.get(key) or [])
    return Rule(frozenset(merged("states")), frozenset(int(c) for c in merged("exit_codes")),
                tuple(re.compile(p) for p in merged("log_patterns")))


def classify(status: JobStatus, log_tail: str = "", job_type: str = "") -> tuple[str, str]:
    """The failure class of a failed job and what decided it (for reports)."""
    path = rules_path()
    rules = _rules(str(path), path.stat().st_mtime)
    by_class = rules.get(job_type) or rules[""]
    for cls in (INFRASTRUCTURE, DATA):
        rule = by_class[cls]
        if status.state.value in rule.states:
            return cls, f"state {status.state.value}"
        for pattern in rule.patterns:
            match = pattern.search(log_tail)
            if match:
                return cls, f"log: {match.group(0)[:120]}"
        if status.exit_code in rule.exit_codes:
            return cls, f"exit code {status.exit_code}"
    return APPLICATION, f"exit code {status.exit_code}"
