"""Outbound webhook subscriptions and their deliveries (see :mod:`hub.delivery`)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, BigInteger, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from hub.models._sealed import EncryptedText
from hub.models._types import UTCDateTime, new_id, utcnow


class WebhookSubscription(SQLModel, table=True):
    """An organization's endpoint and what it wants to hear about.

    Deliveries act as the OAuth client ``client_id`` (its organization and scopes) under
    the sharing policy in force when each one is sent. ``secret`` is the Standard
    Webhooks signing secret (``whsec_...``), sealed at rest; after a rotation the
    previous one also signs until ``previous_secret_expires_at``."""

    __tablename__ = "webhook_subscription"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    organization_id: uuid.UUID = Field(foreign_key="organization.id", index=True)
    client_id: str = Field(max_length=64)
    # The data scopes of the token that created it: deliveries never hold more (nor
    # more than the client holds when they are sent).
    scopes: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    url: str = Field(max_length=2000)
    description: str = Field(default="", max_length=200)
    resources: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    # Empty: every operation (hub.outbox.Operation) but ``delete``.
    operations: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    secret: str = Field(sa_type=EncryptedText("webhook_subscription.secret"))
    previous_secret: str | None = Field(
        default=None, sa_type=EncryptedText("webhook_subscription.previous_secret")
    )
    previous_secret_expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    status: str = Field(default="active", max_length=16)  # hub.delivery.SubscriptionStatus
    disabled_reason: str | None = Field(default=None, max_length=500)
    created_by: str = Field(max_length=200)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class WebhookDelivery(SQLModel, table=True):
    """One outbox event for one subscription, until it is delivered, dead or dropped.

    It holds no customer data: the payload is projected afresh at each attempt, under
    the policy in force then. ``message_id`` (the ``webhook-id`` header) is the same on
    every attempt and replay, so receivers deduplicate on it."""

    __tablename__ = "webhook_delivery"
    __table_args__ = (
        UniqueConstraint("subscription_id", "position", name="uq_webhook_delivery_event"),
        # The sender's claim: due deliveries in order.
        Index("ix_webhook_delivery_due", "status", "next_attempt_at"),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    subscription_id: uuid.UUID = Field(foreign_key="webhook_subscription.id", index=True)
    message_id: str = Field(max_length=64, unique=True)
    position: int = Field(sa_column=Column(BigInteger, nullable=False))
    resource: str = Field(max_length=32)
    record_id: uuid.UUID
    operation: str = Field(max_length=16)
    fields: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    event_at: datetime = Field(sa_type=UTCDateTime)
    status: str = Field(default="pending", max_length=16)  # hub.delivery.DeliveryStatus
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_attempt_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    delivered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    response_status: int | None = None
    last_error: str | None = Field(default=None, max_length=500)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
