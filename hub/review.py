"""The review queue of proposed changes (administrators): list, approve, reject.

Approving applies the proposed value to the customer as the proposer's contribution
(its provenance names the proposer, and who approved it), bumping the version like any
update; rejecting only records the decision. Both are audited, and a change that is no
longer pending cannot be decided again (CONFLICT)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from hub import audit, changes, provenance
from hub.access import access
from hub.customers import derived_columns, snapshot
from hub.errors import BadInputError, ConflictError, NotFoundError
from hub.models import Customer, Organization, ProposedChange
from hub.models._types import utcnow
from hub.outbox import Operation
from hub.principal import Principal
from hub.proposals import decode_value


@dataclass(frozen=True)
class ProposalView:
    """A proposed change as administrators see it (values in clear: they see all)."""

    id: uuid.UUID
    customer_id: uuid.UUID
    field: str
    value: Any
    current_value: Any
    organization: str
    client: str
    source: str | None
    base_version: int
    status: str
    created_at: datetime
    decided_at: datetime | None
    decided_by: str | None
    decision_reason: str | None


def _view(row: ProposedChange, customer: Customer | None) -> ProposalView:
    return ProposalView(
        id=row.id,
        customer_id=row.customer_id,
        field=row.field,
        value=decode_value(row.field, row.value),
        current_value=None if customer is None else getattr(customer, row.field, None),
        organization=row.organization,
        client=row.client,
        source=row.source,
        base_version=row.base_version,
        status=row.status,
        created_at=row.created_at,
        decided_at=row.decided_at,
        decided_by=row.decided_by,
        decision_reason=row.decision_reason,
    )


async def list_proposals(
    session: AsyncSession,
    principal: Principal,
    *,
    status: str | None = "pending",
    customer_id: uuid.UUID | None = None,
    limit: int = 50,
) -> list[ProposalView]:
    """Proposed changes, oldest first (the queue order)."""
    access.require_admin(principal)
    if not 1 <= limit <= 500:
        raise BadInputError("first must be between 1 and 500")
    statement = select(ProposedChange).order_by(
        col(ProposedChange.created_at), col(ProposedChange.id)
    )
    if status is not None:
        statement = statement.where(col(ProposedChange.status) == status)
    if customer_id is not None:
        statement = statement.where(col(ProposedChange.customer_id) == customer_id)
    rows = (await session.execute(statement.limit(limit))).scalars().all()
    ids = {row.customer_id for row in rows}
    customers = {
        c.id: c
        for c in (await session.execute(select(Customer).where(col(Customer.id).in_(ids))))
        .scalars()
        .all()
    }
    return [_view(row, customers.get(row.customer_id)) for row in rows]


async def _pending(session: AsyncSession, change_id: uuid.UUID) -> tuple[ProposedChange, Customer]:
    row = (
        await session.execute(
            select(ProposedChange).where(col(ProposedChange.id) == change_id).with_for_update()
        )
    ).scalar_one_or_none()
    if row is None:
        raise NotFoundError("no such proposed change")
    if row.status != "pending":
        raise ConflictError(f"this change is already {row.status}")
    customer = (
        await session.execute(
            select(Customer).where(col(Customer.id) == row.customer_id).with_for_update()
        )
    ).scalar_one()
    return row, customer


def _decide(row: ProposedChange, principal: Principal, status: str, reason: str | None) -> None:
    row.status = status
    row.decided_at = utcnow()
    row.decided_by = audit.actor_of(principal)
    row.decision_reason = (reason or "").strip()[:2000] or None


async def approve_change(
    session: AsyncSession, principal: Principal, change_id: uuid.UUID, reason: str | None = None
) -> ProposalView:
    access.require_admin(principal)
    row, customer = await _pending(session, change_id)
    before = snapshot(customer)
    value = decode_value(row.field, row.value)
    now = utcnow()
    values: dict[str, Any] = {row.field: value}
    stamp = provenance.stamp_for(
        row.organization,
        await _kind_of(session, row),
        row.client,
        now,
        source=row.source,
        approved_by=audit.actor_of(principal),
    )
    await session.execute(
        update(Customer)
        .where(col(Customer.id) == customer.id)
        .values(
            **values,
            **derived_columns(values, now),
            provenance={**customer.provenance, row.field: stamp},
            updated_at=now,
            version=Customer.version + 1,
        )
        .execution_options(synchronize_session=False)
    )
    _decide(row, principal, "approved", reason)
    await session.flush()
    await session.refresh(customer)
    await changes.record_change(
        session,
        principal,
        "customer.proposal.approve",
        "Customer",
        customer.id,
        before,
        snapshot(customer),
        operation=Operation.APPROVE,
        proposal=row.id,
        proposer=row.organization,
    )
    await changes.publish(
        session,
        principal,
        changes.decided([row.id], Operation.APPROVE, reason=row.decision_reason is not None),
    )
    return _view(row, customer)


async def _kind_of(session: AsyncSession, row: ProposedChange) -> str | None:
    kind = (
        await session.execute(
            select(col(Organization.kind)).where(col(Organization.id) == row.organization_id)
        )
    ).scalar_one_or_none()
    return None if kind is None else str(getattr(kind, "value", kind))


async def reject_change(
    session: AsyncSession, principal: Principal, change_id: uuid.UUID, reason: str | None = None
) -> ProposalView:
    access.require_admin(principal)
    row, customer = await _pending(session, change_id)
    _decide(row, principal, "rejected", reason)
    await session.flush()
    details = {"proposal": row.id, "field": row.field, "proposer": row.organization}
    await audit.record(
        session,
        principal,
        "customer.proposal.reject",
        f"Customer:{customer.id}",
        {**details, "reason": reason},
    )
    await changes.publish(
        session,
        principal,
        changes.decided([row.id], Operation.REJECT, reason=row.decision_reason is not None),
    )
    return _view(row, customer)
