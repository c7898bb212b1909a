"""Sharing-policy versions and the audit log."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Text
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
    """Who did what to the hub's configuration, when and why (append-only)."""

    __tablename__ = "audit_event"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    actor: str = Field(max_length=200)
    action: str = Field(max_length=64, index=True)
    target: str = Field(max_length=200)
    details: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
