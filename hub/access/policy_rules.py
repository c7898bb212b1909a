"""The published sharing policy as the access module's rule set (DESIGN §4, §5).

:class:`PolicyRules` implements :class:`hub.access.rules.RuleSet` on one policy version:
row filters are the policy's row conditions compiled to SQL (:func:`policies.plan`), with
the operator's guardrails ANDed in (they hold even if a published rule forgot them); each
row's field outcomes come from the boolean rule columns selected with it. Plans are
compiled once per caller shape and cached for the life of the version.
"""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import (
    Boolean,
    ColumnElement,
    FromClause,
    Label,
    Uuid,
    and_,
    false,
    func,
    or_,
    true,
)
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import BindParameter, BooleanClauseList
from sqlalchemy.sql.visitors import ExternallyTraversible, replacement_traverse

from hub.access.catalog import CATALOG, DERIVED, HubMapping
from hub.access.resources import Action, Resource
from hub.principal import Principal
from policies import (
    Caller,
    Catalog,
    Document,
    Effect,
    FieldDecision,
    Guardrail,
    Outcome,
    RowPlan,
    Rule,
    Variable,
    Write,
    compile_condition,
    concrete_guardrails,
    plan,
)
from policies.evaluate import subject_matches
from policies.evaluate import variable_value as bind_variable

_HIDDEN = FieldDecision(Outcome.HIDDEN)
_MAX_PLANS = 4096


def caller_of(principal: Principal) -> Caller:
    """The policy engine's view of a principal: its organization (slug, kind and
    attributes), its roles (a staff user's, plus the organization's ``roles`` attribute,
    which is how a department says what it does) and its token's scopes."""
    org_roles = principal.attributes.get("roles", ())
    roles = set(principal.roles)
    if isinstance(org_roles, list | tuple):
        roles.update(str(role) for role in org_roles)
    return Caller(
        org=principal.organization_slug,
        kind=principal.organization_kind.value,
        roles=frozenset(roles),
        scopes=frozenset(principal.scopes),
        attributes=principal.attributes,
    )


@dataclass(frozen=True)
class ResourcePlan:
    """The compiled policy for one caller on one resource."""

    row: RowPlan
    where: ColumnElement[bool]  # the plan's rows AND the guardrails' rows
    guarded: frozenset[str]  # fields a guardrail hides from this caller
    shown: frozenset[str]  # fields some row may show (clear or masked)
    clear: frozenset[str]  # fields every visible row shows in clear
    static: Mapping[str, FieldDecision] | None  # outcomes when they never vary per row
    allows: tuple[Rule, ...]  # the allow rules that apply to this caller, in order

    def grants(self, action: Action) -> list[Write]:
        """The ``create`` (or ``write``) grants of the applicable allow rules."""
        found = (r.create if action is Action.CREATE else r.write for r in self.allows)
        return [grant for grant in found if grant is not None]

    def decide(self, row: Mapping[Any, Any]) -> Mapping[str, FieldDecision]:
        if self.static is not None:
            return self.static
        decisions = self.row.decide(row)
        if not self.guarded:
            return decisions
        return {k: _HIDDEN if k in self.guarded else v for k, v in decisions.items()}


