"""The transactional outbox (DESIGN §10): one event per committed change of a record.

Every write appends its events in its own transaction (:func:`emit`, called through
:func:`hub.changes.record_change`), so a change and its event commit together or not at
all. An event names the record (resource and id), what happened to it
(:class:`Operation`), the *names* of the fields that changed (never their values), the
record's new version where it has one, who made the change (as the audit log names the
writer) and when. Channels that send changes out (webhooks, subscriptions, sync) read
the events in order with :func:`changes_since` and project each record through
:mod:`hub.access` for their subscriber.

Ordering. ``position`` is strictly increasing in commit order and has no gaps: a reader
that has seen position *n* has seen every event up to *n*, and one that asks for events
after *n* never misses one that commits later. A sequence or identity column cannot
promise that on PostgreSQL: numbers are handed out when rows are inserted, but the
transactions commit in any order, so a reader can see 12 while 11 is still uncommitted,
move its cursor past 11 and skip it for good. Two fixes are known: number events under a
lock held until commit, or make readers stop below the oldest still-open writer (a
visibility horizon, e.g. ``pg_snapshot_xmin``). The hub takes the first, at no extra
cost: every write already appends to the audit log, which serialises on one
transaction-scoped lock until commit (:data:`hub.audit.LOCK_KEY`, through
:func:`hub.db.serialise`: an advisory lock on PostgreSQL, the write lock on SQLite).
:func:`emit` takes the same lock (re-entrant within a transaction) and numbers its event
``max(position) + 1``; the next writer can read that maximum only after this one has
committed or rolled back. So the committed events always form one unbroken range, a
rolled-back write leaves neither an event nor a hole, and readers need nothing but
``position > n``. :func:`prune` keeps the newest event, so positions never restart.

Retention and readers. Consumers register under a name (:func:`register_reader`) and
record how far they have read (:func:`advance_reader`). :func:`prune` (the runtime's
prune tick, every minute) deletes events older than ``HUB_OUTBOX_RETENTION`` seconds,
but never one after the slowest registered reader's position.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from hub.audit import LOCK_KEY
from hub.bulk import fetch_planned_now, insert_records
from hub.db import serialise
from hub.errors import BadInputError, NotFoundError
from hub.models import OutboxEvent, OutboxReader
from hub.models._types import utcnow

MAX_LIMIT = 10_000
"""The most events one :func:`changes_since` call returns."""

MAX_READER_NAME = 64  # the column's length


class Operation(enum.StrEnum):
    """What happened to the record: a closed set, so every channel can handle each one.

    - ``create``: the record came into being (a new customer, feedback, interaction,
      purchase, partner assignment, or proposed change).
    - ``update``: fields of the record were edited (a customer update, an assignment's
      new role).
    - ``consent``: a customer's consent was recorded (``recordConsent``).
    - ``status``: the record moved along its lifecycle (feedback status; a pending
      proposed change superseded by a newer one).
    - ``approve``: a proposed change was approved: both the proposal and the customer it
      applied to get one.
    - ``reject``: a proposed change was turned down (the customer is unchanged).
    - ``merge``: a customer merge changed the record: the survivor (fields filled in,
      version bumped) and every record moved from the duplicate to it (``customer_id``).
    - ``delete``: the record is gone (an ended assignment, the merged duplicate); its
      event names no fields.
    """

    CREATE = "create"
    UPDATE = "update"
    CONSENT = "consent"
    STATUS = "status"
    APPROVE = "approve"
    REJECT = "reject"
    MERGE = "merge"
    DELETE = "delete"


@dataclass(frozen=True)
class Change:
    """One changed record, as a write reports it to :func:`emit`."""

    resource: str
    record_id: uuid.UUID
    operation: Operation
    fields: tuple[str, ...] = ()
    version: int | None = None


@dataclass(frozen=True)
class Event:
    """One outbox event as readers get it."""

    position: int
    resource: str
    record_id: uuid.UUID
    operation: Operation
    fields: tuple[str, ...]
    version: int | None
    actor: str
    at: datetime

    @classmethod
    def of(cls, row: OutboxEvent) -> Event:
        return cls(
            position=row.position,
            resource=row.resource,
            record_id=row.record_id,
            operation=Operation(row.operation),
            fields=tuple(row.fields),
            version=row.version,
            actor=row.actor,
            at=row.at,
        )


async def emit(session: AsyncSession, change: Change, *, actor: str) -> int:
    """Append ``change`` in the caller's transaction; returns its position."""
    return (await emit_all(session, [change], actor=actor))[0]


