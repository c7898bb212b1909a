"""Publish-time checks (DESIGN §4): operator guardrails and a document's expectation tests.

Both checks read rules, never data, so they run before a version is published, and each
:class:`Violation` names the rule to fix in a sentence a policy author understands.

**Guardrails** (:func:`check_guardrails`) are checked *soundly*: a document with no
violation cannot break the guardrail for any record or caller (the property tests hold this
against :func:`policies.evaluate.evaluate`); a reported violation may be harmless on today's
data. For every allow rule on the guardrail's resource whose subjects overlap the
guardrail's:

- rows: the rule's ``rows`` must imply the guardrail's ``rows`` syntactically
  (:func:`implies`), unless an unconditional row-deny (no ``rows``, no ``fields``) covers
  every overlapping caller. A deny whose ``rows`` is the guardrail's condition negated is
  *not* accepted: in three-valued logic a row where the condition is unknown (a null) is
  neither admitted by the condition nor hidden by its negation.
- hidden: the rule must not grant, visible or masked, a hidden field or the JSON field a
  hidden path lives in (``traits`` for ``traits.internal_notes``), unless an unconditional
  deny hiding that field (or the whole row) covers every overlapping caller.

**Subject overlap.** Two subjects overlap unless both name the organization, or both the
kind, with different values, or one names an organization whose kind (from ``orgs``)
differs from the kind the other names. An organization missing from ``orgs`` overlaps any
kind: it could be created later with that kind; an organization's kind is taken to be
fixed, so the hub re-runs these checks if it ever changes one. Roles and scopes never rule
out overlap: a caller holds several, so ``{role: sales}`` and ``{role: admin}`` both match
a caller holding both.

**Expectations** (:func:`run_expectations`) describe callers holding *exactly* the role
and scope named (none if not named). With an organization they describe one caller (its
kind from ``orgs`` when not given); with only a kind, every organization of that kind.
``must_not_see`` fails when an allow rule that may apply to such a caller grants the field
visible or masked and no unconditional deny hides it from them. ``must_see`` holds when an
allow rule applying to every such caller grants the field *visible* (masked is not seeing)
on the rows it admits, and no unconditional deny hides the field (or the row) from any of
them.

Example::

    violations = check_guardrails(doc, catalog, [*operator_guardrails, *doc.guardrails], orgs)
    violations += run_expectations(doc, catalog, orgs)
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal

import yaml

from policies.catalog import Catalog
from policies.model import (
    And,
    Compare,
    Condition,
    Document,
    Effect,
    Expectation,
    Guardrail,
    Not,
    Operand,
    Or,
    Outcome,
    Position,
    Rule,
    Subject,
    Variable,
)

__all__ = [
    "Violation",
    "check_guardrails",
    "concrete_guardrails",
    "describe",
    "describe_subject",
    "describe_value",
    "implies",
    "run_expectations",
]


@dataclass(frozen=True)
class Violation:
    """A guardrail or expectation a document breaks, and the rule to blame if there is one."""

    kind: Literal["guardrail", "expectation"]
    name: str  # of the guardrail or expectation
    rule: str | None
    message: str
    pos: Position  # of the rule to blame, else of the expectation

    def __str__(self) -> str:
        return f"{self.pos}: {self.message}"


def check_guardrails(
    document: Document,
    catalog: Catalog,
    guardrails: Sequence[Guardrail],
    orgs: Mapping[str, str],
) -> list[Violation]:
    """Every way ``document`` may break one of ``guardrails``: one violation per guardrail,
    rule and breach (rows, or each hidden field). ``orgs`` maps organization slugs to kinds.

    The operator's guardrails live outside the document; pass the document's own
    ``guardrails`` in the same list to check them too. An ``about`` guardrail is checked
    as the guardrails it stands for (:func:`concrete_guardrails`).
    """
    out: list[Violation] = []
    for guardrail in concrete_guardrails(guardrails, catalog):
        rules = [r for r in document.rules if r.resource == guardrail.resource]
        denies = [r for r in rules if r.effect is Effect.DENY and r.rows is None]
        for rule in rules:
            if rule.effect is Effect.ALLOW:
                out.extend(_breaches(rule, guardrail, denies, catalog, orgs))
    return out


def concrete_guardrails(guardrails: Sequence[Guardrail], catalog: Catalog) -> tuple[Guardrail, ...]:
    """``guardrails`` as they apply, resource by resource: an ``about`` guardrail (see
    :class:`policies.model.Guardrail`) becomes one guardrail, of the same name, on each
    other resource of ``catalog`` that reaches its resource through one-to-one relations
    (:meth:`Catalog.path_to`) and is not ``exempt``, its ``rows`` read through that path
    (``consent_share_with_partners`` becomes ``case.customer.consent_share_with_partners``
    on a case note); every other guardrail is kept as it is. Everything that applies
    guardrails (checks, compiled plans, explain) goes through this, so no consumer can
    mistake an ``about`` guardrail for one on its resource's own rows.

    Example::

        concrete_guardrails([Guardrail("consent", "Customer", partners, rows, about=True)],
                            catalog)
        # -> Guardrail("consent", "Feedback", partners, customer.<rows>), ...
    """
    out: list[Guardrail] = []
    for guardrail in guardrails:
        if not guardrail.about:
            out.append(guardrail)
            continue
        for resource in catalog.resources:
            if resource in guardrail.exempt:
                continue
            path = catalog.path_to(resource, guardrail.resource)
            if path is None:
                continue
            out.append(
                Guardrail(
                    name=guardrail.name,
                    resource=resource,
                    subjects=guardrail.subjects,
                    rows=None if guardrail.rows is None else _through(path, guardrail.rows),
                    index=guardrail.index,
                    pos=guardrail.pos,
                )
            )
    return tuple(out)


def _through(path: str, cond: Condition) -> Condition:
    """``cond`` read from the record at ``path`` (every field path prefixed with it)."""
    match cond:
        case And(items):
            return And(tuple(_through(path, i) for i in items), cond.pos)
        case Or(items):
            return Or(tuple(_through(path, i) for i in items), cond.pos)
        case Not(item):
            return Not(_through(path, item), cond.pos)
        case Compare():
            return replace(cond, path=f"{path}.{cond.path}")
    raise TypeError(f"not a condition: {cond!r}")  # pragma: no cover - exhaustive


def run_expectations(
    document: Document, catalog: Catalog, orgs: Mapping[str, str]
) -> list[Violation]:
    """Every failing expectation of ``document``: one violation per expectation and field
    (see the module docstring for what ``must_see`` and ``must_not_see`` mean)."""
    out: list[Violation] = []
    for expectation in document.expectations:
        out.extend(_Expectation(expectation, document, catalog, orgs).run())
    return out


def implies(cond: Condition, target: Condition) -> bool:
    """Whether ``cond`` holding guarantees that ``target`` holds, recognised syntactically:
    equal conditions; an ``and`` with a conjunct implying ``target``; an ``or`` whose every
    branch implies it; and ``target`` an ``and`` of implied conditions or an ``or`` with one.

    Sound in three-valued logic (each step preserves "holds" = true); no reasoning about
    operators (``gt 10`` does not imply ``gt 5``), so authors restate the condition.
    """
    if _same(cond, target):
        return True
    if isinstance(target, And) and all(implies(cond, t) for t in target.items):
        return True
    if isinstance(target, Or) and any(implies(cond, t) for t in target.items):
        return True
    if isinstance(cond, And) and any(implies(c, target) for c in cond.items):
        return True
    return isinstance(cond, Or) and all(implies(c, target) for c in cond.items)


def describe(cond: Condition) -> str:
    """A condition in one line, e.g. ``and(region eq north, email is_null false)``."""
    match cond:
        case And(items):
            return f"and({', '.join(describe(i) for i in items)})"
        case Or(items):
            return f"or({', '.join(describe(i) for i in items)})"
        case Not(item):
            return f"not({describe(item)})"
        case Compare(path, op, value):
            return f"{path} {op} {describe_value(value)}"
    return repr(cond)  # pragma: no cover - exhaustive


def describe_subject(subject: Subject) -> str:
    """A subject as its author writes it, e.g. ``{org: acme, role: sales}``."""
    parts = [
        f"{key}: {value}"
        for key, value in (
            ("org", subject.org),
            ("kind", subject.kind),
            ("role", subject.role),
            ("scope", subject.scope),
        )
        if value is not None
    ]
    return "{" + ", ".join(parts) + "}"


# -- callers -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Callers:
    """A set of callers: of organization ``org`` and kind ``kind`` (``None`` = any), holding
    at least ``roles`` and ``scopes`` (exactly those when ``exact``)."""

    org: str | None = None
    kind: str | None = None
    roles: frozenset[str] = frozenset()
    scopes: frozenset[str] = frozenset()
    exact: bool = False

    def meet(self, subject: Subject, orgs: Mapping[str, str]) -> _Callers | None:
        """The callers here that ``subject`` matches, or ``None`` if there can be none."""
        if subject.org is not None and self.org not in (None, subject.org):
            return None
        if subject.kind is not None and self.kind not in (None, subject.kind):
            return None
        org = self.org if subject.org is None else subject.org
        kind = self.kind if subject.kind is None else subject.kind
        if org is not None and org in orgs:
            if kind not in (None, orgs[org]):
                return None
            kind = orgs[org]
        roles = _require(self.roles, subject.role, self.exact)
        scopes = _require(self.scopes, subject.scope, self.exact)
        if roles is None or scopes is None:
            return None
        return _Callers(org, kind, roles, scopes, self.exact)

    def within(self, subject: Subject) -> bool:
        """Whether ``subject`` matches every caller here."""
        return (
            (subject.org is None or subject.org == self.org)
            and (subject.kind is None or subject.kind == self.kind)
            and (subject.role is None or subject.role in self.roles)
            and (subject.scope is None or subject.scope in self.scopes)
        )


def _require(held: frozenset[str], name: str | None, exact: bool) -> frozenset[str] | None:
    if name is None or name in held:
        return held
    return None if exact else held | {name}


def _covered(callers: _Callers, denies: Sequence[Rule], hides: Callable[[Rule], bool]) -> bool:
    """Whether one unconditional deny that ``hides`` applies to every caller in ``callers``."""
    return any(hides(d) and any(callers.within(s) for s in d.subjects) for d in denies)


def _hides_row(deny: Rule) -> bool:
    return not deny.fields


def _hides_field(name: str) -> Callable[[Rule], bool]:
    return lambda deny: not deny.fields or name in deny.fields


def _grant(rule: Rule, name: str) -> Outcome:
    if name in rule.read.visible:
        return Outcome.VISIBLE
    return Outcome.MASKED if name in rule.read.masked else Outcome.HIDDEN


# -- guardrails ----------------------------------------------------------------------------


def _breaches(
    rule: Rule,
    guardrail: Guardrail,
    denies: Sequence[Rule],
    catalog: Catalog,
    orgs: Mapping[str, str],
) -> Iterator[Violation]:
    overlaps = [
        (s, g, m)
        for s in rule.subjects
        for g in guardrail.subjects
        if (m := _overlap(g, s, orgs)) is not None
    ]
    where = f" where {describe(rule.rows)}" if rule.rows is not None else ""
    if guardrail.rows is not None and (rule.rows is None or not implies(rule.rows, guardrail.rows)):
        for s, g, m in overlaps:
            if not _covered(m, denies, _hides_row):
                yield _violation(
                    guardrail,
                    rule,
                    f"rule '{rule.name}' lets {_who(s, g)} read {rule.resource} rows{where} "
                    f"without requiring {describe(guardrail.rows)} "
                    f"(guardrail '{guardrail.name}')",
                )
                break
    fields = catalog.fields(guardrail.resource)
    exposed: dict[str, list[str]] = {}
    for hidden in guardrail.hidden:
        # A JSON path is exposed with the JSON field it lives in.
        exposed.setdefault(hidden if hidden in fields else hidden.split(".", 1)[0], []).append(
            hidden
        )
    for name, paths in exposed.items():
        grant = _grant(rule, name)
        if grant is Outcome.HIDDEN:
            continue
        for s, g, m in overlaps:
            if not _covered(m, denies, _hides_field(name)):
                what = (
                    "which must stay hidden"
                    if paths == [name]
                    else f"which exposes hidden {', '.join(paths)}"
                )
                yield _violation(
                    guardrail,
                    rule,
                    f"rule '{rule.name}' lets {_who(s, g)} see {rule.resource}.{name} "
                    f"({grant.name.lower()}), {what} (guardrail '{guardrail.name}')",
                )
                break


def _overlap(guarded: Subject, subject: Subject, orgs: Mapping[str, str]) -> _Callers | None:
    """The callers both subjects match (``None`` if none can)."""
    callers = _Callers().meet(guarded, orgs)
    return callers.meet(subject, orgs) if callers is not None else None


def _who(rule_subject: Subject, guardrail_subject: Subject) -> str:
    who = describe_subject(rule_subject)
    if rule_subject == guardrail_subject:
        return who
    return f"{who} (overlapping the guardrail's {describe_subject(guardrail_subject)})"


def _violation(guardrail: Guardrail, rule: Rule, message: str) -> Violation:
    return Violation("guardrail", guardrail.name, rule.name, message, rule.pos)


# -- expectations --------------------------------------------------------------------------


class _Expectation:
    def __init__(
        self,
        expectation: Expectation,
        document: Document,
        catalog: Catalog,
        orgs: Mapping[str, str],
    ) -> None:
        self.e = expectation
        self.catalog = catalog
        self.orgs = orgs
        self.who = describe_subject(expectation.subject)
        rules = [r for r in document.rules if r.resource == expectation.resource]
        self.allows = [r for r in rules if r.effect is Effect.ALLOW]
        self.denies = [r for r in rules if r.effect is Effect.DENY and r.rows is None]

    def violation(self, message: str, rule: Rule | None = None) -> Violation:
        pos = rule.pos if rule is not None else self.e.pos
        name = rule.name if rule is not None else None
        return Violation("expectation", self.e.name, name, message, pos)

    def run(self) -> Iterator[Violation]:
        subject, resource = self.e.subject, self.e.resource
        if subject.org is not None and subject.kind is None and subject.org not in self.orgs:
            yield self.violation(
                f"expectation '{self.e.name}' names unknown organization '{subject.org}' "
                "(name its kind too to describe an organization not created yet)"
            )
            return
        if (
            subject.org is not None
            and subject.kind is not None
            and self.orgs.get(subject.org, subject.kind) != subject.kind
        ):
            yield self.violation(
                f"expectation '{self.e.name}' describes organization '{subject.org}' as a "
                f"{subject.kind}, but it is a {self.orgs[subject.org]}"
            )
            return
        if resource not in self.catalog.resources:
            yield self.violation(
                f"expectation '{self.e.name}' is about unknown resource '{resource}'"
            )
            return
        kind = subject.kind
        if kind is None and subject.org is not None:
            kind = self.orgs[subject.org]
        callers = _Callers(
            subject.org,
            kind,
            frozenset(() if subject.role is None else (subject.role,)),
            frozenset(() if subject.scope is None else (subject.scope,)),
            exact=True,
        )
        for name in self.e.must_not_see:
            yield from self.must_not_see(callers, name)
        for name in self.e.must_see:
            yield from self.must_see(callers, name)

    def must_not_see(self, callers: _Callers, name: str) -> Iterator[Violation]:
        for rule in self.allows:
            grant = _grant(rule, name)
            if grant is Outcome.HIDDEN:
                continue
            for s in rule.subjects:
                met = callers.meet(s, self.orgs)
                if met is not None and not _covered(met, self.denies, _hides_field(name)):
                    yield self.violation(
                        f"rule '{rule.name}' lets {self.who} see {self.e.resource}.{name} "
                        f"({grant.name.lower()}) (expectation '{self.e.name}': must not see it)",
                        rule,
                    )
                    return

    def must_see(self, callers: _Callers, name: str) -> Iterator[Violation]:
        field = f"{self.e.resource}.{name}"
        tail = f"(expectation '{self.e.name}': must see it)"
        if name not in self.catalog.fields(self.e.resource):
            yield self.violation(f"no one sees {field}: it is not in the catalog {tail}")
            return
        for deny in self.denies:
            if _hides_field(name)(deny) and any(
                callers.meet(s, self.orgs) is not None for s in deny.subjects
            ):
                yield self.violation(
                    f"rule '{deny.name}' hides {field} from {self.who} {tail}", deny
                )
                return
        applying = [r for r in self.allows if any(callers.within(s) for s in r.subjects)]
        if any(name in r.read.visible for r in applying):
            return
        masking = next((r for r in applying if name in r.read.masked), None)
        if masking is not None:
            yield self.violation(
                f"rule '{masking.name}' only shows {self.who} {field} masked {tail}", masking
            )
        else:
            yield self.violation(f"no rule lets {self.who} see {field} {tail}")


# -- rendering and comparing conditions ----------------------------------------------------

_BARE = re.compile(r"[\w.:@/+-]+")


def describe_value(value: Operand) -> str:
    """A literal or subject variable as an author writes it: ``north``, ``[a, b]``, ``true``,
    ``$subject.org``."""
    if isinstance(value, Variable):
        return f"${value.name}"
    if isinstance(value, tuple):
        return f"[{', '.join(describe_value(v) for v in value)}]"
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str):
        return value if _bare(value) else json.dumps(value)
    return str(value)


def _bare(text: str) -> bool:
    """Whether ``text`` reads back as itself unquoted: not "true", "12", "2024-01-01"..."""
    if not _BARE.fullmatch(text):
        return False
    try:
        return bool(yaml.safe_load(text) == text)
    except yaml.YAMLError:
        return False


def _same(a: Condition, b: Condition) -> bool:
    """Structural equality, except that booleans never equal numbers (``True == 1`` in
    Python, not in the evaluator)."""
    match a, b:
        case (And(xs), And(ys)) | (Or(xs), Or(ys)):
            return len(xs) == len(ys) and all(_same(x, y) for x, y in zip(xs, ys, strict=True))
        case Not(x), Not(y):
            return _same(x, y)
        case Compare(), Compare():
            return a.path == b.path and a.op == b.op and _samedescribe_value(a.value, b.value)
    return False


def _samedescribe_value(a: Operand, b: Operand) -> bool:
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(
            _samedescribe_value(x, y) for x, y in zip(a, b, strict=True)
        )
    if isinstance(a, bool) != isinstance(b, bool) or isinstance(a, tuple) != isinstance(b, tuple):
        return False
    return bool(a == b)
