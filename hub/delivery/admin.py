"""Outbound deliveries as administrators see them (the GraphQL admin, schema/sync_admin):
every subscription's deliveries, dropped ones included, and replays.

A subscriber sees its own deliveries through :func:`hub.delivery.deliveries_of`; this
module is the operator's view across subscribers. Every function starts with
:meth:`hub.access.Access.require_admin`; a replay is audited with the administrator as
the actor (``webhook.replay``), in the transaction that queues the delivery again.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from hub.access import access
from hub.delivery.deliveries import replay
from hub.delivery.sender import DeliveryStatus
from hub.errors import NotFoundError
from hub.models import Organization
from hub.models.delivery import WebhookDelivery, WebhookSubscription
from hub.pagination import Ordering, Page, fetch_page, page_size
from hub.principal import Principal

MAX_PAGE = 200

NEWEST_FIRST = Ordering(
    key="webhook_delivery:position:desc",
    columns=(WebhookDelivery.position, WebhookDelivery.id),  # type: ignore[arg-type]
    types=(int, uuid.UUID),
    descending=True,
)


@dataclass(frozen=True)
class DeliveryView:
    """One delivery with its subscription's organization and endpoint."""

    id: uuid.UUID
    webhook_id: str
    subscription_id: uuid.UUID
    organization: str
    url: str
    position: int
    resource: str
    operation: str
    record_id: uuid.UUID
    status: str
    attempts: int
    response_status: int | None
    last_error: str | None
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    delivered_at: datetime | None
    created_at: datetime

    @classmethod
    def of(cls, row: Any, organization: str, url: str) -> DeliveryView:
        pending = row.status == DeliveryStatus.PENDING
        return cls(
            id=row.id,
            webhook_id=row.message_id,
            subscription_id=row.subscription_id,
            organization=organization,
            url=url,
            position=row.position,
            resource=row.resource,
            operation=row.operation,
            record_id=row.record_id,
            status=row.status,
            attempts=row.attempts,
            response_status=row.response_status,
            last_error=row.last_error,
            next_attempt_at=row.next_attempt_at if pending else None,
            last_attempt_at=row.last_attempt_at,
            delivered_at=row.delivered_at,
            created_at=row.created_at,
        )


def _columns() -> list[Any]:
    return [
        *WebhookDelivery.__table__.columns,  # type: ignore[attr-defined]
        col(Organization.slug).label("organization_slug"),
        col(WebhookSubscription.url).label("subscription_url"),
    ]


def _joined(statement: Any) -> Any:
    return statement.join(
        WebhookSubscription, col(WebhookSubscription.id) == col(WebhookDelivery.subscription_id)
    ).join(Organization, col(Organization.id) == col(WebhookSubscription.organization_id))


async def deliveries_page(
    session: AsyncSession,
    principal: Principal,
    *,
    subscription_id: uuid.UUID | None = None,
    status: DeliveryStatus | None = None,
    first: int | None = None,
    after: str | None = None,
) -> Page[DeliveryView]:
    """Deliveries of every subscription (or one), newest outbox event first."""
    access.require_admin(principal)
    if (
        subscription_id is not None
        and await session.get(WebhookSubscription, subscription_id) is None
    ):
        raise NotFoundError("no such webhook subscription")
    statement = _joined(select(*_columns()))
    if subscription_id is not None:
        statement = statement.where(col(WebhookDelivery.subscription_id) == subscription_id)
    if status is not None:
        statement = statement.where(col(WebhookDelivery.status) == status)
    return await fetch_page(
        session,
        statement,
        NEWEST_FIRST,
        size=page_size(first, default=50, maximum=MAX_PAGE),
        after=after,
        project=lambda rows: [
            DeliveryView.of(r, r.organization_slug, r.subscription_url) for r in rows
        ],
    )


async def _view(session: AsyncSession, delivery_id: uuid.UUID) -> DeliveryView:
    found = (
        await session.execute(
            _joined(select(*_columns())).where(col(WebhookDelivery.id) == delivery_id)
        )
    ).first()
    if found is None:  # pragma: no cover — the caller just read it
        raise NotFoundError("no such delivery")
    return DeliveryView.of(found, found.organization_slug, found.subscription_url)


async def replay_delivery(
    session: AsyncSession, principal: Principal, reference: str
) -> DeliveryView:
    """Queue a delivery again (a dead letter, or any other) with the same ``webhook-id``:
    attempts reset, due now; audited with the administrator as the actor.
    ``reference``: its id or its ``webhook-id``."""
    access.require_admin(principal)
    try:
        found = await replay(session, reference, principal)
    except NotFoundError:
        raise NotFoundError("no such delivery") from None
    return await _view(session, found.id)


__all__ = ["DeliveryView", "deliveries_page", "replay_delivery"]
