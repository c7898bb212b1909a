"""Listing deliveries and replaying them.

Administrators (the ``hub deliveries`` CLI) see every delivery; a subscriber sees its
own organization's (:func:`deliveries_of`), without the dropped ones (an event about a
record it could no longer see when it was due leaves no trace it could read) and
without record ids.

Replays: a dead letter (or any delivery) goes back to ``pending`` with its attempts
reset and is sent with the same ``webhook-id`` (:func:`replay`, :func:`replay_dead`);
:func:`replay_from` moves a subscription's outbox reader back to a position, so every
event after it still kept by the outbox is queued again (under the policy in force now)
and the deliveries already made for them are sent again.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from hub import audit, outbox
from hub.delivery.sender import DeliveryStatus
from hub.delivery.subscriptions import SubscriptionStatus, owned, reader_name
from hub.errors import BadInputError, NotFoundError
from hub.models._types import utcnow
from hub.models.delivery import WebhookDelivery, WebhookSubscription
from hub.principal import Principal

MAX_PAGE = 200


@dataclass(frozen=True)
class DeliveryPage:
    rows: list[WebhookDelivery]
    has_next: bool


async def list_deliveries(
    session: AsyncSession,
    *,
    subscription_id: uuid.UUID | None = None,
    status: DeliveryStatus | None = None,
    limit: int = 50,
) -> list[WebhookDelivery]:
    """The newest deliveries first (administrators)."""
    if not 1 <= limit <= 10_000:
        raise BadInputError("limit must be between 1 and 10000")
    statement = select(WebhookDelivery)
    if subscription_id is not None:
        statement = statement.where(col(WebhookDelivery.subscription_id) == subscription_id)
    if status is not None:
        statement = statement.where(col(WebhookDelivery.status) == status)
    statement = statement.order_by(
        col(WebhookDelivery.position).desc(), col(WebhookDelivery.id)
    ).limit(limit)
    return list((await session.execute(statement)).scalars())


async def deliveries_of(
    session: AsyncSession,
    principal: Principal,
    subscription_id: uuid.UUID,
    *,
    status: DeliveryStatus | None = None,
    first: int = 50,
    before: int | None = None,
) -> DeliveryPage:
    """A page of the caller's subscription's deliveries, newest first (``before``: the
    outbox position of the last one of the previous page). NOT_FOUND for a subscription
    of another organization, as for one that does not exist."""
    if not 1 <= first <= MAX_PAGE:
        raise BadInputError(f"first must be between 1 and {MAX_PAGE}")
    if status is DeliveryStatus.DROPPED:
        raise BadInputError("no such delivery status")
    await owned(session, principal, subscription_id)
    conditions: list[ColumnElement[bool]] = [
        col(WebhookDelivery.subscription_id) == subscription_id,
        col(WebhookDelivery.status) != DeliveryStatus.DROPPED,
    ]
    if status is not None:
        conditions.append(col(WebhookDelivery.status) == status)
    if before is not None:
        conditions.append(col(WebhookDelivery.position) < before)
    rows = list(
        (
            await session.execute(
                select(WebhookDelivery)
                .where(and_(*conditions))
                .order_by(col(WebhookDelivery.position).desc())
                .limit(first + 1)
            )
        ).scalars()
    )
    return DeliveryPage(rows[:first], len(rows) > first)


async def get_delivery(session: AsyncSession, reference: str) -> WebhookDelivery:
    """A delivery by its id or its ``webhook-id`` (administrators)."""
    condition = col(WebhookDelivery.message_id) == reference
    with contextlib.suppress(ValueError):  # not a UUID: the webhook-id only
        condition = or_(condition, col(WebhookDelivery.id) == uuid.UUID(reference))
    found = (await session.execute(select(WebhookDelivery).where(condition))).scalar_one_or_none()
    if found is None:
        raise NotFoundError(f"no delivery has the id or webhook-id {reference!r}")
    return found


def _reset(now: datetime) -> dict[str, object]:
    return {
        "status": DeliveryStatus.PENDING,
        "attempts": 0,
        "next_attempt_at": now,
        "last_error": None,
    }


async def replay(
    session: AsyncSession, reference: str, principal: Principal | None = None
) -> WebhookDelivery:
    """Send one delivery again (a dead letter, or any other), same ``webhook-id``;
    audited as ``principal``'s (an administrator's, from GraphQL) or the shell user's."""
    found = await get_delivery(session, reference)
    await session.execute(
        update(WebhookDelivery)
        .where(col(WebhookDelivery.id) == found.id)
        .values(**_reset(utcnow()))
    )
    action, target = "webhook.replay", f"webhook_delivery:{found.id}"
    details = {"from": found.status}
    entry = (
        audit.shell_entry(action, target, details)
        if principal is None
        else audit.entry_for(principal, action, target, details)
    )
    await audit.append(session, entry)
    await session.refresh(found)
    return found


async def replay_dead(session: AsyncSession, subscription_id: uuid.UUID | None = None) -> int:
    """Send every dead letter again (of one subscription, or all); returns how many."""
    condition = col(WebhookDelivery.status) == DeliveryStatus.DEAD
    if subscription_id is not None:
        condition = and_(condition, col(WebhookDelivery.subscription_id) == subscription_id)
    ids = list((await session.execute(select(col(WebhookDelivery.id)).where(condition))).scalars())
    if ids:
        await session.execute(
            update(WebhookDelivery)
            .where(col(WebhookDelivery.id).in_(ids))
            .values(**_reset(utcnow()))
        )
        target = f"webhook_subscription:{subscription_id}" if subscription_id else "webhooks"
        await audit.append(
            session, audit.shell_entry("webhook.replay_dead", target, {"deliveries": len(ids)})
        )
    return len(ids)


async def replay_from(session: AsyncSession, subscription_id: uuid.UUID, position: int) -> int:
    """Queue again every kept outbox event after ``position`` for the subscription, and
    send again the deliveries already made for them; returns deliveries reset. The
    subscription must not be disabled (resume it first)."""
    if position < 0:
        raise BadInputError("a position is 0 or more")
    row = await session.get(WebhookSubscription, subscription_id, with_for_update=True)
    if row is None:
        raise NotFoundError(f"no webhook subscription has the id {subscription_id}")
    if row.status == SubscriptionStatus.DISABLED:
        raise BadInputError("the subscription is disabled: resume it before replaying")
    name = reader_name(row.id)
    await outbox.drop_reader(session, name)
    await outbox.register_reader(session, name, position)
    result = await session.execute(
        update(WebhookDelivery)
        .where(
            col(WebhookDelivery.subscription_id) == row.id,
            col(WebhookDelivery.position) > position,
        )
        .values(**_reset(utcnow()))
    )
    await audit.append(
        session,
        audit.shell_entry(
            "webhook.replay_from", f"webhook_subscription:{row.id}", {"position": position}
        ),
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def subscription_ids(session: AsyncSession, references: Sequence[str]) -> list[uuid.UUID]:
    """Subscription ids from their UUIDs (administrators), refusing unknown ones."""
    found: list[uuid.UUID] = []
    for reference in references:
        try:
            value = uuid.UUID(reference)
        except ValueError:
            raise BadInputError(f"{reference!r} is not a subscription id (a UUID)") from None
        if await session.get(WebhookSubscription, value) is None:
            raise NotFoundError(f"no webhook subscription has the id {reference}")
        found.append(value)
    return found
