"""``ctaoflow render``: a production's DAG as a standalone Python module.

The module spells out the layout of ``ctaoflow.spec.layout``, the same one
``dags/productions.py`` instantiates (same ids, dependencies, operators and arguments),
for sites that prefer static DAG files.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

from ctaoflow.spec.layout import Layout, NightSchedule, layout
from ctaoflow.spec.model import Production

_HEAD = '''"""DAG of production {name!r}, rendered by `ctaoflow render` from {source}.

Regenerate after editing the YAML; the operators read the spec file when they run.
"""

import datetime as dt

from airflow.sdk import DAG, TaskGroup

from operators.production import (
{operators})
{timetable}
SPEC = {spec!r}

'''


def render(production: Production, spec_path: Path) -> str:
    """Python source of the production's DAG."""
    spec = str(spec_path.resolve())
    plan = layout(production, spec)
    names = _variables(plan)
    operators = sorted({step.operator for step in plan.steps})
    timetable = ("from operators.timetables import NightlyTimetable\n"
                 if isinstance(plan.dag["schedule"], NightSchedule) else "")
    lines = [_HEAD.format(name=production.production, source=spec_path.name, spec=spec,
                          operators=",\n".join(f"    {o}" for o in operators),
                          timetable=timetable).rstrip("\n"),
             "", _call("", "with DAG", _arguments(plan.dag, spec), " as dag:")]
    group = None
    for step in plan.steps:
        if step.group != group and step.group is not None:
            lines.append(_call("    ", "with TaskGroup", [
                f"group_id={step.group!r}", f"tooltip={plan.groups[step.group]!r}"], ":"))
        group = step.group
        indent = "        " if group else "    "
        arguments = _arguments({"task_id": step.task_id, **step.kwargs}, spec)
        head = f"{names[step.full_id]} = {step.operator}"
        if step.expand:
            argument, source = step.expand
            lines.append(_call(indent, head + ".partial", arguments,
                               f".expand({argument}={names[source]}.output)"))
        else:
            lines.append(_call(indent, head, arguments))
    lines += [f"    {names[up]} >> {names[down]}" for up, down in plan.edges]
    return "\n".join(lines) + "\n"


def _variables(plan: Layout) -> dict[str, str]:
    """A distinct Python name per task id."""
    names: dict[str, str] = {}
    for step in plan.steps:
        base = re.sub(r"\W", "_", step.full_id.replace(".", "__"))
        name, n = base, 1
        while name in names.values():
            n += 1
            name = f"{base}_{n}"
        names[step.full_id] = name
    return names


def _call(indent: str, head: str, arguments: list[str], tail: str = "") -> str:
    """``head(arguments)tail`` on one line, or one argument per line when too long."""
    line = f"{indent}{head}({', '.join(arguments)}){tail}"
    if len(line) <= 92:
        return line
    hanging = " " * (8 if head.startswith("with ") else 4)  # a with-block's body is at 4
    inner = ",\n".join(f"{indent}{hanging}{a}" for a in arguments)
    return f"{indent}{head}(\n{inner}){tail}"


def _arguments(kwargs: dict[str, Any], spec: str) -> list[str]:
    return [f"{k}={'SPEC' if v == spec else _source(v)}" for k, v in kwargs.items()]


def _source(value: Any) -> str:
    """Python source that evaluates to ``value``."""
    if isinstance(value, NightSchedule):
        return f"NightlyTimetable({value.cron!r}, timezone={value.timezone!r})"
    if isinstance(value, dt.timedelta):
        return f"dt.timedelta(seconds={value.total_seconds():g})"
    if isinstance(value, dt.datetime):
        return f"dt.datetime.fromisoformat({value.isoformat()!r})"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k!r}: {_source(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_source(v) for v in value) + "]"
    return repr(value)
