"""The plain Python evaluator: the oracle of the policy semantics and the engine of explain.

Semantics (DESIGN §4): deny by default. Among the allow rules for the caller whose ``rows``
condition holds for the record, each field's outcome is the most permissive (visible >
masked > hidden; ties go to the earlier rule). Deny rules override: one whose ``rows``
holds hides the whole row, or only its ``fields`` if it lists some. Only fields of the
catalog are ever decided, so a rule naming an unknown field exposes nothing.

Conditions use SQL's three-valued logic (a comparison with a missing value is unknown, and
``not unknown`` is unknown), so the SQL compiler can be checked against this oracle; a path
through a one-to-many relation means "some related record matches" (``EXISTS``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from policies.catalog import Catalog
from policies.masks import apply_mask
from policies.model import (
    And,
    Compare,
    Condition,
    Document,
    Effect,
    MaskSpec,
    Not,
    Operand,
    Or,
    Outcome,
    Rule,
    Subject,
    Variable,
)

__all__ = [
    "Caller",
    "Decision",
    "FieldDecision",
    "RuleTrace",
    "evaluate",
    "explain",
    "holds",
    "project",
    "subject_matches",
]


@dataclass(frozen=True)
class Caller:
    """Who is asking: organization slug and kind, roles, scopes and free attributes."""

    org: str
    kind: str
    roles: frozenset[str] = frozenset()
    scopes: frozenset[str] = frozenset()
    attributes: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FieldDecision:
    """A field's outcome for one row, the mask if masked, and the deciding rule."""

    outcome: Outcome
    mask: MaskSpec | None = None
    rule: str | None = None


@dataclass(frozen=True)
class RuleTrace:
    """How one rule on the resource fared: does it apply to the caller, do its rows hold."""

    name: str
    effect: Effect
    applies: bool
    rows_hold: bool


@dataclass(frozen=True)
class Decision:
    """The decision for one caller and one record."""

    resource: str
    row_visible: bool
    row_rules: tuple[str, ...]  # allow rules admitting the row, or the deny hiding it
    fields: Mapping[str, FieldDecision]
    trace: tuple[RuleTrace, ...]

    def outcome(self, name: str) -> Outcome:
        """The outcome of ``name``; hidden for fields outside the catalog."""
        decision = self.fields.get(name)
        return decision.outcome if decision else Outcome.HIDDEN


_HIDDEN = FieldDecision(Outcome.HIDDEN)


def subject_matches(subject: Subject, caller: Caller) -> bool:
    """Whether every attribute ``subject`` names matches ``caller``."""
    return (
        (subject.org is None or subject.org == caller.org)
        and (subject.kind is None or subject.kind == caller.kind)
        and (subject.role is None or subject.role in caller.roles)
        and (subject.scope is None or subject.scope in caller.scopes)
    )


def evaluate(
    document: Document, catalog: Catalog, caller: Caller, resource: str, record: Mapping[str, Any]
) -> Decision:
    """Decide row visibility and every catalog field's outcome for ``record``."""
    names = catalog.fields(resource)
    allows: list[Rule] = []
    denies: list[Rule] = []
    trace: list[RuleTrace] = []
    for rule in document.rules:
        if rule.resource != resource:
            continue
        applies = any(subject_matches(s, caller) for s in rule.subjects)
        rows_hold = applies and (rule.rows is None or holds(rule.rows, record, caller) is True)
        trace.append(RuleTrace(rule.name, rule.effect, applies, rows_hold))
        if rows_hold:
            (allows if rule.effect is Effect.ALLOW else denies).append(rule)
    row_deny = next((r for r in denies if not r.fields), None)
    if row_deny is not None or not allows:
        rules = (row_deny.name,) if row_deny else ()
        hidden = FieldDecision(Outcome.HIDDEN, None, row_deny.name if row_deny else None)
        return Decision(resource, False, rules, dict.fromkeys(names, hidden), tuple(trace))
    fields: dict[str, FieldDecision] = dict.fromkeys(names, _HIDDEN)
    for rule in allows:
        for name in rule.read.visible:
            if name in fields and fields[name].outcome < Outcome.VISIBLE:
                fields[name] = FieldDecision(Outcome.VISIBLE, None, rule.name)
        for name, mask in rule.read.masked.items():
            if name in fields and fields[name].outcome < Outcome.MASKED:
                fields[name] = FieldDecision(Outcome.MASKED, mask, rule.name)
    denied: set[str] = set()
    for rule in denies:
        for name in rule.fields:
            if name in fields and name not in denied:
                denied.add(name)
                fields[name] = FieldDecision(Outcome.HIDDEN, None, rule.name)
    return Decision(resource, True, tuple(r.name for r in allows), fields, tuple(trace))


