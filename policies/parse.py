"""Policy source (YAML or JSON) to :class:`~policies.model.Document`.

The parser composes YAML's node tree rather than loading plain values, so every error names
the line and column of the offending key or value. JSON is parsed the same way (JSON is
YAML flow syntax) after :mod:`json` has checked its syntax.

Example::

    rules:
      - name: distributors-see-assigned
        subjects: [{kind: distributor}]
        resource: Customer
        rows:
          and:
            - consent_share_with_partners: {eq: true}
            - assignments.organization: {eq: $subject.org}
        read:
          visible: [name, company, city]
          masked: {email: partial_email, lifetime_value: {mask: bucket, edges: [0, 1000]}}
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any, Literal, TypeVar

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from policies.errors import PolicySyntaxError
from policies.model import (
    BOOLEAN_OPERATORS,
    COMPARISON_OPERATORS,
    And,
    Compare,
    Condition,
    Document,
    Effect,
    Expectation,
    Guardrail,
    Locator,
    MaskSpec,
    Not,
    Operand,
    Or,
    Position,
    Read,
    Rule,
    Subject,
    Variable,
    Write,
)

__all__ = ["parse", "parse_json", "parse_yaml"]

_STR = "tag:yaml.org,2002:str"
_T = TypeVar("_T")
_SCALAR_KINDS = {
    _STR: "a string",
    "tag:yaml.org,2002:int": "an integer",
    "tag:yaml.org,2002:float": "a number",
    "tag:yaml.org,2002:bool": "a boolean",
    "tag:yaml.org,2002:null": "null",
}

# `definitions` holds YAML anchors (shared field lists) and is otherwise ignored.
_DOCUMENT_KEYS = ("rules", "guardrails", "expect", "definitions")
_RULE_KEYS = (
    "name",
    "description",
    "subjects",
    "resource",
    "effect",
    "rows",
    "read",
    "write",
    "create",
    "fields",
)
_SUBJECT_KEYS = ("org", "kind", "role", "scope")
_READ_KEYS = ("visible", "masked")
_MASK_KEYS = ("mask", "edges")
_WRITE_KEYS = ("fields", "check", "presets")
_GUARDRAIL_KEYS = (
    "name",
    "description",
    "subjects",
    "resource",
    "about",
    "exempt",
    "rows",
    "hidden",
)
_EXPECT_KEYS = ("name", "subject", "resource", "must_not_see", "must_see")


def parse(source: str, *, format: Literal["yaml", "json"] = "yaml") -> Document:
    """Parse a policy document; raise :class:`PolicySyntaxError` naming line and column."""
    try:
        return parse_json(source) if format == "json" else parse_yaml(source)
    except RecursionError:
        # The YAML and JSON parsers and the node walk below recurse once per nesting
        # level: "[[[[..." past Python's limit was an internal error wherever a draft is
        # checked (the GraphQL admin, the console). No policy nests that deep.
        raise PolicySyntaxError("the document is nested too deeply", Position(1, 1)) from None


class _JsonLoader(yaml.SafeLoader):
    """YAML 1.1 reads JSON's exponent numbers (``1e3``) as strings; this loader resolves
    every JSON number form as a number."""


_JsonLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?[eE][-+]?[0-9]+$"),
    list("-0123456789"),
)


def parse_yaml(source: str) -> Document:
    """Parse a YAML policy document."""
    return _compose(source, yaml.SafeLoader)


def _compose(source: str, loader: type[yaml.SafeLoader]) -> Document:
    try:
        nodes = list(yaml.compose_all(source, Loader=loader))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        pos = Position(mark.line + 1, mark.column + 1) if mark else Position(1, 1)
        raise PolicySyntaxError(f"invalid YAML: {exc.problem or exc.context}", pos) from exc
    except yaml.YAMLError as exc:
        raise PolicySyntaxError(f"invalid YAML: {exc}", Position(1, 1)) from exc
    if len(nodes) > 1:
        raise PolicySyntaxError("expected one document, found several", _pos(nodes[1]))
    if not nodes:
        raise PolicySyntaxError("the policy document is empty", Position(1, 1))
    return _Parser().document(nodes[0])


def parse_json(source: str) -> Document:
    """Parse a JSON policy document."""
    try:
        json.loads(source)
    except json.JSONDecodeError as exc:
        raise PolicySyntaxError(
            f"invalid JSON: {exc.msg}", Position(exc.lineno, exc.colno)
        ) from exc
    except ValueError:
        # Not a JSONDecodeError: an integer past Python's 4,300-digit conversion limit.
        raise PolicySyntaxError("invalid JSON: a number is too long", Position(1, 1)) from None
    # Valid JSON has tabs only as whitespace between tokens, which YAML refuses: spaces
    # keep every line and column where it was.
    return _compose(source.replace("\t", " "), _JsonLoader)


def _pos(node: Node) -> Position:
    return Position(node.start_mark.line + 1, node.start_mark.column + 1)


def _kind(node: Node) -> str:
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    kind = _SCALAR_KINDS.get(node.tag, "a scalar")
    return kind if node.tag == _STR else f"{kind} ({node.value})"


class _Parser:
    def __init__(self) -> None:
        self.positions: dict[Locator, Position] = {}
        self._constructor = yaml.SafeLoader("")

    # -- generic shapes ---------------------------------------------------------------

    def mapping(
        self, node: Node, what: str, keys: tuple[str, ...], required: tuple[str, ...] = ()
    ) -> dict[str, tuple[Node, Node]]:
        if not isinstance(node, MappingNode):
            raise PolicySyntaxError(f"{what} must be a mapping, not {_kind(node)}", _pos(node))
        out: dict[str, tuple[Node, Node]] = {}
        for key, value in node.value:
            name = self.key(key, what)
            if keys and name not in keys:
                raise PolicySyntaxError(
                    f"unknown key '{name}' in {what} (expected one of: {', '.join(keys)})",
                    _pos(key),
                )
            out[name] = (key, value)
        for name in required:
            if name not in out:
                raise PolicySyntaxError(f"{what} is missing '{name}'", _pos(node))
        return out

    def key(self, node: Node, what: str) -> str:
        if not isinstance(node, ScalarNode) or node.tag != _STR or not node.value:
            raise PolicySyntaxError(f"keys in {what} must be non-empty strings", _pos(node))
        return str(node.value)

    def pairs(self, node: Node, what: str) -> list[tuple[str, Node, Node]]:
        if not isinstance(node, MappingNode):
            raise PolicySyntaxError(f"{what} must be a mapping, not {_kind(node)}", _pos(node))
        seen: set[str] = set()
        out = []
        for key, value in node.value:
            name = self.key(key, what)
            if name in seen:
                raise PolicySyntaxError(f"duplicate key '{name}' in {what}", _pos(key))
            seen.add(name)
            out.append((name, key, value))
        return out

    def string(self, node: Node, what: str) -> str:
        if not isinstance(node, ScalarNode) or node.tag != _STR:
            raise PolicySyntaxError(f"{what} must be a string, not {_kind(node)}", _pos(node))
        return str(node.value)

    def items(
        self, node: Node, what: str, loc: Locator, item: Callable[[Node, Locator], _T]
    ) -> tuple[_T, ...]:
        if not isinstance(node, SequenceNode):
            raise PolicySyntaxError(f"{what} must be a list, not {_kind(node)}", _pos(node))
        out = []
        for i, child in enumerate(node.value):
            self.positions[(*loc, i)] = _pos(child)
            out.append(item(child, (*loc, i)))
        return tuple(out)

    def strings(self, node: Node, what: str, loc: Locator) -> tuple[str, ...]:
        return self.items(node, what, loc, lambda n, _loc: self.string(n, f"an entry of {what}"))

    def operand(self, node: Node, what: str) -> Operand:
        if isinstance(node, SequenceNode):
            return tuple(self.scalar(child, what) for child in node.value)
        return self.scalar(node, what)

    def scalar(self, node: Node, what: str) -> Operand:
        if not isinstance(node, ScalarNode):
            raise PolicySyntaxError(f"{what} must be a value, not {_kind(node)}", _pos(node))
        try:
            value: Any = self._constructor.construct_object(node, deep=True)
        except ValueError:
            # YAML's int() of a number past Python's 4,300-digit limit: not a 500.
            raise PolicySyntaxError(f"{what} is a number too long to read", _pos(node)) from None
        if isinstance(value, str) and value.startswith("$"):
            return Variable(value[1:])
        return value

    def located(self, loc: Locator, node: Node) -> None:
        self.positions[loc] = _pos(node)

    # -- document ---------------------------------------------------------------------

    def document(self, node: Node) -> Document:
        top = self.mapping(node, "the policy document", _DOCUMENT_KEYS)
        self.check_duplicates(node, "the policy document")
        # No rules is a valid document: it denies everything (a guardrails file, say).
        rules = (
            self.items(top["rules"][1], "rules", ("rules",), self.rule) if "rules" in top else ()
        )
        names: dict[str, Position] = {}
        for rule in rules:
            if rule.name in names:
                raise PolicySyntaxError(
                    f"rule name '{rule.name}' is already used at {names[rule.name]}", rule.pos
                )
            names[rule.name] = rule.pos
        guardrails = (
            self.items(top["guardrails"][1], "guardrails", ("guardrails",), self.guardrail)
            if "guardrails" in top
            else ()
        )
        expectations = (
            self.items(top["expect"][1], "expect", ("expect",), self.expectation)
            if "expect" in top
            else ()
        )
        return Document(rules, guardrails, expectations, dict(self.positions))

    def check_duplicates(self, node: Node, what: str) -> None:
        self.pairs(node, what)

    def rule(self, node: Node, loc: Locator) -> Rule:
        what = f"rule #{loc[-1]}"
        m = self.mapping(node, what, _RULE_KEYS, ("name", "subjects", "resource"))
        self.check_duplicates(node, what)
        name = self.string(m["name"][1], "a rule's name")
        what = f"rule '{name}'"
        effect = Effect.ALLOW
        if "effect" in m:
            raw = self.string(m["effect"][1], f"{what}: effect")
            if raw not in ("allow", "deny"):
                raise PolicySyntaxError(
                    f"{what}: effect must be 'allow' or 'deny', not '{raw}'", _pos(m["effect"][1])
                )
            effect = Effect(raw)
        for key in m:
            self.located((*loc, key), m[key][0])
        self.located((*loc, "resource"), m["resource"][1])
        if effect is Effect.DENY:
            for key in ("read", "write", "create"):
                if key in m:
                    raise PolicySyntaxError(
                        f"{what}: a deny rule takes 'fields' (or nothing, to hide the row), "
                        f"not '{key}'",
                        _pos(m[key][0]),
                    )
        elif "fields" in m:
            raise PolicySyntaxError(
                f"{what}: 'fields' is only for deny rules; an allow rule lists 'read.visible'",
                _pos(m["fields"][0]),
            )
        return Rule(
            name=name,
            resource=self.string(m["resource"][1], f"{what}: resource"),
            subjects=self.subjects(m["subjects"][1], what, (*loc, "subjects")),
            effect=effect,
            rows=self.condition(m["rows"][1], (*loc, "rows")) if "rows" in m else None,
            read=self.read(m["read"][1], what, (*loc, "read")) if "read" in m else Read(),
            write=self.write(m["write"][1], f"{what}: write", (*loc, "write"))
            if "write" in m
            else None,
            create=self.write(m["create"][1], f"{what}: create", (*loc, "create"))
            if "create" in m
            else None,
            fields=self.strings(m["fields"][1], f"{what}: fields", (*loc, "fields"))
            if "fields" in m
            else (),
            index=int(loc[-1]),
            pos=_pos(node),
        )

    def subjects(self, node: Node, what: str, loc: Locator) -> tuple[Subject, ...]:
        subjects = self.items(node, f"{what}: subjects", loc, self.subject)
        if not subjects:
            raise PolicySyntaxError(f"{what}: subjects must not be empty", _pos(node))
        return subjects

    def subject(self, node: Node, loc: Locator) -> Subject:
        m = self.mapping(node, "a subject", _SUBJECT_KEYS)
        self.check_duplicates(node, "a subject")
        if not m:
            raise PolicySyntaxError(
                "a subject names at least one of: org, kind, role, scope", _pos(node)
            )
        values = {k: self.string(v, f"subject {k}") for k, (_, v) in m.items()}
        for k, (_, v) in m.items():
            self.located((*loc, k), v)  # the validator points at an unknown kind or role
        return Subject(pos=_pos(node), **values)

    def read(self, node: Node, what: str, loc: Locator) -> Read:
        m = self.mapping(node, f"{what}: read", _READ_KEYS)
        self.check_duplicates(node, f"{what}: read")
        visible = (
            self.strings(m["visible"][1], f"{what}: read.visible", (*loc, "visible"))
            if "visible" in m
            else ()
        )
        masked: dict[str, MaskSpec] = {}
        if "masked" in m:
            masked_node = m["masked"][1]
            for field, key, value in self.pairs(masked_node, f"{what}: read.masked"):
                self.located((*loc, "masked", field), key)
                masked[field] = self.mask(value, f"{what}: mask of '{field}'")
        return Read(visible, masked)

    def mask(self, node: Node, what: str) -> MaskSpec:
        if isinstance(node, ScalarNode):
            return MaskSpec(self.string(node, what), pos=_pos(node))
        m = self.mapping(node, what, _MASK_KEYS, ("mask",))
        self.check_duplicates(node, what)
        name = self.string(m["mask"][1], what)
        edges: tuple[int, ...] | None = None
        if "edges" in m:
            edges_node = m["edges"][1]
            raw = self.operand(edges_node, f"{what}: edges")
            if not isinstance(raw, tuple) or not all(
                isinstance(e, int) and not isinstance(e, bool) for e in raw
            ):
                raise PolicySyntaxError(
                    f"{what}: edges must be a list of integers", _pos(edges_node)
                )
            if list(raw) != sorted(set(raw)) or not raw:
                raise PolicySyntaxError(
                    f"{what}: edges must be strictly increasing and not empty", _pos(edges_node)
                )
            edges = raw
        return MaskSpec(name, edges, _pos(m["mask"][1]))

    def write(self, node: Node, what: str, loc: Locator) -> Write:
        m = self.mapping(node, what, _WRITE_KEYS)
        self.check_duplicates(node, what)
        fields = (
            self.strings(m["fields"][1], f"{what}.fields", (*loc, "fields"))
            if "fields" in m
            else ()
        )
        check = self.condition(m["check"][1], (*loc, "check")) if "check" in m else None
        presets: dict[str, Operand] = {}
        if "presets" in m:
            presets_node = m["presets"][1]
            for field, key, value in self.pairs(presets_node, f"{what}.presets"):
                self.located((*loc, "presets", field), key)
                presets[field] = self.scalar(value, f"{what}.presets.{field}")
        return Write(fields, check, presets)

    def guardrail(self, node: Node, loc: Locator) -> Guardrail:
        what = f"guardrail #{loc[-1]}"
        m = self.mapping(node, what, _GUARDRAIL_KEYS, ("name", "subjects"))
        self.check_duplicates(node, what)
        for key in m:
            self.located((*loc, key), m[key][0])
        # `about: X` guards the records about X (policies.model.Guardrail); either names
        # the resource, and exactly one of them is given.
        given = [key for key in ("resource", "about") if key in m]
        if len(given) != 1:
            problem = "is missing 'resource' (or 'about')" if not given else "has both"
            raise PolicySyntaxError(
                f"{what} {problem}: give 'resource' to guard its rows, or 'about' to guard "
                "the records about it",
                _pos(m["about"][0]) if len(given) > 1 else _pos(node),
            )
        key = given[0]
        self.located((*loc, "resource"), m[key][1])
        name = self.string(m["name"][1], "a guardrail's name")
        what = f"guardrail '{name}'"
        if "exempt" in m and key != "about":
            raise PolicySyntaxError(f"{what}: 'exempt' goes with 'about'", _pos(m["exempt"][0]))
        return Guardrail(
            name=name,
            resource=self.string(m[key][1], f"{what}: {key}"),
            subjects=self.subjects(m["subjects"][1], what, (*loc, "subjects")),
            rows=self.condition(m["rows"][1], (*loc, "rows")) if "rows" in m else None,
            hidden=self.strings(m["hidden"][1], f"{what}: hidden", (*loc, "hidden"))
            if "hidden" in m
            else (),
            about=key == "about",
            exempt=self.strings(m["exempt"][1], f"{what}: exempt", (*loc, "exempt"))
            if "exempt" in m
            else (),
            index=int(loc[-1]),
            pos=_pos(node),
        )

    def expectation(self, node: Node, loc: Locator) -> Expectation:
        what = f"expectation #{loc[-1]}"
        m = self.mapping(node, what, _EXPECT_KEYS, ("subject", "resource"))
        self.check_duplicates(node, what)
        for key in m:
            self.located((*loc, key), m[key][0])
        self.located((*loc, "resource"), m["resource"][1])
        name = self.string(m["name"][1], "an expectation's name") if "name" in m else what
        return Expectation(
            name=name,
            resource=self.string(m["resource"][1], f"{what}: resource"),
            subject=self.subject(m["subject"][1], (*loc, "subject")),
            must_not_see=self.strings(
                m["must_not_see"][1], f"{what}: must_not_see", (*loc, "must_not_see")
            )
            if "must_not_see" in m
            else (),
            must_see=self.strings(m["must_see"][1], f"{what}: must_see", (*loc, "must_see"))
            if "must_see" in m
            else (),
            index=int(loc[-1]),
            pos=_pos(node),
        )

    # -- conditions -------------------------------------------------------------------

    def condition(self, node: Node, loc: Locator) -> Condition:
        if not isinstance(node, MappingNode) or not node.value:
            raise PolicySyntaxError(
                f"a condition must be a non-empty mapping, not {_kind(node)}", _pos(node)
            )
        parts: list[Condition] = []
        for name, key, value in self.pairs(node, "a condition"):
            if name in ("and", "or"):
                if not isinstance(value, SequenceNode) or not value.value:
                    raise PolicySyntaxError(
                        f"'{name}' takes a non-empty list of conditions", _pos(value)
                    )
                items = tuple(
                    self.condition(child, (*loc, name, i)) for i, child in enumerate(value.value)
                )
                parts.append(And(items, _pos(key)) if name == "and" else Or(items, _pos(key)))
            elif name == "not":
                parts.append(Not(self.condition(value, (*loc, "not")), _pos(key)))
            else:
                parts.extend(self.comparisons(name, key, value))
        return parts[0] if len(parts) == 1 else And(tuple(parts), _pos(node))

    def comparisons(self, path: str, key: Node, node: Node) -> list[Condition]:
        if isinstance(node, SequenceNode):
            raise PolicySyntaxError(
                f"unknown boolean operator '{path}' (expected one of: "
                f"{', '.join(sorted(BOOLEAN_OPERATORS))})",
                _pos(key),
            )
        if path.startswith("$") or "" in path.split("."):
            raise PolicySyntaxError(f"'{path}' is not a field path", _pos(key))
        if not isinstance(node, MappingNode) or not node.value:
            raise PolicySyntaxError(
                f"the condition on '{path}' must be a mapping of operators, e.g. {{eq: ...}}",
                _pos(node),
            )
        out: list[Condition] = []
        for op, op_key, value in self.pairs(node, f"the condition on '{path}'"):
            if op not in COMPARISON_OPERATORS:
                raise PolicySyntaxError(
                    f"unknown operator '{op}' on '{path}' (expected one of: "
                    f"{', '.join(sorted(COMPARISON_OPERATORS))})",
                    _pos(op_key),
                )
            operand = self.operand(value, f"the operand of '{op}' on '{path}'")
            out.append(Compare(path, op, operand, _pos(key), _pos(op_key), _pos(value)))
        return out