class PolicyRules:
    """A :class:`~hub.access.rules.RuleSet` enforcing one published policy version."""

    def __init__(
        self,
        number: int,
        document: Document,
        guardrails: Sequence[Guardrail],
        *,
        pseudonym_secret: bytes,
        fingerprint: str = "",
        catalog: Catalog = CATALOG,
    ) -> None:
        self.version = number
        self.fingerprint = fingerprint  # the source's SHA-256: which version this is
        self.document = document
        # The hub's catalog plus the fields federated subgraphs add (hub.federation):
        # rules decide those like any field, but they are not columns (``remote``).
        self.catalog = catalog
        self.remote: Mapping[Resource, frozenset[str]] = {
            resource: frozenset(catalog.resources[resource.value].remote) for resource in Resource
        }
        self._guardrail_sources = tuple(guardrails)
        # Per resource: an `about` guardrail stands for one on each resource it covers.
        self.guardrails = concrete_guardrails(guardrails, catalog)
        self.pseudonym_secret = pseudonym_secret
        self._plans: dict[tuple[Hashable, ...], ResourcePlan] = {}
        self._audiences: dict[tuple[Hashable, ...], Hashable] = {}

    def with_catalog(self, catalog: Catalog) -> PolicyRules:
        """The same version enforced over another catalog (subgraphs added or removed
        fields): a new object, so every cache keyed on the rules starts afresh."""
        return PolicyRules(
            self.version,
            self.document,
            self._guardrail_sources,
            pseudonym_secret=self.pseudonym_secret,
            fingerprint=self.fingerprint,
            catalog=catalog,
        )

    @classmethod
    def deny_all(cls) -> PolicyRules:
        """Rules before any policy is loaded: nobody sees anything (deny by default)."""
        return cls(0, Document(), (), pseudonym_secret=secrets.token_bytes(32))

    # -- compiled plans --------------------------------------------------------------

    def _key(self, principal: Principal, resource: Resource | None) -> tuple[Hashable, ...]:
        attributes = attributes_key(principal.attributes)
        return (
            resource,
            principal.organization_id,
            principal.organization_slug,
            principal.organization_kind,
            principal.roles,
            principal.scopes,
            attributes,
        )

    def plan(self, principal: Principal, resource: Resource) -> ResourcePlan:
        """The cached compiled plan of ``resource`` for ``principal``."""
        key = self._key(principal, resource)
        cached = self._plans.get(key)
        if cached is None:
            if len(self._plans) >= _MAX_PLANS:
                self._plans.clear()  # callers' shapes are few; this only bounds abuse
            cached = self._plans[key] = self._compile(principal, resource)
        return cached

    def _compile(
        self, principal: Principal, resource: Resource, mapping: HubMapping | None = None
    ) -> ResourcePlan:
        caller = caller_of(principal)
        if mapping is None:
            mapping = HubMapping(principal.organization_slug, principal.organization_id)
        row = plan(self.document, self.catalog, caller, resource.value, mapping)
        table = mapping.table(resource.value)
        where = row.where
        guarded: set[str] = set()
        for guardrail in self.guardrails:
            if guardrail.resource != resource.value or not any(
                subject_matches(s, caller) for s in guardrail.subjects
            ):
                continue
            if guardrail.rows is not None:
                held = compile_condition(
                    guardrail.rows, resource.value, table, caller, self.catalog, mapping
                )
                # The rules often say what the guardrail says (a partner sees customers
                # who consented): the database need not check it twice per row.
                present = conjuncts(where)
                missing = [c for c in conjuncts(held) if not any(c.compare(p) for p in present)]
                if missing:
                    where = and_(where, *missing)
            # A hidden JSON path ("traits.internal_notes") hides the whole JSON field.
            guarded.update(name.split(".", 1)[0] for name in guardrail.hidden)
        possible = row.possible()
        shown = (
            frozenset(name for name, outcome in possible.items() if outcome >= Outcome.MASKED)
            - guarded
        )
        rules = [
            rule
            for rule in self.document.rules
            if rule.resource == resource.value
            and any(subject_matches(s, caller) for s in rule.subjects)
        ]
        allows = [r for r in rules if r.effect is Effect.ALLOW]
        if allows:
            # A visible row always shows its id (Access.project), whatever the rules list.
            shown |= {"id"}
        denied = {name for r in rules if r.effect is Effect.DENY for name in r.fields}
        clear = frozenset(
            name
            for name in shown
            if allows and all(name in r.read.visible for r in allows) and name not in denied
        )
        if not allows:
            where = false()
        where = plannable(where)
        static: Mapping[str, FieldDecision] | None = None
        if row.static:
            decisions = row.decide({})
            static = {k: _HIDDEN if k in guarded else v for k, v in decisions.items()}
        return ResourcePlan(row, where, frozenset(guarded), shown, clear, static, tuple(allows))

    # -- the RuleSet protocol ----------------------------------------------------------

    def row_filter(self, principal: Principal, resource: Resource) -> ColumnElement[bool]:
        return self.plan(principal, resource).where

    def row_filter_within(
        self, principal: Principal, resource: Resource, relation: str, row: FromClause
    ) -> ColumnElement[bool]:
        """:meth:`row_filter` for rows all related through ``relation`` (one-to-one) to the
        one row of ``row`` in scope: paths across ``relation`` read that row's columns
        instead of a subquery each. Compiled afresh (callers cache what they build)."""
        mapping = HubMapping(
            principal.organization_slug, principal.organization_id, (resource.value, relation, row)
        )
        return self._compile(principal, resource, mapping).where

    def rule_columns(self, principal: Principal, resource: Resource) -> tuple[Label[bool], ...]:
        return self.plan(principal, resource).row.columns

    def readable_fields(self, principal: Principal, resource: Resource) -> frozenset[str]:
        """Fields every visible row shows in clear: the only ones a caller may filter or
        order by (filtering on a field hidden on some rows would reveal it)."""
        return self.plan(principal, resource).clear

    def shown_fields(self, principal: Principal, resource: Resource) -> frozenset[str]:
        return self.plan(principal, resource).shown

    def decider(
        self, principal: Principal, resource: Resource
    ) -> Callable[[Mapping[Any, Any]], Mapping[str, FieldDecision]]:
        return self.plan(principal, resource).decide

    def may(self, principal: Principal, resource: Resource, action: Action) -> bool:
        plan = self.plan(principal, resource)
        return bool(plan.allows) if action is Action.READ else bool(plan.grants(action))

    def writable_fields(
        self, principal: Principal, resource: Resource, action: Action
    ) -> frozenset[str]:
        """The fields ``action`` may set: the union over the applicable allow rules."""
        grants = self.plan(principal, resource).grants(action)
        return frozenset(name for grant in grants for name in grant.fields)

    def write_check(
        self, principal: Principal, resource: Resource, action: Action
    ) -> ColumnElement[bool]:
        """The SQL condition a row must satisfy after ``action``: the ``check`` of some
        applicable rule granting it (a grant without ``check`` accepts any row)."""
        caller = caller_of(principal)
        mapping = HubMapping(principal.organization_slug, principal.organization_id)
        table = mapping.table(resource.value)
        checks: list[ColumnElement[bool]] = []
        for grant in self.plan(principal, resource).grants(action):
            if grant.check is None:
                return true()
            held = compile_condition(
                grant.check, resource.value, table, caller, self.catalog, mapping
            )
            checks.append(func.coalesce(held, false()))
        return or_(*checks) if checks else false()

    def presets(self, principal: Principal, resource: Resource, action: Action) -> dict[str, Any]:
        """Column values ``action`` forces from the caller (``presets`` of the applicable
        grants), e.g. ``organization: $subject.org`` sets ``organization_id``."""
        caller = caller_of(principal)
        values: dict[str, Any] = {}
        for grant in self.plan(principal, resource).grants(action):
            for name, value in grant.presets.items():
                if isinstance(value, Variable):
                    value = bind_variable(value, caller)
                if name == "organization":
                    # The only organization a caller can preset is its own.
                    if value != principal.organization_slug:
                        raise ValueError(f"preset organization {value!r} is not the caller's")
                    values["organization_id"] = principal.organization_id
                else:
                    values[DERIVED.get(name, name)] = value
        return values

    def audience(self, principal: Principal) -> Hashable:
        # Per request (the schema is chosen by it): memoised by caller shape.
        key = self._key(principal, None)
        found = self._audiences.get(key)
        if found is None:
            if len(self._audiences) >= _MAX_PLANS:
                self._audiences.clear()
            found = self._audiences[key] = self._audience(principal)
        return found

    def _audience(self, principal: Principal) -> Hashable:
        caller = caller_of(principal)
        rules = frozenset(
            r.index
            for r in self.document.rules
            if any(subject_matches(s, caller) for s in r.subjects)
        )
        guardrails = frozenset(
            g.name for g in self.guardrails if any(subject_matches(s, caller) for s in g.subjects)
        )
        return (self.version, rules, guardrails)