def project(
    decision: Decision, record: Mapping[str, Any], *, secret: bytes, partner: str
) -> dict[str, Any]:
    """The record as the caller sees it: visible fields in clear, masked fields masked,
    nothing else (an empty dict when the row is hidden)."""
    if not decision.row_visible:
        return {}
    out: dict[str, Any] = {}
    for name, fd in decision.fields.items():
        if fd.outcome is Outcome.VISIBLE:
            out[name] = record.get(name)
        elif fd.outcome is Outcome.MASKED and fd.mask is not None:
            out[name] = apply_mask(fd.mask, record.get(name), secret=secret, partner=partner)
    return out


def explain(
    document: Document, catalog: Catalog, caller: Caller, resource: str, record: Mapping[str, Any]
) -> dict[str, Any]:
    """The decision as plain data: the row decision, each field's outcome with its mask
    and deciding rule, and how every rule on the resource fared."""
    decision = evaluate(document, catalog, caller, resource, record)
    return {
        "resource": resource,
        "row": {"visible": decision.row_visible, "rules": list(decision.row_rules)},
        "fields": {
            name: {
                "outcome": fd.outcome.name.lower(),
                "mask": fd.mask.name if fd.mask else None,
                "rule": fd.rule,
            }
            for name, fd in sorted(decision.fields.items())
        },
        "rules": [
            {"name": t.name, "effect": str(t.effect), "applies": t.applies, "rows": t.rows_hold}
            for t in decision.trace
        ],
    }


def holds(cond: Condition, record: Mapping[str, Any], caller: Caller) -> bool | None:
    """Evaluate ``cond`` on ``record`` in three-valued logic (``None`` = unknown)."""
    match cond:
        case And(items):
            results = [holds(i, record, caller) for i in items]
            if False in results:
                return False
            return None if None in results else True
        case Or(items):
            results = [holds(i, record, caller) for i in items]
            if True in results:
                return True
            return None if None in results else False
        case Not(item):
            result = holds(item, record, caller)
            return None if result is None else not result
        case Compare(path, op, value):
            many, candidates = _resolve(record, path.split("."))
            operand = _operand(value, caller)
            results = [_compare(op, c, operand) for c in candidates]
            if many:
                return any(r is True for r in results)
            return results[0] if results else None
    return None  # pragma: no cover - exhaustive


def _resolve(value: Any, parts: list[str]) -> tuple[bool, list[Any]]:
    """The candidate values at ``parts``; ``many`` when a list was crossed."""
    if not parts:
        return False, [value]
    if isinstance(value, Mapping):
        return _resolve(value.get(parts[0]), parts[1:])
    if isinstance(value, list | tuple):
        out: list[Any] = []
        for item in value:
            out.extend(_resolve(item, parts)[1])
        return True, out
    return False, [None]


def variable_value(variable: Variable, caller: Caller) -> Any:
    """The value of a subject variable for ``caller`` (lists as tuples; unknown: None)."""
    return _operand(variable, caller)


def _operand(value: Operand, caller: Caller) -> Any:
    if not isinstance(value, Variable):
        return value
    match value.name.split(".", 2):
        case ["subject", "org"]:
            return caller.org
        case ["subject", "kind"]:
            return caller.kind
        case ["subject", "roles"]:
            return tuple(sorted(caller.roles))
        case ["subject", "scopes"]:
            return tuple(sorted(caller.scopes))
        case ["subject", "attributes", name]:
            attr = caller.attributes.get(name)
            return tuple(attr) if isinstance(attr, list | set | frozenset) else attr
    return None


def _coerce(operand: Any, like: Any) -> Any:
    if isinstance(operand, str) and isinstance(like, dt.datetime):
        return dt.datetime.fromisoformat(operand)
    if isinstance(operand, str) and isinstance(like, dt.date):
        return dt.date.fromisoformat(operand)
    if isinstance(operand, list):
        return tuple(operand)
    return operand


def _compare(op: str, actual: Any, operand: Any) -> bool | None:
    if op == "is_null":
        return (actual is None) == bool(operand)
    if actual is None or operand is None:
        return None
    if isinstance(actual, list):
        actual = tuple(actual)
    try:
        if op in ("in", "nin"):
            members = [_coerce(m, actual) for m in operand]
            if any(m is not None and _eq(actual, m) for m in members):
                return op == "in"
            if None in members:
                return None  # SQL: x IN (..., NULL) is unknown when nothing matched
            return op == "nin"
        other = _coerce(operand, actual)
        match op:
            case "eq":
                return _eq(actual, other)
            case "ne":
                return not _eq(actual, other)
            case "gt":
                return bool(actual > other)
            case "gte":
                return bool(actual >= other)
            case "lt":
                return bool(actual < other)
            case "lte":
                return bool(actual <= other)
    except (TypeError, ValueError):
        return None
    return None


def _eq(a: Any, b: Any) -> bool:
    # True == 1 in Python but not in SQL: booleans only equal booleans.
    if isinstance(a, bool) != isinstance(b, bool):
        return False
    return bool(a == b)
