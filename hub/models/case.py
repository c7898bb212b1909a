"""Support cases (service automation, DESIGN §3): a ticket about a customer and a product,
assigned to a department or a supplier, with a thread of notes."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from hub.models._types import UTCDateTime, new_id, utcnow

CASE_STATUSES = ("open", "waiting_on_partner", "resolved", "closed")
CASE_PRIORITIES = ("low", "normal", "high", "urgent")


class Case(SQLModel, table=True):
    """``organization_id`` is the organization the case is assigned to (as a partner
    assignment's is the partner), so ``organization`` in a policy condition is the
    assignee; ``opened_by_id`` is the organization that opened it."""

    __tablename__ = "support_case"
    __table_args__ = (Index("ix_support_case_customer_time", "customer_id", "created_at"),)

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    customer_id: uuid.UUID = Field(foreign_key="customer.id")
    organization_id: uuid.UUID = Field(foreign_key="organization.id", index=True)
    opened_by_id: uuid.UUID = Field(foreign_key="organization.id")
    feedback_id: uuid.UUID | None = Field(default=None, foreign_key="feedback.id")
    product: str | None = Field(default=None, max_length=120)
    subject: str = Field(max_length=200)
    description: str = Field(max_length=5000)
    priority: str = Field(default="normal", max_length=16)
    status: str = Field(default="open", max_length=24)
    version: int = 1
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class CaseNote(SQLModel, table=True):
    """One note of a case's thread; ``organization_id`` is its author's organization.
    ``customer_id`` is its case's (set from the case, never from input): what a note
    discloses is about that customer, as the read audit records it per customer."""

    __tablename__ = "case_note"
    __table_args__ = (Index("ix_case_note_case_time", "case_id", "created_at"),)

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    case_id: uuid.UUID = Field(foreign_key="support_case.id")
    customer_id: uuid.UUID = Field(foreign_key="customer.id", index=True)
    organization_id: uuid.UUID = Field(foreign_key="organization.id")
    text: str = Field(max_length=5000)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
