"""Interactions and purchases contributed about a customer."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from hub import changes
from hub.access import Action, Record, Resource, access
from hub.models import Interaction, Purchase
from hub.models._types import row_values, utcnow
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
    await access.check_customer_write(
        session, principal, Resource.INTERACTION, Action.CREATE, data.customer_id
    )
    given = {
        "customer_id": "customerId",
        "channel": "channel",
        "direction": "direction",
        "summary": "summary",
    }
    if data.occurred_at is not None:
        given["occurred_at"] = "occurredAt"
    access.check_fields(principal, Resource.INTERACTION, Action.CREATE, given)
    interaction = Interaction(
        customer_id=data.customer_id,
        organization_id=principal.organization_id,
        channel=channel or "",
        direction=direction or "",
        summary=summary or "",
        occurred_at=occurred_at,
    )
    for column, value in access.presets(principal, Resource.INTERACTION, Action.CREATE).items():
        setattr(interaction, column, value)
    session.add(interaction)
    await session.flush()
    await access.check_written(
        session, principal, Resource.INTERACTION, Action.CREATE, interaction.id
    )
    await changes.record_change(
        session,
        principal,
        "interaction.create",
        Resource.INTERACTION,
        interaction.id,
        {},
        row_values(interaction),
        operation=Operation.CREATE,
    )
    return await access.read_back(session, principal, Resource.INTERACTION, interaction.id)


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
    await access.check_customer_write(
        session, principal, Resource.PURCHASE, Action.CREATE, data.customer_id
    )
    given = {
        "customer_id": "customerId",
        "sku": "sku",
        "quantity": "quantity",
        "amount": "amount",
        "currency": "currency",
    }
    if data.purchased_at is not None:
        given["purchased_at"] = "purchasedAt"
    access.check_fields(principal, Resource.PURCHASE, Action.CREATE, given)
    purchase = Purchase(
        customer_id=data.customer_id,
        organization_id=principal.organization_id,
        sku=sku or "",
        quantity=quantity or 0,
        amount=amount if amount is not None else Decimal(0),
        currency=currency or "",
        purchased_at=purchased_at,
    )
    for column, value in access.presets(principal, Resource.PURCHASE, Action.CREATE).items():
        setattr(purchase, column, value)
    session.add(purchase)
    await session.flush()
    await access.check_written(session, principal, Resource.PURCHASE, Action.CREATE, purchase.id)
    await changes.record_change(
        session,
        principal,
        "purchase.create",
        Resource.PURCHASE,
        purchase.id,
        {},
        row_values(purchase),
        operation=Operation.CREATE,
    )
    return await access.read_back(session, principal, Resource.PURCHASE, purchase.id)
