"""Proposed changes: contributions that did not overwrite a customer field because a
higher-precedence source set it (:mod:`hub.provenance`). They wait in a review queue;
:mod:`hub.review` approves (applies) or rejects them."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from hub import audit, changes
from hub.models import Customer, ProposedChange
from hub.outbox import Operation
from hub.principal import Principal


@dataclass(frozen=True)
class Proposal:
    """A proposed change queued by a write: the row's id, the field, and its status
    (``pending`` when made)."""

    id: uuid.UUID
    field: str
    status: str


def encode_value(value: Any) -> str:
    """The JSON stored (encrypted) for a proposed value; decimals keep their digits."""
    return json.dumps(value, default=str)


def decode_value(name: str, raw: str) -> Any:
    value = json.loads(raw)
    if name == "lifetime_value" and value is not None:
        return Decimal(value)
    return value


async def propose(
    session: AsyncSession,
    principal: Principal,
    customer: Customer,
    values: Mapping[str, Any],
    *,
    source: str | None,
    at: datetime,
    base_version: int,
) -> list[Proposal]:
    """Queue ``values`` for review. A newer proposal from the same organization for the
    same field supersedes its pending one (the queue holds each source's latest word)."""
    if not values:
        return []
    superseded = await session.execute(
        update(ProposedChange)
        .where(
            col(ProposedChange.customer_id) == customer.id,
            col(ProposedChange.organization_id) == principal.organization_id,
            col(ProposedChange.field).in_(list(values)),
            col(ProposedChange.status) == "pending",
        )
        .values(status="superseded", decided_at=at, decided_by="superseded by a newer proposal")
        .returning(col(ProposedChange.id))
    )
    superseded_ids = list(superseded.scalars())
    rows = [
        ProposedChange(
            customer_id=customer.id,
            field=name,
            value=encode_value(value),
            organization_id=principal.organization_id,
            organization=principal.organization_slug,
            client=principal.client_id,
            source=source,
            base_version=base_version,
            created_at=at,
        )
        for name, value in sorted(values.items())
    ]
    session.add_all(rows)
    await session.flush()
    before = {name: getattr(customer, name) for name in values}
    await audit.record_write(
        session,
        principal,
        "customer.propose",
        "Customer",
        customer.id,
        before,
        dict(values),
        proposals=[str(row.id) for row in rows],
    )
    # The customer is unchanged: the events are the proposals' (hub.changes).
    await changes.publish(
        session,
        principal,
        [*changes.decided(superseded_ids, Operation.STATUS), *changes.proposed(rows)],
    )
    return [Proposal(id=row.id, field=row.field, status=row.status) for row in rows]
