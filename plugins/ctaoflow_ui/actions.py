"""The operator actions of the UI: the CLI's own functions (``ctaoflow.ops.operations``),
called with the Airflow user's name and the reason given; a dry run first says what the
action will touch, the confirmed call does it and records who and why."""

from __future__ import annotations

from typing import Callable, Literal

from pydantic import BaseModel, Field

from ctaoflow.ops import operations
from ctaoflow.spec.model import Production

ActionName = Literal["reset", "flush", "stop", "start", "extend", "audit"]


class ActionRequest(BaseModel):
    """What a person asks for; fields that the action does not use are ignored."""

    action: ActionName
    reason: str = Field("", max_length=operations.REASON_LIMIT)
    dry_run: bool = True
    night: str | None = None  # a nightly production's night (YYYYMMDD)
    transformation: str | None = None
    site: str | None = None
    failure_class: str | None = None
    statuses: list[str] = Field(default_factory=lambda: list(operations.RESETTABLE[1:]))
    lfns: list[str] | None = None
    force: bool = False
    runs: int = 0


def perform(production: Production, request: ActionRequest, user: str,
            audit: Callable[[], list[str]]) -> dict:
    """Run (or dry-run) the action; returns what it touches, in one sentence too.
    ``audit`` reconciles the production with its catalog and batch systems."""
    common = {"user": user, "reason": request.reason or None, "dry_run": request.dry_run}
    would = "would " if request.dry_run else ""
    problems: list[str] = []
    if request.action == "audit":
        if not request.dry_run:
            problems = audit()
            operations.record_audit(production, problems, user=user,
                                    reason=request.reason or None)
        count = len(problems)
        message = ("would audit the ledger against the catalog and the batch systems "
                   "(reads only)" if request.dry_run else
                   f"audit: {count} discrepancies" if problems else "audit clean")
    elif request.action == "reset":
        count = operations.reset(
            production, request.transformation, request.site, request.failure_class,
            tuple(request.statuses), lfns=request.lfns, force=request.force, **common)
        scope = ", ".join(f"{k} {v}" for k, v in (
            ("transformation", request.transformation), ("site", request.site),
            ("class", request.failure_class)) if v) or "every transformation"
        listed = f" of the {len(request.lfns)} listed" if request.lfns is not None else ""
        message = (f"{would}reset {count} {'/'.join(request.statuses)} file(s){listed} to "
                   f"Unused ({scope})")
    elif request.action == "flush":
        count = operations.flush(production, _named(request), **common)
        message = f"{would}flush {request.transformation}: {count} Unused file(s) may be grouped"
    elif request.action in ("stop", "start"):
        act = operations.stop if request.action == "stop" else operations.start
        count = act(production, **common)
        message = f"{would}{request.action} {count} transformation(s)"
    else:
        count = operations.extend(production, _named(request), request.runs, **common)
        message = f"{would}extend {request.transformation} to {count} runs"
    return {"action": request.action, "dry_run": request.dry_run, "count": count,
            "message": message, "problems": problems}


def _named(request: ActionRequest) -> str:
    if not request.transformation:
        raise operations.OperationError(f"{request.action}: choose a transformation")
    return request.transformation
