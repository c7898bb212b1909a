"""Inbound webhooks: one verified message (``connectors.webhook``) stored through the
sync runtime, like a batch of any other source's records.

A message is stored in **one transaction**: a run is recorded for it (``sync_run``,
holder ``webhook <id>``, with its counts), its records are mapped, validated, matched
and written through the write pipeline as the connector's organization (the runner's
own steps: :meth:`hub.sync.runner.Runner._prepare` and ``_store``, so the same digests,
links and dead letters, the position being ``webhook <id>``), and its ``webhook-id`` is
remembered (``sync_webhook_event``). A retry of the message (same ``webhook-id``) finds
it and is acknowledged without a write; two deliveries of one id at once meet on the
table's primary key, and the loser, run again, finds the winner's row. Nothing is
half-written: the message is stored whole or not at all (and the sender retries).

No lease is taken: messages carry no cursor to keep in order, and the records'
idempotent upserts (by external id and digest) make concurrent messages safe.

The ids are remembered for ``HUB_WEBHOOK_EVENT_RETENTION`` seconds (default 7 days):
:func:`prune`, on the runtime's prune tick, deletes older ones.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

import connectors
from connectors.webhook import MAX_BYTES, WebhookEvent, WebhookRejectedError, WebhookSource
from hub.db import Database
from hub.models._types import utcnow
from hub.models.sync import SyncRun
from hub.models.sync_webhook import SyncWebhookEvent
from hub.netguard import NetPolicy
from hub.sync.config import TARGETS, Loaded, load_connector, mapping_of
from hub.sync.errors import SyncError, UnknownConnectorError, transient
from hub.sync.runner import Runner, _Run
from hub.sync.runs import Counts

ATTEMPTS = 3
"""Transactions tried for one message (a serialisation failure, a concurrent duplicate)."""


class StoreBusyError(SyncError):
    """The database could not store the message now; the sender should retry."""


@dataclass(frozen=True)
class Inbound:
    """A webhook connector ready to receive: its stored definition and its source."""

    loaded: Loaded
    source: WebhookSource

    @property
    def max_bytes(self) -> int:
        return self.source.config.max_bytes


@dataclass(frozen=True)
class Receipt:
    """What storing a message did: ``duplicate`` when its id was stored before."""

    duplicate: bool
    counts: Counts
    run_id: uuid.UUID | None = None


NOT_FOUND = "no connector receives events at this address"


async def inbound_connector(database: Database, name: str) -> Inbound:
    """The enabled ``webhook`` connector ``name``; :class:`UnknownConnectorError` (one
    message for every case: unknown, disabled or of another kind) otherwise."""
    async with database.session() as session:
        try:
            loaded = await load_connector(session, name)
        except UnknownConnectorError:
            raise UnknownConnectorError(NOT_FOUND) from None
    if loaded.row.kind != "webhook" or not loaded.row.enabled:
        raise UnknownConnectorError(NOT_FOUND)
    try:
        source = WebhookSource.from_config(loaded.row.config, loaded.credentials)
    except connectors.ConfigError as error:
        # A stored definition that no longer checks (edited by hand): not the sender's fault,
        # and nothing to tell it beyond "not here".
        raise UnknownConnectorError(NOT_FOUND) from error
    return Inbound(loaded, source)


async def receive(database: Database, inbound: Inbound, event: WebhookEvent) -> Receipt:
    """Store ``event``'s records once (see the module's docstring)."""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return await _store_once(database, inbound, event)
        except IntegrityError:
            # A concurrent delivery of the same id won (or a record link raced): the next
            # attempt sees its rows.
            if attempt == ATTEMPTS:
                raise StoreBusyError("the message could not be stored now; retry") from None
        except Exception as failure:
            if not transient(failure) or attempt == ATTEMPTS:
                raise
    raise StoreBusyError("the message could not be stored now; retry")  # pragma: no cover


async def prune(session: AsyncSession, retention: timedelta, *, now: datetime | None = None) -> int:
    """Forget the ids of messages received more than ``retention`` ago; returns how many.
    A retry of one of them after this is stored as a new message."""
    cutoff = (now or utcnow()) - retention
    result = await session.execute(
        delete(SyncWebhookEvent).where(col(SyncWebhookEvent.received_at) < cutoff)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def _store_once(database: Database, inbound: Inbound, event: WebhookEvent) -> Receipt:
    loaded = inbound.loaded
    connector_id = loaded.row.id
    started = time.monotonic()
    async with database.transaction() as session:
        seen = await session.execute(
            select(col(SyncWebhookEvent.run_id)).where(
                col(SyncWebhookEvent.connector_id) == connector_id,
                col(SyncWebhookEvent.webhook_id) == event.id,
            )
        )
        if seen.first() is not None:
            return Receipt(duplicate=True, counts=Counts())
        holder = f"webhook {event.id}"[:200]
        now = utcnow()
        run = SyncRun(connector_id=connector_id, holder=holder, started_at=now, status="succeeded")
        session.add(run)
        await session.flush()
        # The id first: a concurrent delivery of it waits here (PostgreSQL) or failed to
        # begin (SQLite's single writer), and its insert then fails on the primary key.
        session.add(SyncWebhookEvent(connector_id=connector_id, webhook_id=event.id, run_id=run.id))
        await session.flush()
        target = TARGETS[loaded.resource]
        state = _Run(
            loaded, run.id, holder, target, mapping_of(loaded.resource, loaded.row.mapping)
        )
        # Its record steps only: no run, lease, keys or outbound calls.
        runner = Runner(database, b"", net_policy=NetPolicy())
        records = list(event.records)
        prepared = [runner._prepare(state, record) for record in records]
        done = await runner._store(session, state, records, prepared)
        for name, value in done.as_dict().items():
            setattr(run, name, value)
        run.finished_at = utcnow()
        run.duration_ms = int((time.monotonic() - started) * 1000)
    return Receipt(duplicate=False, counts=done, run_id=run.id)


__all__ = [
    "MAX_BYTES",
    "NOT_FOUND",
    "Inbound",
    "Receipt",
    "StoreBusyError",
    "WebhookRejectedError",
    "inbound_connector",
    "receive",
]
