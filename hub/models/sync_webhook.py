"""The inbound webhook messages a connector stored (:mod:`hub.sync.inbound`): the key of
idempotence on ``webhook-id``. A sender retries a message with the same id (for days,
re-signed with a new timestamp each time); the row, written in the transaction that
stored the message's records, makes every retry an acknowledgement without a write. Rows
older than ``HUB_WEBHOOK_EVENT_RETENTION`` go (:func:`hub.sync.inbound.prune`), and their
runs after ``HUB_SYNC_RUN_RETENTION`` (:func:`hub.sync.runs.prune`)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlmodel import Field, SQLModel

from hub.models._types import UTCDateTime, utcnow


class SyncWebhookEvent(SQLModel, table=True):
    __tablename__ = "sync_webhook_event"

    connector_id: uuid.UUID = Field(foreign_key="sync_connector.id", primary_key=True)
    webhook_id: str = Field(max_length=200, primary_key=True)
    run_id: uuid.UUID = Field(foreign_key="sync_run.id", index=True)
    received_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
