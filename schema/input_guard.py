"""Hostile input refused before execution: the request's JSON and the document's literals.

Python's ``json`` module turns a 50,000-digit number into an ``int`` it then cannot print
(the 4,300-digit ``int``/``str`` limit), recurses once per nesting level, and accepts
``NaN`` and ``Infinity``; a NUL (U+0000) is a valid JSON and GraphQL string character that
PostgreSQL cannot store (SQLite can), and a lone UTF-16 surrogate (``"\\ud800"``) is a
valid JSON escape but no Unicode text at all: it cannot be encoded, hashed or stored. So
every request is bounded here, the same on both backends:

- :func:`load_json` measures the nesting depth *before* parsing (no recursion) and parses
  integers beyond 64 bits and non-finite numbers into markers instead of values;
- :func:`check_json` walks the parsed value (iteratively) and names the first refused
  string, key or number by its path, e.g. ``variables.input.name``;
- :func:`literal_errors` does the same for the literals of a parsed GraphQL document,
  named by field, argument and input field, e.g. ``createCustomer.input.name``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from itertools import accumulate
from typing import Any

from graphql import (
    ArgumentNode,
    DirectiveNode,
    DocumentNode,
    FieldNode,
    FloatValueNode,
    FragmentDefinitionNode,
    GraphQLError,
    IntValueNode,
    ListValueNode,
    Node,
    ObjectValueNode,
    StringValueNode,
    VariableDefinitionNode,
)

CODE = "BAD_USER_INPUT"
INT64 = (-(2**63), 2**63 - 1)
_MAX_INT_DIGITS = 19  # 2**63 has 19 digits: longer digit strings are refused unparsed

# NUL, and any surrogate code point: after JSON decoding a valid pair is one character, so
# a surrogate left in a ``str`` is always a lone one.
_BAD_CHARACTER = re.compile("[\x00\ud800-\udfff]")
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")
_DELTA = {"[": 1, "{": 1, "]": -1, "}": -1}

Path = tuple[str | int, ...]


class InputRefused(Exception):
    """A request input the hub will not run with; ``path`` names it from the body's root."""

    def __init__(self, path: Path, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"{render(path) or 'the request'} {problem}")

    @property
    def field(self) -> list[str]:
        """The path as strings, like a user error's ``field``."""
        return [str(part) for part in self.path]


class _Refused:
    """What an out-of-range number parses to; reported with its path by :func:`check_json`."""

    __slots__ = ("problem",)

    def __init__(self, problem: str) -> None:
        self.problem = problem


_TOO_BIG = _Refused("is an integer beyond 64 bits; send it as a string if it is an identifier")
_NOT_FINITE = _Refused("is not a finite number")


