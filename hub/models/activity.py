"""What happens around a customer: interactions, purchases and feedback."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from sqlalchemy import JSON, Column, Index, Numeric
from sqlmodel import Field, SQLModel

from hub.models._types import UTCDateTime, new_id, utcnow

CHANNELS = ("website", "phone", "email", "chat", "social", "in_person", "marketing")
DIRECTIONS = ("inbound", "outbound")
FEEDBACK_KINDS = ("complaint", "praise", "suggestion", "bug", "question")
FEEDBACK_STATUSES = ("new", "triaged", "actioned", "closed")
VISIBILITIES = ("internal", "partners")
# scale name -> inclusive (low, high)
SCALES = {"csat": (1, 5), "nps": (0, 10)}


class Interaction(SQLModel, table=True):
    __tablename__ = "interaction"
    __table_args__ = (Index("ix_interaction_customer_time", "customer_id", "occurred_at"),)

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    customer_id: uuid.UUID = Field(foreign_key="customer.id")
    organization_id: uuid.UUID = Field(foreign_key="organization.id", index=True)
    channel: str = Field(max_length=16)
    direction: str = Field(max_length=16)
    summary: str = Field(max_length=2000)
    occurred_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Purchase(SQLModel, table=True):
    __tablename__ = "purchase"
    __table_args__ = (Index("ix_purchase_customer_time", "customer_id", "purchased_at"),)

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    customer_id: uuid.UUID = Field(foreign_key="customer.id")
    organization_id: uuid.UUID = Field(foreign_key="organization.id", index=True)
    sku: str = Field(max_length=64)
    quantity: int
    amount: Decimal = Field(sa_column=Column(Numeric(14, 2), nullable=False))
    currency: str = Field(max_length=3)
    purchased_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Feedback(SQLModel, table=True):
    __tablename__ = "feedback"
    __table_args__ = (Index("ix_feedback_customer_time", "customer_id", "created_at"),)

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    customer_id: uuid.UUID = Field(foreign_key="customer.id")
    organization_id: uuid.UUID = Field(foreign_key="organization.id", index=True)
    channel: str = Field(max_length=16)
    kind: str = Field(max_length=16)
    scale: str | None = Field(default=None, max_length=8)
    score: int | None = None
    text: str = Field(max_length=5000)
    product: str | None = Field(default=None, max_length=120)
    tags: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    status: str = Field(default="new", max_length=16)
    visibility: str = Field(default="internal", max_length=16)
    external_ref: str | None = Field(default=None, max_length=200)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
