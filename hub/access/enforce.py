"""Applying the rules: scoped selects, projections and write checks.

Every channel that emits customer data goes through these functions; nothing else in the
hub decides access at run time (DESIGN §5).
"""

from __future__ import annotations

import uuid
from collections.abc import Hashable, Iterable, Mapping
from types import MappingProxyType
from typing import Any

from sqlalchemy import ColumnElement, FromClause, Row, Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from hub import disclosures
from hub.access.catalog import DERIVED
from hub.access.policy_rules import PolicyRules
from hub.access.registry import REGISTRY
from hub.access.resources import MODELS, Action, Resource
from hub.access.rules import DATA_SCOPES, REQUIRED_SCOPE, RuleSet
from hub.errors import (
    BadInputError,
    FieldProblem,
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
)
from hub.models import OrgKind
from hub.models._types import table_columns
from hub.oauth.scopes import Scope
from hub.principal import Principal
from policies import FieldDecision, Outcome, apply_mask

# Derived fields that exist for conditions only (no API field shows them); the API shows
# the organization through ``organization_id``.
_CONDITION_ONLY = frozenset(
    f.name for spec in REGISTRY.values() for f in spec.fields if f.derived_from and f.api == ()
)

MAX_ENUMERATED_CONDITIONS = 6
"""At most this many row-dependent rule conditions are enumerated by :meth:`Access.outcomes`."""

_SCHEMA_SCOPES = DATA_SCOPES | {Scope.WEBHOOKS_MANAGE}
"""Scopes that shape a caller's schema: the data scopes, and the management of its own
webhook subscriptions (schema/webhooks)."""

FULL_SCHEMA = "full-schema"
"""The audience key of hub administrators, who see the whole schema."""


Record = Mapping[str, Any]
"""A row projected for one principal: fields it may not read are absent."""

REMOTE = "__remote__"
"""The key of a :data:`Record` holding (as a mapping) the decisions of the remote fields
this row may show, clear or masked: fields a federated subgraph provides
(:mod:`hub.federation`), fetched only for rows whose decision shows them, masked as
decided, and noted for the read audit when fetched. Absent when there are none."""

RemoteDecisions = Mapping[str, FieldDecision]
"""What :data:`REMOTE` holds: remote field -> its decision on the row."""

WITHHELD = "__withheld__"
"""The key of a :data:`Record` listing (as a frozenset) the fields withheld from this row
only: fields the principal's schema has but a policy hides on this particular row. The
API answers ``null`` for them and names their paths in the response's ``extensions``."""


