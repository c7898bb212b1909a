"""Applying the rules: scoped selects, projections and write checks.

Every channel that emits customer data goes through these functions; nothing else in the
hub decides access at run time (DESIGN §5).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any

from sqlalchemy import ColumnElement, Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from hub.access.resources import MODELS, Action, Resource
from hub.access.rules import REQUIRED_SCOPE, BuiltinRules, RuleSet
from hub.errors import ForbiddenError, NotFoundError
from hub.models import Customer, OrgKind
from hub.models._types import table_columns
from hub.oauth.scopes import Scope
from hub.principal import Principal

Record = Mapping[str, Any]
"""A row projected for one principal: fields it may not read are absent."""


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

    def require_admin(self, principal: Principal) -> None:
        """Refuse with FORBIDDEN unless the caller administers the hub: the ``hub:admin``
        scope *and* an operator or department organization (the scope alone is not enough;
        a partner's client cannot be granted it either). One message for every refusal."""
        if not principal.has_scope(Scope.HUB_ADMIN) or principal.organization_kind not in (
            OrgKind.OPERATOR,
            OrgKind.DEPARTMENT,
        ):
            raise ForbiddenError("this operation is for hub administrators")

    def row_filter(self, principal: Principal, resource: Resource) -> ColumnElement[bool]:
        """The SQL condition for the rows the principal may read (after the scope check)."""
        self.require(principal, resource, Action.READ)
        return self.rules.row_filter(principal, resource)

    def select(self, principal: Principal, resource: Resource) -> Select[Any]:
        """``SELECT`` of the resource's columns (plain rows, not ORM entities, which cost
        several times more to build), already restricted to the readable rows."""
        columns = table_columns(MODELS[resource])
        return select(*columns).where(self.row_filter(principal, resource))

    def readable_fields(self, principal: Principal, resource: Resource) -> frozenset[str]:
        return self.rules.readable_fields(principal, resource)

    def readable(self, principal: Principal, resource: Resource, fields: Iterable[str]) -> bool:
        """Whether every one of ``fields`` is readable in clear (for filters and ordering)."""
        return set(fields) <= self.readable_fields(principal, resource)

    def project(self, principal: Principal, resource: Resource, row: Any) -> Record:
        """The row as the principal may see it: unreadable fields are simply absent."""
        readable = self.readable_fields(principal, resource)
        return MappingProxyType({name: getattr(row, name) for name in readable})

    def project_all(
        self, principal: Principal, resource: Resource, rows: Iterable[Any]
    ) -> list[Record]:
        readable = self.readable_fields(principal, resource)
        return [MappingProxyType({name: getattr(row, name) for name in readable}) for row in rows]

    async def check_customer_write(
        self,
        session: AsyncSession,
        principal: Principal,
        resource: Resource,
        action: Action,
        customer_id: uuid.UUID,
    ) -> Customer:
        """Check a write about one customer; returns the customer row as read now.

        A customer the principal cannot read gets the same NOT_FOUND as one that does not
        exist, before any rule about the write itself is revealed.
        """
        statement = (
            select(Customer)
            .where(Customer.id == customer_id)  # type: ignore[arg-type]
            .where(self.rules.row_filter(principal, Resource.CUSTOMER))
        )
        if not principal.has_scope(REQUIRED_SCOPE[(Resource.CUSTOMER, Action.READ)]):
            # Without read access the existence of the customer must not be revealed either.
            self.require(principal, resource, action)
        customer = (await session.execute(statement)).scalar_one_or_none()
        if customer is None:
            raise NotFoundError("no such customer")
        self.require(principal, resource, action)
        return customer


access = Access(BuiltinRules())
"""The process-wide access module; :meth:`Access.rules` is replaced, never bypassed."""
