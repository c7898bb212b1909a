"""Types of the webhook API: public shapes built from hub rows, never the rows."""

from __future__ import annotations

import enum
from datetime import datetime

import strawberry

from hub import delivery
from hub.access import Resource
from hub.delivery.subscriptions import OPERATIONS
from hub.models.delivery import WebhookDelivery as DeliveryRow
from hub.models.delivery import WebhookSubscription as SubscriptionRow
from schema.common import PageInfo
from schema.ids import to_global_id

ID_TYPE = "WebhookSubscription"
"""The type name in a subscription's global id (not a ``Node``: not reachable by ``node``)."""

# The registry's resources and the outbox's operations, named once there.
_RESOURCES: type[enum.Enum] = enum.Enum(  # type: ignore[misc]
    "WebhookResource", {r.name: r.value for r in Resource}
)
_OPERATIONS: type[enum.Enum] = enum.Enum(  # type: ignore[misc]
    "WebhookOperation", {o.name: o.value for o in OPERATIONS}
)
WebhookResource = strawberry.enum(
    _RESOURCES, description="A resource whose changes a subscription receives."
)
WebhookOperation = strawberry.enum(
    _OPERATIONS, description="What happened to a record (deletions are not delivered)."
)


@strawberry.enum(description="active: sending; paused: queuing only; disabled: see the reason.")
class WebhookSubscriptionStatus(enum.Enum):
    ACTIVE = "active"
    PAUSED = "paused"
    DISABLED = "disabled"


@strawberry.enum(description="pending: queued or being retried; dead: every attempt failed.")
class WebhookDeliveryStatus(enum.Enum):
    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD = "dead"


@strawberry.type(description="One event sent (or to send) to a subscription's endpoint.")
class WebhookDelivery:
    webhook_id: str = strawberry.field(
        description="The webhook-id header: the same on every attempt (deduplicate on it)"
    )
    event_type: str = strawberry.field(description="e.g. Customer.update")
    status: WebhookDeliveryStatus
    attempts: int
    response_status: int | None = strawberry.field(description="The last answer's HTTP status")
    last_error: str | None
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    created_at: datetime

    @classmethod
    def from_row(cls, row: DeliveryRow) -> WebhookDelivery:
        pending = row.status == delivery.DeliveryStatus.PENDING
        return cls(
            webhook_id=row.message_id,
            event_type=f"{row.resource}.{row.operation}",
            status=WebhookDeliveryStatus(row.status),
            attempts=row.attempts,
            response_status=row.response_status,
            last_error=row.last_error,
            next_attempt_at=row.next_attempt_at if pending else None,
            delivered_at=row.delivered_at,
            created_at=row.created_at,
        )


@strawberry.type(description="A page of deliveries, newest first.")
class WebhookDeliveryPage:
    nodes: list[WebhookDelivery]
    page_info: PageInfo


@strawberry.type(description="An endpoint of your organization and what it receives.")
class WebhookSubscription:
    id: strawberry.ID
    url: str
    description: str
    resources: list[WebhookResource]  # type: ignore[valid-type]
    operations: list[WebhookOperation] = strawberry.field(  # type: ignore[valid-type]
        description="Empty: every operation"
    )
    status: WebhookSubscriptionStatus
    disabled_reason: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: SubscriptionRow) -> WebhookSubscription:
        return cls(
            id=strawberry.ID(to_global_id(ID_TYPE, row.id)),
            url=row.url,
            description=row.description,
            resources=[WebhookResource(r) for r in row.resources],
            operations=[WebhookOperation(o) for o in row.operations],
            status=WebhookSubscriptionStatus(row.status),
            disabled_reason=row.disabled_reason,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )
