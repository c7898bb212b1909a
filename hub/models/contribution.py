"""Contributions: idempotency keys of create-type writes and the review queue of
lower-precedence changes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from hub.models._sealed import EncryptedText
from hub.models._types import UTCDateTime, new_id, utcnow

PROPOSAL_STATUSES = ("pending", "approved", "rejected", "superseded")


class IdempotencyKey(SQLModel, table=True):
    """The first outcome of a create-type write under a caller's key, kept 24 hours:
    a retry with the same key and input replays it; other input is refused."""

    __tablename__ = "idempotency_key"
    __table_args__ = (UniqueConstraint("owner", "key"),)

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    owner: str = Field(max_length=200)  # the client id: keys are per caller
    key: str = Field(max_length=200)
    operation: str = Field(max_length=64)
    request_hash: str = Field(max_length=64)
    resource: str = Field(max_length=32)
    result_id: uuid.UUID | None = None
    response: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)


class ProposedChange(SQLModel, table=True):
    """A contribution to a customer field that a higher-precedence source had set: it
    waits for an administrator to approve (apply) or reject it."""

    __tablename__ = "proposed_change"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    customer_id: uuid.UUID = Field(foreign_key="customer.id", index=True)
    field: str = Field(max_length=64)
    # JSON of the proposed value, encrypted like the sensitive fields it may carry.
    value: str = Field(sa_type=EncryptedText("proposed_change.value"))
    organization_id: uuid.UUID = Field(foreign_key="organization.id", index=True)
    organization: str = Field(max_length=64)
    client: str = Field(max_length=200)
    source: str | None = Field(default=None, max_length=120)  # connector, if any
    base_version: int
    status: str = Field(default="pending", max_length=16, index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    decided_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    decided_by: str | None = Field(default=None, max_length=200)
    decision_reason: str | None = Field(default=None, max_length=2000)