async def emit_all(session: AsyncSession, changes: Iterable[Change], *, actor: str) -> list[int]:
    """Append ``changes`` in order, in the caller's transaction; returns their positions.

    Takes the audit log's lock until commit (see the module docstring): call it after the
    write's row locks, as the audit append is, so two writers never wait on each other."""
    rows = await _numbered(session, changes, actor)
    if rows:
        await session.execute(insert(OutboxEvent), rows)
    return [row["position"] for row in rows]


async def emit_many(
    session: AsyncSession, changes: Iterable[Change], *, actor: str, locked: bool = False
) -> list[int]:
    """:func:`emit_all` for a bulk write's hundreds of events (an import's batch): numbered
    the same way under the same lock, inserted with :func:`hub.bulk.insert_records` (a
    ``COPY`` on PostgreSQL). The ordering guarantees of the module's docstring hold as
    they do for :func:`emit_all`: the numbers are taken under the lock either way.
    ``locked``: the caller appended to the audit log in this transaction, so it holds
    the lock already (a statement saved per batch)."""
    changes = list(changes)
    if not changes:
        return []
    last = await _locked_head(session, locked)
    at = utcnow()
    actor = actor[:200]
    rows = [
        (
            last + n,
            change.resource,
            change.record_id,
            change.operation.value,
            list(change.fields),
            change.version,
            actor,
            at,
        )
        for n, change in enumerate(changes, start=1)
    ]
    # Under the audit chain's lock: no turn to another writer's loop until it is released.
    await insert_records(session, _TABLE, _COLUMNS, rows, turns=False)
    return [row[0] for row in rows]


async def emit_batch(
    session: AsyncSession,
    resource: str,
    operation: Operation,
    events: Sequence[tuple[uuid.UUID, list[str], int | None]],
    *,
    actor: str,
    locked: bool = False,
) -> range:
    """:func:`emit_many` for events that share their resource and operation (a batch of
    creates), each given as ``(record id, field names, version)``: the rows built as the
    ``COPY`` takes them, no :class:`Change` and no mapping an event. A list of names may
    be shared by many events (it is not copied). Returns the positions taken."""
    if not events:
        return range(0)
    last = await _locked_head(session, locked)
    at = utcnow()
    actor = actor[:200]
    kind = operation.value
    rows = [
        (position, resource, record_id, kind, fields, version, actor, at)
        for position, (record_id, fields, version) in enumerate(events, start=last + 1)
    ]
    # Under the audit chain's lock: no turn to another writer's loop until it is released.
    await insert_records(session, _TABLE, _COLUMNS, rows, turns=False)
    return range(last + 1, last + 1 + len(rows))


_TABLE: Any = OutboxEvent.__table__  # type: ignore[attr-defined]
_COLUMNS = ("position", "resource", "record_id", "operation", "fields", "version", "actor", "at")
"""Every column of ``outbox_event``, in the order :func:`emit_many` builds its rows."""


async def _locked_head(session: AsyncSession, locked: bool) -> int:
    """The newest position under the lock (taken here unless ``locked``), planned for
    the table as it is now (:func:`_head_planned_now`)."""
    if not locked:
        await serialise(session, LOCK_KEY)
    return await _head_planned_now(session)


async def _numbered(
    session: AsyncSession, changes: Iterable[Change], actor: str
) -> list[dict[str, Any]]:
    """The rows of ``changes``, numbered after the newest event under the lock."""
    changes = list(changes)
    if not changes:
        return []
    await serialise(session, LOCK_KEY)
    last = await head(session)
    at = utcnow()
    return [
        {
            "position": last + offset,
            "resource": change.resource,
            "record_id": change.record_id,
            "operation": change.operation.value,
            "fields": list(change.fields),
            "version": change.version,
            "actor": actor[:200],
            "at": at,
        }
        for offset, change in enumerate(changes, start=1)
    ]


async def head(session: AsyncSession) -> int:
    """The newest event's position (0 before the first event)."""
    newest = await session.execute(select(func.max(col(OutboxEvent.position))))
    return int(newest.scalar_one() or 0)