class Access:
    """The single access decision point. ``rules`` is swapped when policies are published."""

    def __init__(self, rules: RuleSet) -> None:
        self.rules = rules

    def require(self, principal: Principal, resource: Resource, action: Action) -> None:
        """Refuse with FORBIDDEN unless the token's scope and the rules allow ``action``."""
        scope = REQUIRED_SCOPE.get((resource, action))
        if scope is None or not principal.has_scope(scope):
            raise ForbiddenError(f"this operation needs the {scope or 'admin'} scope")
        if not self.rules.may(principal, resource, action):
            raise ForbiddenError(f"your organization may not {action} {resource} records")

    def may(self, principal: Principal, resource: Resource, action: Action) -> bool:
        """Whether some rule could let the principal perform ``action``: the token's scope
        and an applicable rule granting it (rows and fields are checked at the write).
        :meth:`require` passes exactly when this holds; the per-audience schema offers a
        mutation only then."""
        scope = REQUIRED_SCOPE.get((resource, action))
        return (
            scope is not None
            and principal.has_scope(scope)
            and self.rules.may(principal, resource, action)
        )

    def require_admin(self, principal: Principal) -> None:
        """Refuse with FORBIDDEN unless the caller administers the hub: the ``hub:admin``
        scope *and* an operator or department organization (the scope alone is not enough;
        a partner's client cannot be granted it either). One message for every refusal."""
        if not self.is_admin(principal):
            raise ForbiddenError("this operation is for hub administrators")

    def row_filter(self, principal: Principal, resource: Resource) -> ColumnElement[bool]:
        """The SQL condition for the rows the principal may read (after the scope check)."""
        self.require(principal, resource, Action.READ)
        return self.rules.row_filter(principal, resource)

    def row_filter_within(
        self, principal: Principal, resource: Resource, relation: str, row: FromClause
    ) -> ColumnElement[bool]:
        """:meth:`row_filter` of the rows related through ``relation`` (one-to-one) to the
        enclosing row ``row`` of a nested read (the feedback of one customer): conditions
        across ``relation`` read ``row`` instead of looking it up again per row."""
        self.require(principal, resource, Action.READ)
        return self.rules.row_filter_within(principal, resource, relation, row)

    def columns(self, principal: Principal, resource: Resource) -> list[ColumnElement[Any]]:
        """What to select for :meth:`project`: the resource's columns and the policy's
        boolean rule columns (which rules hold for the row decides its field outcomes)."""
        return [*table_columns(MODELS[resource]), *self.rules.rule_columns(principal, resource)]

    def select(self, principal: Principal, resource: Resource) -> Select[Any]:
        """``SELECT`` of :meth:`columns` (plain rows, not ORM entities, which cost several
        times more to build), already restricted to the readable rows."""
        return select(*self.columns(principal, resource)).where(
            self.row_filter(principal, resource)
        )

    def readable_fields(self, principal: Principal, resource: Resource) -> frozenset[str]:
        return self.rules.readable_fields(principal, resource)

    def shown_fields(self, principal: Principal, resource: Resource) -> frozenset[str]:
        """The fields of ``resource`` the principal may get on some row (clear or masked);
        nothing else may appear in its schema. Empty without the read scope."""
        scope = REQUIRED_SCOPE.get((resource, Action.READ))
        if scope is None or not principal.has_scope(scope):
            return frozenset()
        return self.rules.shown_fields(principal, resource)

    def audience(self, principal: Principal) -> Hashable:
        """The cache key of the principal's per-audience schema: equal keys, equal
        schemas (the rules' key covers every rule that applies to the principal, so the
        fields shown or readable in clear and the writes granted, all of which shape the
        schema). Staff administrators (``hub:admin`` on an internal organization) see
        the full schema."""
        if self.is_admin(principal):
            return FULL_SCHEMA
        scopes = frozenset(s for s in principal.scopes if s in _SCHEMA_SCOPES)
        return (self.rules.audience(principal), scopes)

    def is_admin(self, principal: Principal) -> bool:
        """Whether the caller administers the hub (see :meth:`require_admin`)."""
        return principal.has_scope(Scope.HUB_ADMIN) and principal.organization_kind in (
            OrgKind.OPERATOR,
            OrgKind.DEPARTMENT,
        )

    def readable(self, principal: Principal, resource: Resource, fields: Iterable[str]) -> bool:
        """Whether every one of ``fields`` is readable in clear (for filters and ordering)."""
        return set(fields) <= self.readable_fields(principal, resource)

    def require_filters(self, principal: Principal, resource: Resource, given: object) -> None:
        """Refuse a filter (``given``: the resource's filter record, its attributes named as
        in the registry's ``filters``) on a field the caller does not read in clear on every
        row: which rows match would tell it the hidden or masked value (CHECKLIST: API3)."""
        filters = REGISTRY[resource].filters
        used = [name for name in filters if getattr(given, name, None) is not None]
        if not self.readable(principal, resource, [f for name in used for f in filters[name]]):
            raise BadInputError("this filter is not available")

    def outcomes(
        self, principal: Principal, resource: Resource
    ) -> tuple[tuple[ColumnElement[bool], ...], list[Mapping[str, FieldDecision]]] | None:
        """For plans that decide fields in SQL (compiled reads, DESIGN §11): the rule
        conditions a visible row's field outcomes depend on, and the outcome of every field
        for each combination of them (index ``i``: condition ``j`` holds when bit ``j`` of
        ``i`` is set), exactly as :meth:`project` decides them. ``None`` when the
        conditions are too many to enumerate (the caller projects row by row instead)."""
        columns = self.rules.rule_columns(principal, resource)
        if len(columns) > MAX_ENUMERATED_CONDITIONS:
            return None
        decide = self.rules.decider(principal, resource)
        labels = [column.name for column in columns]
        table = [
            decide({label: bool(bits >> j & 1) for j, label in enumerate(labels)})
            for bits in range(1 << len(labels))
        ]
        remote = self.rules.remote.get(resource)
        if remote:  # not columns: a plan reads them from their subgraph (schema.compiled.remote)
            table = [{k: v for k, v in row.items() if k not in remote} for row in table]
        return tuple(column.element for column in columns), table

    @staticmethod
    def disclosed(decisions: Mapping[str, FieldDecision]) -> frozenset[str]:
        """The fields a row decided so carries (clear or masked), ``id`` included: what
        :meth:`project_all` notes for the read audit."""
        return frozenset(
            name
            for name, decision in decisions.items()
            if name not in _CONDITION_ONLY
            and (
                decision.outcome is Outcome.VISIBLE
                or (decision.outcome is Outcome.MASKED and decision.mask is not None)
            )
        ) | {"id"}

    def project(self, principal: Principal, resource: Resource, row: Row[Any]) -> Record:
        """A row selected with :meth:`columns` as the principal may see it: visible fields
        in clear, masked fields masked, hidden fields absent; fields hidden on this row
        only are listed under :data:`WITHHELD`. The ``id`` of a visible row is always
        there (the row is visible, so its identity is)."""
        return self.project_all(principal, resource, (row,))[0]

    def project_all(
        self, principal: Principal, resource: Resource, rows: Iterable[Row[Any]]
    ) -> list[Record]:
        """:meth:`project` for many rows; every row emitted to a caller passes here, so
        this is also where a partner's read is noted for the audit log (DESIGN §5)."""
        rules = self.rules
        # None unless the request is a partner's with read auditing on: then the only
        # cost is noting ids and field names (hub.disclosures).
        reads = disclosures.recording(principal)
        shown = rules.shown_fields(principal, resource)
        secret = rules.pseudonym_secret
        partner = principal.organization_slug
        decide = rules.decider(principal, resource)
        remote = rules.remote.get(resource) or frozenset()
        out: list[Record] = []
        for row in rows:
            values = row._mapping
            record: dict[str, Any] = {"id": values["id"]}
            withheld: set[str] = set()
            fetched: dict[str, FieldDecision] | None = None
            for name, decision in decide(values).items():
                if name in _CONDITION_ONLY or name == "id":
                    continue
                if name in remote:
                    # Fetched later, and only if selected: noted for the audit then.
                    if decision.outcome is Outcome.VISIBLE or (
                        decision.outcome is Outcome.MASKED and decision.mask is not None
                    ):
                        fetched = fetched or {}
                        fetched[name] = decision
                    continue
                if decision.outcome is Outcome.VISIBLE:
                    record[name] = values[DERIVED.get(name, name)]
                elif decision.outcome is Outcome.MASKED and decision.mask is not None:
                    value = values[DERIVED.get(name, name)]
                    record[name] = apply_mask(decision.mask, value, secret=secret, partner=partner)
                elif name in shown:
                    withheld.add(name)
            if withheld:
                record[WITHHELD] = frozenset(withheld)
            if fetched:
                record[REMOTE] = MappingProxyType(fetched)
            out.append(MappingProxyType(record))
            if reads is not None:
                reads.note(resource, rules.version, values, record)
        return out

    async def read_back(
        self, session: AsyncSession, principal: Principal, resource: Resource, id: uuid.UUID
    ) -> Record:
        """A row just written, as the principal may see it now (mutation payloads go
        through the same scoped select as queries). A row the writer may not read shows
        its ``id`` only."""
        scope = REQUIRED_SCOPE.get((resource, Action.READ))
        if scope is None or not principal.has_scope(scope):
            return MappingProxyType({"id": id})  # a write-only token reads nothing back
        model: Any = MODELS[resource]
        statement = self.select(principal, resource).where(model.id == id)
        row = (await session.execute(statement)).first()
        return (
            MappingProxyType({"id": id}) if row is None else self.project(principal, resource, row)
        )

    async def check_written(
        self,
        session: AsyncSession,
        principal: Principal,
        resource: Resource,
        action: Action,
        row_id: uuid.UUID,
    ) -> None:
        """After a write (flushed, not committed): refuse it unless the row satisfies the
        ``check`` of a rule granting the write; the caller's transaction then rolls back,
        so nothing is written."""
        model: Any = MODELS[resource]
        statement = select(model.id).where(
            model.id == row_id, self.rules.write_check(principal, resource, action)
        )
        if (await session.execute(statement)).first() is None:
            raise ForbiddenError(
                f"the sharing policy does not let you leave this {resource} record like this"
            )

    def check_fields(
        self,
        principal: Principal,
        resource: Resource,
        action: Action,
        given: Mapping[str, str],
        root: str | None = "input",
    ) -> None:
        """Refuse the fields of a write the policy does not let the principal set (its
        ``create``/``write`` fields): ``given`` maps each field set to its input name;
        every refused one is a FORBIDDEN problem at ``[root, input name]`` (``[input
        name]`` without a root: an argument)."""
        allowed = self.rules.writable_fields(principal, resource, action)
        refused = sorted(name for name in given if name not in allowed)
        if refused:
            raise InvalidInputError(
                [
                    FieldProblem(
                        (given[name],) if root is None else (root, given[name]),
                        "the sharing policy does not let you set this field",
                        "FORBIDDEN",
                    )
                    for name in refused
                ]
            )

    def presets(self, principal: Principal, resource: Resource, action: Action) -> dict[str, Any]:
        """Column values the policy forces on a write (``presets``)."""
        return self.rules.presets(principal, resource, action)

    def writable_fields(
        self, principal: Principal, resource: Resource, action: Action
    ) -> frozenset[str]:
        """The fields ``action`` may set on ``resource`` (after :meth:`require`)."""
        return self.rules.writable_fields(principal, resource, action)

    def updatable_fields(self, principal: Principal, resource: Resource) -> frozenset[str]:
        """The fields an update by the principal may set now: none unless it may update
        ``resource`` at all (for writes that send the rest to review instead)."""
        if not self.may(principal, resource, Action.UPDATE):
            return frozenset()
        return self.rules.writable_fields(principal, resource, Action.UPDATE)

    def candidates(self, principal: Principal, resource: Resource) -> ColumnElement[bool]:
        """The rows a contribution by the principal may be matched to: those its
        organization may read. Unlike :meth:`row_filter` this needs no read scope: a
        match is contributed to (or queued for review), never shown, and matching only
        among these rows keeps a contribution from telling who else exists."""
        return self.rules.row_filter(principal, resource)

    async def target(
        self,
        session: AsyncSession,
        principal: Principal,
        resource: Resource,
        row_id: uuid.UUID,
        *,
        write: Resource,
        action: Action,
    ) -> Any:
        """The row of ``resource`` a write of ``write`` is about (the row updated, or the
        customer a new record is about), as an ORM entity, after checking the write.

        A row the principal cannot read gets the same NOT_FOUND as one that does not
        exist, before any rule about the write itself is revealed; then the scope and a
        rule granting ``action`` on ``write`` (FORBIDDEN).
        """
        if not principal.has_scope(REQUIRED_SCOPE[(resource, Action.READ)]):
            # Without read access the existence of the row must not be revealed either.
            self.require(principal, write, action)
        model: Any = MODELS[resource]
        statement = select(model).where(
            model.id == row_id, self.rules.row_filter(principal, resource)
        )
        found = (await session.execute(statement)).scalar_one_or_none()
        if found is None:
            raise NotFoundError(f"no such {resource.value.lower()}")
        self.require(principal, write, action)
        return found


access = Access(PolicyRules.deny_all())
"""The process-wide access module; :meth:`Access.rules` is replaced, never bypassed."""
