"""What "view as" shows: what one organization receives of one record, field by field,
with the outcome and the rule or guardrail that decided it.

Nothing here decides access. The outcome and the deciding rule come from
:func:`hub.sharing.explain_access` (the policy evaluator, the oracle the compiled SQL is
tested against); the values come from the access module itself (the organization's scoped
select and projection, so a masked value is exactly the masked value it would get). A
field the organization's schema has but that is hidden on this row is *withheld* (the API
answers ``null`` for it); one its schema lacks is *hidden*.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from hub import sharing
from hub.access import access
from hub.access.registry import REGISTRY
from hub.access.resources import MODELS, Resource
from hub.errors import ForbiddenError
from hub.models import Customer, Organization

RESOURCES = tuple(
    r
    for r in Resource
    if REGISTRY[r].node and (r is Resource.CUSTOMER or hasattr(MODELS[r], "customer_id"))
)
"""What can be viewed as: customers and the records about one that are nodes of the API
(feedback, cases, interactions, purchases; read from the registry)."""


@dataclass(frozen=True)
class FieldView:
    name: str
    outcome: str  # visible, masked, hidden, withheld
    value: Any
    mask: str | None
    rule: str | None


@dataclass(frozen=True)
class ViewAs:
    organization: str
    resource: str
    record_id: uuid.UUID
    version: int
    row_visible: bool
    row_rules: list[str]
    fields: list[FieldView]


async def view_as(
    session: AsyncSession, organization: str, resource: Resource, record_id: uuid.UUID
) -> ViewAs:
    """Raises :class:`hub.errors.NotFoundError` for an unknown organization or record."""
    explained = await sharing.explain_access(session, organization, resource, record_id)
    org = (
        await session.execute(select(Organization).where(col(Organization.slug) == organization))
    ).scalar_one()
    principal = sharing.principal_for(org)
    record: Any = None
    shown: frozenset[str] = frozenset()
    if explained["row"]["visible"]:
        model: Any = MODELS[resource]
        try:
            statement = access.select(principal, resource).where(model.id == record_id)
            row = (await session.execute(statement)).first()
            shown = access.shown_fields(principal, resource)
        except ForbiddenError:
            row = None
        record = None if row is None else access.project(principal, resource, row)
    fields: list[FieldView] = []
    for name, decision in explained["fields"].items():
        outcome = decision["outcome"]
        value = None
        if outcome in ("visible", "masked"):
            value = None if record is None else record.get(name)
        elif explained["row"]["visible"] and name in shown:
            outcome = "withheld"
        fields.append(FieldView(name, outcome, value, decision["mask"], decision["rule"]))
    return ViewAs(
        organization=org.slug,
        resource=resource.value,
        record_id=record_id,
        version=int(explained["version"]),
        row_visible=bool(explained["row"]["visible"]),
        row_rules=list(explained["row"]["rules"]),
        fields=fields,
    )


async def record_choices(
    session: AsyncSession, resource: Resource, search: str = "", limit: int = 200
) -> list[tuple[str, str]]:
    """(id, label) of records to pick from: customers by name, others by their customer's
    name; ``search`` narrows to customers whose name contains it."""
    pattern = f"%{search.strip()}%"
    if resource is Resource.CUSTOMER:
        statement = select(col(Customer.id), col(Customer.name))
    else:
        model: Any = MODELS[resource]
        statement = select(model.id, col(Customer.name)).join(
            Customer, col(Customer.id) == model.customer_id
        )
    if search.strip():
        statement = statement.where(col(Customer.name).ilike(pattern))
    rows = await session.execute(statement.order_by(col(Customer.name)).limit(limit))
    if resource is Resource.CUSTOMER:
        return [(str(i), name or str(i)) for i, name in rows.all()]
    return [(str(i), f"{name} · {str(i)[:8]}") for i, name in rows.all()]