async def _head_planned_now(session: AsyncSession) -> int:
    """:func:`head`, planned for the table as it is now (a bulk import's batches,
    :func:`hub.bulk.fetch_planned_now`): on a connection that first asked while the table
    was empty, the prepared ``max(position)`` stays a scan of every event, and an
    import's batches, each asking once, cost the square of its size (7 ms a batch at
    30,000 events)."""
    if session.get_bind().dialect.name != "postgresql":
        return await head(session)
    rows = await fetch_planned_now(session, "SELECT max(position) FROM outbox_event")
    return int(rows[0][0] or 0)


async def changes_since(session: AsyncSession, position: int, limit: int = 500) -> list[Event]:
    """Up to ``limit`` events after ``position``, in order. Positions have no gaps, so
    a first event past ``position + 1`` means the ones between were pruned."""
    if not 1 <= limit <= MAX_LIMIT:
        raise BadInputError(f"limit must be between 1 and {MAX_LIMIT}")
    rows = await session.execute(
        select(OutboxEvent)
        .where(col(OutboxEvent.position) > position)
        .order_by(col(OutboxEvent.position))
        .limit(limit)
    )
    return [Event.of(row) for row in rows.scalars()]


# --- readers and retention -----------------------------------------------------------------


def _check_name(name: str) -> None:
    if not name or len(name) > MAX_READER_NAME or not name.isprintable():
        raise BadInputError(f"a reader name is 1 to {MAX_READER_NAME} printable characters")


async def register_reader(session: AsyncSession, name: str, position: int | None = None) -> int:
    """Register a reader at ``position`` (default: the newest event, so it reads what
    happens from now on; 0 reads everything still kept). Registering a known name
    changes nothing. Returns the reader's position."""
    _check_name(name)
    start = await head(session) if position is None else position
    if start < 0:
        raise BadInputError("a reader's position is 0 or more")
    values = {"name": name, "position": start, "updated_at": utcnow()}
    dialect = session.get_bind().dialect.name
    upsert = pg_insert if dialect == "postgresql" else sqlite_insert
    await session.execute(upsert(OutboxReader).values(values).on_conflict_do_nothing())
    return await reader_position(session, name)


async def reader_position(session: AsyncSession, name: str) -> int:
    """Where the reader ``name`` has read up to."""
    found = await session.execute(
        select(col(OutboxReader.position)).where(col(OutboxReader.name) == name)
    )
    position = found.scalar_one_or_none()
    if position is None:
        raise NotFoundError(f"no outbox reader is named {name!r}; register it first")
    return int(position)


async def advance_reader(session: AsyncSession, name: str, position: int) -> int:
    """Record that ``name`` has read every event up to ``position``. A reader never
    moves back (a late acknowledgement from a retried delivery is ignored), nor past
    the newest event. Returns the reader's position."""
    newest = await head(session)
    if position > newest:
        raise BadInputError(f"position {position} is past the newest event ({newest})")
    await session.execute(
        update(OutboxReader)
        .where(col(OutboxReader.name) == name, col(OutboxReader.position) < position)
        .values(position=position, updated_at=utcnow())
    )
    return await reader_position(session, name)


async def drop_reader(session: AsyncSession, name: str) -> bool:
    """Forget the reader ``name`` (it no longer holds back pruning); ``False`` if unknown."""
    result = await session.execute(delete(OutboxReader).where(col(OutboxReader.name) == name))
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def readers(session: AsyncSession) -> Sequence[tuple[str, int]]:
    """Every registered reader and its position, slowest first."""
    rows = await session.execute(
        select(col(OutboxReader.name), col(OutboxReader.position)).order_by(
            col(OutboxReader.position), col(OutboxReader.name)
        )
    )
    return [(str(name), int(position)) for name, position in rows.all()]


async def prune(session: AsyncSession, retention: timedelta, *, now: datetime | None = None) -> int:
    """Delete the events older than ``retention`` that every registered reader has read;
    returns how many went. Always a prefix of the positions (an event goes only when a
    later one is old enough too), and never the newest event, so positions never restart."""
    cutoff = (now or utcnow()) - retention
    position = col(OutboxEvent.position)
    newest = select(func.max(position)).scalar_subquery()
    expired = select(func.max(position)).where(col(OutboxEvent.at) < cutoff).scalar_subquery()
    slowest = select(func.min(col(OutboxReader.position))).scalar_subquery()
    result = await session.execute(
        delete(OutboxEvent).where(
            position <= expired,
            position < newest,
            position <= func.coalesce(slowest, newest),
        )
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