def plannable(condition: ColumnElement[bool]) -> ColumnElement[bool]:
    """``condition`` with its boolean and uuid values written in the SQL text, not bound.

    A row filter's values are the policy's constants and the caller's own ids
    (``consent_share_with_partners = true``, ``organization_id = '<the caller's id>'``),
    and PostgreSQL cannot plan a prepared statement well for values it does not know:
    for a distributor's page it planned again at every execution (custom plans, ~0.25 ms
    of PostgreSQL CPU per page, a third of the statement's), its generic plan for an
    average organization being a hash join over every customer. Written in the text,
    the values are known when the statement is prepared, so its generic plan is the
    custom one and the statement is planned once per connection.

    Only values of these two types are written, rendered by SQLAlchemy from a Python
    ``bool`` or :class:`uuid.UUID` (nothing a caller typed can reach the text); strings
    and numbers stay bound. The price: one statement text per organization where
    organizations of one kind shared one (the driver's cache of prepared statements per
    connection is bounded: docs/production.md, Sizing). ``FROM`` objects are kept, not
    cloned: a nested read's filter refers to its enclosing row, and a copy of that row
    would no longer be correlated with it.
    """

    def inline(element: ExternallyTraversible, **_: Any) -> ExternallyTraversible | None:
        if isinstance(element, FromClause):
            return element
        if isinstance(element, BindParameter) and _inlinable(element):
            return element.render_literal_execute()
        return None

    return replacement_traverse(condition, {}, inline)


def _inlinable(bound: BindParameter[Any]) -> bool:
    if bound.literal_execute or bound.expanding or bound.callable is not None:
        return False
    value, sql_type = bound.value, bound.type
    if isinstance(value, bool):
        return type(sql_type) is Boolean
    # asyncpg's uuids are a subclass; SQLAlchemy writes any uuid.UUID as its text.
    return isinstance(value, uuid.UUID) and type(sql_type) is Uuid and sql_type.as_uuid


def conjuncts(condition: ColumnElement[bool]) -> list[ColumnElement[bool]]:
    """The terms of ``condition`` read as ``a AND b AND ...`` (itself alone if it is no
    conjunction). In SQL's three-valued logic ``a AND a`` is ``a``, so a term equal to one
    present may be left out."""
    if isinstance(condition, BooleanClauseList) and condition.operator is operators.and_:
        return [term for clause in condition.clauses for term in conjuncts(clause)]
    return [condition]


def attributes_key(attributes: Mapping[str, Any]) -> bytes | str:
    """A caller's attributes as a cache key: equal attributes, equal keys (their JSON with
    sorted keys). Made on every request, so through orjson, with the standard library for
    what orjson refuses (a non-string key, an integer beyond 64 bits)."""
    try:
        return orjson.dumps(dict(attributes), option=orjson.OPT_SORT_KEYS, default=str)
    except TypeError:
        return json.dumps(dict(attributes), sort_keys=True, default=str)