def render(path: Path) -> str:
    """``("variables", "input", "tags", 2)`` as ``variables.input.tags[2]``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def _parse_int(digits: str) -> int | _Refused:
    if len(digits.lstrip("-")) > _MAX_INT_DIGITS:
        return _TOO_BIG
    value = int(digits)
    return value if INT64[0] <= value <= INT64[1] else _TOO_BIG


def _parse_float(text: str) -> float | _Refused:
    value = float(text)  # never raises on what the JSON scanner matched; 1e999 is inf
    return value if math.isfinite(value) else _NOT_FINITE


def _parse_constant(name: str) -> _Refused:
    del name  # NaN, Infinity, -Infinity: not JSON (RFC 8259 §6), accepted by Python
    return _NOT_FINITE


# One decoder for every request: json.loads with hooks builds a decoder (and its scanner)
# per call.
_DECODER = json.JSONDecoder(
    parse_int=_parse_int, parse_float=_parse_float, parse_constant=_parse_constant
)


def nesting_depth(text: str) -> int:
    """The deepest nesting of arrays and objects in JSON ``text``, counted without parsing
    (strings removed first). On malformed text the count may be off; parsing then fails."""
    if text.count("[") + text.count("{") == 0:
        return 0
    brackets = _BRACKET.findall(_STRING.sub("", text))
    return max(accumulate(_DELTA[b] for b in brackets), default=0)


def load_json(text: str, *, max_depth: int, root: Path = ()) -> Any:
    """Parse JSON ``text`` nested at most ``max_depth`` levels; raise :class:`InputRefused`
    when it is deeper, ``ValueError`` (``json.JSONDecodeError``) when it is not JSON.
    Refused numbers come back as markers: run :func:`check_json` on the result."""
    # Every level opens with a bracket, so their count bounds the depth: most bodies are
    # within the limit by that count alone, without the count that removes strings.
    if text.count("[") + text.count("{") > max_depth:
        depth = nesting_depth(text)
        if depth > max_depth:
            raise InputRefused(root, f"is nested {depth} levels deep; the limit is {max_depth}")
    if text.startswith("\ufeff"):  # as json.loads refuses it
        raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
    try:
        return _DECODER.decode(text)
    except RecursionError:  # only with a limit set above the interpreter's recursion limit
        raise InputRefused(root, "is nested too deeply to parse") from None


def text_problem(value: str) -> str | None:
    """Why a string is refused (NUL or a lone surrogate), or ``None``."""
    found = _BAD_CHARACTER.search(value)
    if found is None:
        return None
    if found.group() == "\x00":
        return "contains a NUL character (U+0000)"
    return "contains a lone UTF-16 surrogate: it is not Unicode text"


def check_json(value: Any, root: Path = ()) -> None:
    """Raise :class:`InputRefused` for the first string, object key or number of ``value``
    the hub refuses; ``root`` prefixes the path. Iterative: depth is bounded elsewhere,
    but no recursion either way."""
    if _accepted(value):
        return
    stack: list[tuple[Path, Any]] = [(root, value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, str):
            problem = text_problem(item)
            if problem is not None:
                raise InputRefused(path, problem)
        elif isinstance(item, _Refused):
            raise InputRefused(path, item.problem)
        elif isinstance(item, dict):
            for key, child in item.items():
                problem = text_problem(key)
                if problem is not None:
                    # The key itself is not printable as a name: name its object.
                    raise InputRefused(path, f"has a key that {problem}")
                stack.append(((*path, key), child))
        elif isinstance(item, list):
            stack.extend(((*path, index), child) for index, child in enumerate(item))


def _accepted(value: Any) -> bool:
    """Whether nothing in ``value`` is refused: the walk of :func:`check_json` without
    the paths it needs only to name a refused input (rare)."""
    search = _BAD_CHARACTER.search
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if search(item) is not None:
                return False
        elif isinstance(item, dict):
            for key in item:
                if search(key) is not None:
                    return False
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, _Refused):
            return False
    return True


# Document texts whose literals are all accepted, oldest first. The check is a function of
# the text alone, and clients send the same few documents again and again (the values in
# variables); only clean texts are kept, so a refused document is walked and refused again
# every time.
_CLEAN_DOCUMENTS: dict[str, None] = {}
_CLEAN_DOCUMENTS_KEPT = 512  # as many as strawberry's ParserCache keeps parsed


def literal_errors(document: DocumentNode) -> list[GraphQLError]:
    """The document's refused literals: strings with NUL (a lone surrogate cannot pass
    graphql-core's lexer, but is checked too), integers beyond 64 bits and non-finite
    floats, each named by its path (field, argument, input fields, list indexes).
    A document text found clean once is not walked again."""
    text = document.loc.source.body if document.loc is not None else None
    if text is not None and text in _CLEAN_DOCUMENTS:
        return []
    errors = _literal_errors(document)
    if not errors and text is not None:
        if len(_CLEAN_DOCUMENTS) >= _CLEAN_DOCUMENTS_KEPT:
            del _CLEAN_DOCUMENTS[next(iter(_CLEAN_DOCUMENTS))]
        _CLEAN_DOCUMENTS[text] = None
    return errors


def _literal_errors(document: DocumentNode) -> list[GraphQLError]:
    errors: list[GraphQLError] = []
    for definition in document.definitions:
        for path, node in _literals(definition):
            problem = _literal_problem(node)
            if problem is not None:
                message = f"{render(path)} {problem}"
                field = [str(part) for part in path]
                errors.append(
                    GraphQLError(message, node, extensions={"code": CODE, "field": field})
                )
    return errors


def _literal_problem(node: Node) -> str | None:
    if isinstance(node, StringValueNode):
        return text_problem(node.value)
    if isinstance(node, IntValueNode):
        parsed = _parse_int(node.value)
        return parsed.problem if isinstance(parsed, _Refused) else None
    if isinstance(node, FloatValueNode):
        parsed_float = _parse_float(node.value)
        return parsed_float.problem if isinstance(parsed_float, _Refused) else None
    return None


def _literals(root: Node) -> Iterator[tuple[Path, Node]]:
    """Every scalar literal below ``root`` with its readable path, in document order
    (iterative, like :func:`check_json`)."""
    stack: list[tuple[Path, Node]] = [((), root)]
    while stack:
        path, node = stack.pop()
        if isinstance(node, StringValueNode | IntValueNode | FloatValueNode):
            yield path, node
            continue
        children: list[tuple[Path, Node]] = []
        if isinstance(node, ListValueNode):
            children = [((*path, index), item) for index, item in enumerate(node.values)]
        elif isinstance(node, ObjectValueNode):
            children = [((*path, item.name.value), item.value) for item in node.fields]
        elif isinstance(node, ArgumentNode):
            children = [((*path, node.name.value), node.value)]
        else:
            if isinstance(node, FieldNode):
                path = (*path, (node.alias or node.name).value)
            elif isinstance(node, DirectiveNode):
                path = (*path, f"@{node.name.value}")
            elif isinstance(node, FragmentDefinitionNode):
                path = (*path, f"...{node.name.value}")
            elif isinstance(node, VariableDefinitionNode):
                path = (*path, f"${node.variable.name.value}")
                if node.default_value is not None:
                    children.append((path, node.default_value))
            for name in ("variable_definitions", "directives", "arguments"):
                children.extend((path, child) for child in getattr(node, name, None) or ())
            selection_set = getattr(node, "selection_set", None)
            if selection_set is not None:
                children.extend((path, child) for child in selection_set.selections)
        stack.extend(reversed(children))
