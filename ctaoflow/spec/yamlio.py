"""YAML loading that remembers where every key and value is written.

``parse`` composes PyYAML's node tree (safe tags only) and builds plain Python data
from it, recording the line:column of each key and value by its key path
(``("transformations", 3, "grouping", "group_size")``), so later checks can point
at the line to fix. Duplicate keys, which PyYAML silently collapses, are reported.
Aliases are expanded with a budget: an alias bomb or a recursive alias is an error,
not a hang. ``read_bounded`` reads a file with a size limit before anything parses it.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

KeyPath = tuple[Any, ...]
Position = tuple[int, int]  # 1-based line and column

MAX_BYTES = 8_000_000
MAX_VALUES = 100_000  # values reached again through aliases
MAX_DEPTH = 64
_MERGE_TAG = "tag:yaml.org,2002:merge"
_PLAIN_TAGS = ("tag:yaml.org,2002:map", "tag:yaml.org,2002:seq")
# libyaml composes the same nodes ~10x faster; errors are reported by the pure parser
_FAST_LOADER = getattr(yaml, "CSafeLoader", None)
_HINTS = (
    ("mapping values are not allowed",
     "quote a value that contains ': ', or start the nested mapping on its own line"),
    ("'\\t'", "indent with spaces, not tabs"),
    ("expected <block end>", "check the indentation: the keys of one mapping must line up"),
    ("undefined alias", "define the anchor (&name) before the alias (*name)"),
    ("another document", "keep one document per file: remove the extra '---'"),
    ("constructor for the tag", "remove the tag: only plain YAML values are allowed"),
    ("end of stream", "close the quote or bracket opened here"),
    ("flow", "close the bracket opened on that line, or quote values containing ':' or ','"),
)


class UnreadableFile(Exception):
    """A file refused before parsing; the message says why and what to do."""


def read_bounded(path: str | os.PathLike, limit: int = MAX_BYTES) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes, reading at most
    ``limit + 1``: a huge, sparse or endless file, a FIFO or a device is refused."""
    too_big = UnreadableFile(f"larger than {limit} bytes; a spec or sites file is a few "
                             "kB: check that this is the right file")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO must not block the open
    except (OSError, ValueError) as exc:
        raise UnreadableFile(f"cannot read: {getattr(exc, 'strerror', None) or exc}; "
                             "check the path") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UnreadableFile("not a regular file; give the path of a YAML file")
        if info.st_size > limit:
            raise too_big
        data = _read_at_most(fd, limit + 1)
    except OSError as exc:
        raise UnreadableFile(f"cannot read: {exc.strerror or exc}; check the file") from None
    finally:
        os.close(fd)
    if len(data) > limit:
        raise too_big
    return data


def _read_at_most(fd: int, size: int) -> bytes:
    chunks: list[bytes] = []
    while size > 0 and (chunk := os.read(fd, min(size, 1 << 20))):
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


class YamlSyntaxError(Exception):
    """A document that cannot be read at all, at the position the parser reports."""

    def __init__(self, position: Position, message: str) -> None:
        super().__init__(message)
        self.position = position
        self.message = message


@dataclass
class Document:
    """Plain data plus where each part of it is written."""

    data: Any
    keys: dict[KeyPath, Position] = field(default_factory=dict)
    values: dict[KeyPath, Position] = field(default_factory=dict)
    problems: list[tuple[Position, KeyPath, str]] = field(default_factory=list)

    def position(self, path: KeyPath, of_key: bool = True) -> Position:
        """Where ``path`` is written: its key (or value), else its nearest ancestor."""
        for depth in range(len(path), -1, -1):
            prefix = tuple(path[:depth])
            first, second = (self.keys, self.values) if of_key else (self.values, self.keys)
            found = first.get(prefix) or second.get(prefix)
            if found:
                return found
        return (1, 1)


def parse(text: str) -> Document:
    """Parse one YAML document; raises ``YamlSyntaxError`` when it cannot be read."""
    if _flow_depth(text) > MAX_DEPTH:
        raise YamlSyntaxError((1, 1), _too_deep())
    if _FAST_LOADER is not None:
        try:
            return _compose(_FAST_LOADER(text))
        except YamlSyntaxError:
            pass  # the pure-Python parser words and places the error for the user
    return _compose(yaml.SafeLoader(text))


def _compose(loader: yaml.SafeLoader) -> Document:
    try:
        node = loader.get_single_node()
        if node is None:
            return Document(None)
        return _Builder(loader).build(node)
    except yaml.MarkedYAMLError as exc:
        raise _syntax_error(exc) from None
    except yaml.YAMLError as exc:
        raise YamlSyntaxError((1, 1), _one_line(str(exc))) from None
    except RecursionError:
        raise YamlSyntaxError((1, 1), _too_deep()) from None
    finally:
        loader.dispose()


_QUOTED_OR_COMMENT = re.compile(  # a quote opens a scalar only after a space or [{,:
    r'(?<![^\s\[{,:])(?:"(?:[^"\\]|\\.)*"|\'(?:[^\']|\'\')*\')|(?<!\S)#[^\n]*')


