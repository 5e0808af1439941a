"""Characters that no command line, file name or catalog entry can carry.

Every key and text value of a document is checked, wherever it is written: a NUL or
another control character is an error at its position. Free text (``description``)
may hold tabs and line breaks.
"""

from __future__ import annotations

import re
from typing import Any

from ctaoflow.spec.messages import ErrorReport
from ctaoflow.spec.yamlio import KeyPath

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROL_IN_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
FREE_TEXT_KEYS = frozenset({"description"})


def control_character(text: str, free_text: bool = False) -> str | None:
    """The first forbidden character of ``text``, escaped (``'\\x00'``), or None."""
    found = (_CONTROL_IN_TEXT if free_text else _CONTROL).search(text)
    return None if found is None else repr(found.group())


def check_characters(data: Any, report: ErrorReport) -> None:
    """Report every key or text value of ``data`` holding a control character."""
    stack: list[tuple[KeyPath, Any]] = [((), data)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, dict):
            for key, item in value.items():
                if isinstance(key, str) and (bad := control_character(key)):
                    report.add(path + (key,), _message(bad, "key"))
                stack.append((path + (key,), item))
        elif isinstance(value, list):
            stack.extend((path + (i,), item) for i, item in enumerate(value))
        elif isinstance(value, str):
            free = bool(path) and path[-1] in FREE_TEXT_KEYS
            if bad := control_character(value, free):
                report.add(path, _message(bad, "value"), of_key=False)


def _message(character: str, what: str) -> str:
    return (f"the {what} holds the control character {character}, which no command line "
            "or file name can carry; remove it")
