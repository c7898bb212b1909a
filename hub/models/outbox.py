"""The transactional outbox: one row per committed change of a record (see :mod:`hub.outbox`)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, BigInteger, Column
from sqlmodel import Field, SQLModel

from hub.models._types import UTCDateTime, utcnow


class OutboxEvent(SQLModel, table=True):
    """A change of one record, written in the change's transaction. ``position`` numbers
    the events in commit order, strictly increasing (the primary key, so readers page on
    it); ``fields`` holds the *names* of the fields that changed, never their values."""

    __tablename__ = "outbox_event"

    position: int = Field(
        sa_column=Column(BigInteger, primary_key=True, autoincrement=False, nullable=False)
    )
    resource: str = Field(max_length=32)  # Customer, Feedback, ..., ProposedChange
    record_id: uuid.UUID
    operation: str = Field(max_length=16)  # hub.outbox.Operation
    fields: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    version: int | None = None  # the record's version after the change, if it has one
    actor: str = Field(max_length=200)  # as the audit log names the writer
    # Indexed for pruning, which looks for the newest event past the retention.
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)


class OutboxReader(SQLModel, table=True):
    """A registered consumer of the outbox and the position it has read up to: pruning
    never deletes an event the slowest reader has not read."""

    __tablename__ = "outbox_reader"

    name: str = Field(max_length=64, primary_key=True)
    position: int = Field(sa_column=Column(BigInteger, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