def _flow_depth(text: str) -> int:
    """The deepest ``[``/``{`` nesting outside quoted scalars and comments.

    PyYAML's scanner slows down quadratically with flow depth: refuse deep nesting
    before parsing.
    """
    depth = deepest = 0
    for bracket in re.findall(r"[\[\]{}]", _QUOTED_OR_COMMENT.sub("", text)):
        depth = depth + 1 if bracket in "[{" else max(0, depth - 1)
        deepest = max(deepest, depth)
    return deepest


def _too_deep() -> str:
    return f"nested deeper than {MAX_DEPTH} levels; flatten the document"


def _position(node: Node) -> Position:
    return (node.start_mark.line + 1, node.start_mark.column + 1)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _syntax_error(exc: yaml.MarkedYAMLError) -> YamlSyntaxError:
    mark = exc.problem_mark or exc.context_mark
    position = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    message = _one_line(exc.problem or exc.context or "unreadable YAML")
    if exc.context and exc.problem and exc.context_mark:
        message += f" ({_one_line(exc.context)} at line {exc.context_mark.line + 1})"
    hint = next((h for needle, h in _HINTS if needle in message),
                "fix the YAML syntax at this position")
    return YamlSyntaxError(position, f"{message}; {hint}")


class _Builder:
    """Turns a node tree into data, positions and duplicate-key problems."""

    def __init__(self, loader: yaml.SafeLoader) -> None:
        self.loader = loader
        self.document = Document(None)
        self.count = 0  # values built again through aliases
        self.built: set[int] = set()
        self.open: set[int] = set()  # collections being built: an alias to one is a loop

    def build(self, node: Node) -> Document:
        self.document.data = self.value(node, ())
        self.document.problems = sorted(dict.fromkeys(self.document.problems),
                                        key=lambda problem: problem[0])
        return self.document

    def value(self, node: Node, path: KeyPath) -> Any:
        self._spend(node, path)
        self.document.values[path] = _position(node)
        if isinstance(node, ScalarNode):
            return self.scalar(node)
        if node.tag not in _PLAIN_TAGS:
            raise YamlSyntaxError(_position(node), f"the tag {node.tag!r} is not allowed; "
                                  "remove it: only plain YAML values are allowed")
        self.open.add(id(node))
        try:
            if isinstance(node, SequenceNode):
                return [self.value(item, path + (i,)) for i, item in enumerate(node.value)]
            return self.mapping(node, path)
        finally:
            self.open.discard(id(node))

    def mapping(self, node: MappingNode, path: KeyPath) -> dict[Any, Any]:
        merged: dict[Any, Any] = {}
        own: dict[Any, Any] = {}
        seen: dict[Any, Position] = {}
        pairs = [(k, v) for k, v in node.value if k.tag != _MERGE_TAG]
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                merged = {**self.merge(value_node, path), **merged}
        for key_node, value_node in pairs:
            key = self.key(key_node, path)
            where = _position(key_node)
            if key in seen:
                self.document.problems.append((where, path + (key,), (
                    f"duplicate key (first written at line {seen[key][0]}); "
                    "keep only one of them")))
            seen[key] = where
            self.document.keys[path + (key,)] = where
            own[key] = self.value(value_node, path + (key,))
        return {**merged, **own}

    def merge(self, node: Node, path: KeyPath) -> dict[Any, Any]:
        """The mapping(s) of a ``<<:`` key; earlier ones win, as YAML specifies."""
        sources = node.value if isinstance(node, SequenceNode) else [node]
        result: dict[Any, Any] = {}
        for source in reversed(sources):
            if not isinstance(source, MappingNode):
                raise YamlSyntaxError(_position(source), "'<<' must merge a mapping or a "
                                      "list of mappings; write '<<: *anchor'")
            self._spend(source, path)
            result.update(self.mapping(source, path))
        return result

    def key(self, node: Node, path: KeyPath) -> Any:
        if not isinstance(node, ScalarNode):
            raise YamlSyntaxError(_position(node), "a mapping key must be a plain name, "
                                  "not a list or mapping; write 'name: value'")
        return self.scalar(node)

    def scalar(self, node: ScalarNode) -> Any:
        """The value of a scalar; one that YAML types but Python cannot build (an
        impossible date, a number of thousands of digits) is an error at its place."""
        try:
            return self.loader.construct_object(node)
        except (ValueError, OverflowError) as exc:
            reason = _one_line(str(exc)).split(":")[0][:100]
            raise YamlSyntaxError(_position(node), f"cannot read the value ({reason}); quote "
                                  "it to keep it as text, or fix it") from None

    def _spend(self, node: Node, path: KeyPath) -> None:
        """Count values built again (aliases); refuse loops and excessive depth."""
        if id(node) in self.built:
            self.count += 1
        self.built.add(id(node))
        if self.count > MAX_VALUES:
            raise YamlSyntaxError(_position(node), f"aliases repeat more than {MAX_VALUES} "
                                  "values; write the document out plainly")
        if id(node) in self.open:
            raise YamlSyntaxError(_position(node), "an alias refers to a mapping or list "
                                  "that contains it; remove the recursive alias")
        if len(path) > MAX_DEPTH:
            raise YamlSyntaxError(_position(node), _too_deep())
