"""Wording and placing of spec errors: one line each, ``file:line:col: key.path: what is
wrong; what to write``, and the phrases the messages share."""

from __future__ import annotations

import datetime as dt
import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ctaoflow.spec.yamlio import Document, KeyPath, Position

MISSING = object()  # a value the data does not have
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


@dataclass
class ErrorReport:
    """Error lines of one file, placed with the document's positions."""

    file: str
    document: Document = field(default_factory=lambda: Document(None))
    entries: list[tuple[Position, str]] = field(default_factory=list)

    def add(self, path: KeyPath, message: str, of_key: bool = True) -> None:
        self.at(self.document.position(path, of_key), path, message)

    def at(self, position: Position, path: KeyPath, message: str) -> None:
        where = ".".join(str(p) for p in path) or "(document)"
        line = f"{self.file}:{position[0]}:{position[1]}: {where}: {' '.join(message.split())}"
        self.entries.append((position, printable(line)))

    def lines(self) -> list[str]:
        return list(dict.fromkeys(line for _, line in sorted(self.entries)))


def printable(text: str) -> str:
    """``text`` with control characters escaped (``\\x00``), so it stays one line."""
    return _CONTROL.sub(lambda found: repr(found.group())[1:-1], text)


def did_you_mean(word: str, candidates: Iterable[str], form: str = "'{}'") -> str | None:
    candidates = list(candidates)
    lowered = {c.lower(): c for c in candidates}
    match = lowered.get(word.lower()) or next(
        (c for c in candidates if len(word) >= 3 and c.startswith(word)), None)
    close = difflib.get_close_matches(word, candidates, n=1, cutoff=0.6)
    match = match or (close[0] if close else None)
    return f"did you mean {form.format(match)}?" if match else None


class Suggestions:
    """``did_you_mean`` over one large list of names, for many words: the list is sorted
    once, a case-insensitive match is a lookup, and only the first ``budget`` words get
    the fuzzy search (linear in the list), so thousands of unknown names stay fast."""

    def __init__(self, candidates: Iterable[str], budget: int = 50) -> None:
        self.candidates = sorted(candidates)
        self.lowered = {c.lower(): c for c in self.candidates}
        self.budget = budget

    def hint(self, word: str, form: str = "'{}'") -> str | None:
        if word.lower() in self.lowered:
            return f"did you mean {form.format(self.lowered[word.lower()])}?"
        if self.budget <= 0:
            return None
        self.budget -= 1
        return did_you_mean(word, self.candidates, form)

    def listed(self, limit: int = 10) -> str:
        """The names, or the first ``limit`` of them and how many more."""
        more = len(self.candidates) - limit
        return ", ".join(self.candidates[:limit]) + (f" and {more} more" if more > 0 else "")


def is_scalar(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool, dt.date))


def quote(value: Any) -> str:
    if isinstance(value, bool):
        return "quote it: YAML reads unquoted yes/no/on/off/true/false as a boolean"
    return f"quote it: '{short(value)}'"


def describe(value: Any) -> str:
    if value is None or value is MISSING:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the text '{short(value)}'"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"a {type(value).__name__} ({short(value)})"


def short(value: Any, limit: int = 40) -> str:
    text = str(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."
