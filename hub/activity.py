"""Interactions and purchases contributed about a customer: validated here, written
through the write pipeline (:mod:`hub.access.pipeline`)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from hub.access import Action, Record, Resource, pipeline
from hub.access.pipeline import WriteRequest
from hub.models import Interaction, Purchase
from hub.models._types import utcnow
from hub.models.activity import CHANNELS, DIRECTIONS
from hub.outbox import Operation
from hub.principal import Principal
from hub.validation import Problems

# Contributions may be back-dated (an import of history) but not dated in the future.
_FUTURE_TOLERANCE = timedelta(minutes=5)


def contribution_time(p: Problems, field: str, value: datetime | None) -> datetime:
    """When a contributed fact happened: ``value`` (aware, not in the future) or now."""
    now = utcnow()
    if value is None:
        return now
    if value.tzinfo is None:
        p.add(field, "must carry a time zone offset", "INVALID")
        return now
    if value > now + _FUTURE_TOLERANCE:
        p.add(field, "must not be in the future", "OUT_OF_RANGE")
    return value


@dataclass
class InteractionInput:
    customer_id: uuid.UUID
    channel: str
    direction: str
    summary: str
    occurred_at: datetime | None = None


async def log_interaction(
    session: AsyncSession, principal: Principal, data: InteractionInput
) -> Record:
    p = Problems("input")
    channel = p.choice("channel", data.channel, CHANNELS, required=True)
    direction = p.choice("direction", data.direction, DIRECTIONS, required=True)
    summary = p.text("summary", data.summary, max_length=2000, required=True)
    occurred_at = contribution_time(p, "occurredAt", data.occurred_at)
    p.raise_any()
    given = {
        "customer_id": "customerId",
        "channel": "channel",
        "direction": "direction",
        "summary": "summary",
    }
    if data.occurred_at is not None:
        given["occurred_at"] = "occurredAt"
    written = await pipeline.create(
        session,
        principal,
        WriteRequest(
            Resource.INTERACTION,
            Action.CREATE,
            audit="interaction.create",
            operation=Operation.CREATE,
            about=data.customer_id,
            given=given,
        ),
        build=lambda: Interaction(
            customer_id=data.customer_id,
            organization_id=principal.organization_id,
            channel=channel or "",
            direction=direction or "",
            summary=summary or "",
            occurred_at=occurred_at,
        ),
    )
    return written.record


@dataclass
class PurchaseInput:
    customer_id: uuid.UUID
    sku: str
    quantity: int
    amount: Decimal
    currency: str
    purchased_at: datetime | None = None


async def report_purchase(
    session: AsyncSession, principal: Principal, data: PurchaseInput
) -> Record:
    p = Problems("input")
    sku = p.text("sku", data.sku, max_length=64, required=True)
    quantity = p.integer("quantity", data.quantity, low=1, high=1_000_000)
    amount = p.money("amount", data.amount, minimum=Decimal(0))
    currency = p.currency("currency", data.currency)
    purchased_at = contribution_time(p, "purchasedAt", data.purchased_at)
    p.raise_any()
    given = {
        "customer_id": "customerId",
        "sku": "sku",
        "quantity": "quantity",
        "amount": "amount",
        "currency": "currency",
    }
    if data.purchased_at is not None:
        given["purchased_at"] = "purchasedAt"
    written = await pipeline.create(
        session,
        principal,
        WriteRequest(
            Resource.PURCHASE,
            Action.CREATE,
            audit="purchase.create",
            operation=Operation.CREATE,
            about=data.customer_id,
            given=given,
        ),
        build=lambda: Purchase(
            customer_id=data.customer_id,
            organization_id=principal.organization_id,
            sku=sku or "",
            quantity=quantity or 0,
            amount=amount if amount is not None else Decimal(0),
            currency=currency or "",
            purchased_at=purchased_at,
        ),
    )
    return written.record
