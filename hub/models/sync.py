"""The inbound sync runtime's state (DESIGN §3, §8; :mod:`hub.sync`): connectors, their
checkpoints, runs, dead letters, the records they wrote and the lease that keeps a
connector running in one place at a time."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from hub.models._sealed import EncryptedText
from hub.models._types import UTCDateTime, new_id, utcnow

RUN_STATUSES = ("running", "succeeded", "failed", "interrupted")


class SyncConnector(SQLModel, table=True):
    """One configured inbound connector: which kind of system it reads (``kind``, a
    name in :data:`connectors.REGISTRY`), which resource it writes, and as which
    organization (its policy's write rules, presets and source precedence apply)."""

    __tablename__ = "sync_connector"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    name: str = Field(max_length=64, unique=True, index=True)
    kind: str = Field(max_length=16)
    resource: str = Field(max_length=32)
    organization_id: uuid.UUID = Field(foreign_key="organization.id", index=True)
    config: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    # None: the source's fields are the resource's input names (hub.sync.targets).
    mapping: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    schedule_seconds: int | None = None  # run every so many seconds (`hub sync worker`)
    enabled: bool = True
    # Made by `hub import` for one file: its checkpoint only resumes an interrupted run.
    adhoc: bool = False
    # JSON of the credentials (passwords, tokens), sealed like customers' email.
    credentials: str | None = Field(
        default=None, sa_type=EncryptedText("sync_connector.credentials")
    )
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class SyncCheckpoint(SQLModel, table=True):
    """Where a connector resumes: the cursor after the last record stored, written in
    the same transaction as the batch that stored it."""

    __tablename__ = "sync_checkpoint"

    connector_id: uuid.UUID = Field(foreign_key="sync_connector.id", primary_key=True)
    cursor: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    run_id: uuid.UUID | None = None
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class SyncRun(SQLModel, table=True):
    """One run of a connector; its counts are committed with each batch, so a run that
    was killed still says how far it got (its status stays ``running`` until the next
    run of the connector marks it ``interrupted``)."""

    __tablename__ = "sync_run"
    __table_args__ = (Index("ix_sync_run_connector_time", "connector_id", "started_at"),)

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    connector_id: uuid.UUID = Field(foreign_key="sync_connector.id")
    status: str = Field(default="running", max_length=16)
    holder: str = Field(max_length=200)
    started_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    duration_ms: int | None = None
    read: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    queued: int = 0
    dead_lettered: int = 0
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class SyncDeadLetter(SQLModel, table=True):
    """A record the connector could not store: why, where in the source, and the raw
    record (sealed: it may hold contact details). One per source position: a later run
    meeting the same bad record updates it; storing it after a fix resolves it."""

    __tablename__ = "sync_dead_letter"
    __table_args__ = (UniqueConstraint("connector_id", "position"),)

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    connector_id: uuid.UUID = Field(foreign_key="sync_connector.id")
    run_id: uuid.UUID = Field(foreign_key="sync_run.id", index=True)
    position: str = Field(max_length=300)
    cursor: str = Field(sa_column=Column(Text, nullable=False))
    reason: str = Field(max_length=2000)
    record: str = Field(sa_type=EncryptedText("sync_dead_letter.record"))
    attempts: int = 1
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    resolved_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class SyncRecord(SQLModel, table=True):
    """Which hub record a connector's external id became, and the digest of the mapped
    values last stored: the key of idempotent upserts (an equal digest is unchanged)."""

    __tablename__ = "sync_record"

    connector_id: uuid.UUID = Field(foreign_key="sync_connector.id", primary_key=True)
    external_id: str = Field(max_length=200, primary_key=True)
    record_id: uuid.UUID
    digest: str = Field(max_length=64)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class SyncLease(SQLModel, table=True):
    """Who runs a connector now, until when: taken atomically, renewed with every batch
    (the renewal is also the fence: a holder whose lease another took writes nothing)."""

    __tablename__ = "sync_lease"

    connector_id: uuid.UUID = Field(foreign_key="sync_connector.id", primary_key=True)
    holder: str = Field(max_length=200)
    acquired_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
