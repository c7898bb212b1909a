"""Sharing-policy versions and the audit log."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Text
from sqlmodel import Field, SQLModel

from hub.models._types import UTCDateTime, new_id, utcnow


class PolicyVersion(SQLModel, table=True):
    """One published version of the sharing policy. Rows are only ever inserted: the
    newest ``number`` is in force, and a rollback inserts a copy of an older source."""

    __tablename__ = "policy_version"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    number: int = Field(unique=True, index=True)
    source: str = Field(sa_column=Column(Text, nullable=False))
    format: str = Field(default="yaml", max_length=8)
    sha256: str = Field(max_length=64)
    action: str = Field(max_length=16)  # install | publish | rollback
    restores: int | None = None  # the version a rollback copied
    author: str = Field(max_length=200)
    reason: str = Field(max_length=2000)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class AuditEvent(SQLModel, table=True):
    """One entry of the append-only, hash-chained audit log (see :mod:`hub.audit`).

    ``seq`` numbers the chain without gaps; ``hash`` is the SHA-256 of ``prev_hash`` and
    the event's canonical content, so changing, deleting or reordering any row breaks
    every later link."""

    __tablename__ = "audit_event"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    seq: int = Field(sa_column=Column(BigInteger, nullable=False, unique=True))
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    actor: str = Field(max_length=200)
    organization: str | None = Field(default=None, max_length=64, index=True)
    client: str | None = Field(default=None, max_length=200)
    action: str = Field(max_length=64, index=True)
    target: str = Field(max_length=200)
    details: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)


class Disclosure(SQLModel, table=True):
    """That one audited read disclosed something of a customer to an organization: an
    index over the ``read`` audit events (one row per event and customer), for
    data-subject access reports. The event itself says which records and fields."""

    __tablename__ = "disclosure"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    event_seq: int = Field(sa_column=Column(BigInteger, nullable=False, index=True))
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    customer_id: uuid.UUID = Field(index=True)
    organization: str = Field(max_length=64)
    client: str = Field(max_length=200)
    policy_version: int | None = None
