"""Writing collected reads: the audit events and the disclosure index.

:func:`write_reads` turns closed collectors into ``read`` events of the audit chain;
:func:`index_pending` derives the :class:`~hub.models.Disclosure` index from those events
(one row per event, customer, resource and record), lagging them by design; the
:class:`DisclosureWriter` is the background task batching both so requests never wait for
the audit log (see docs/audit.md for the bounded loss window it implies).

May import :mod:`hub.disclosures.collect`, :mod:`hub.audit`, :mod:`hub.db`,
:mod:`hub.models` and :mod:`hub.outage`; never :mod:`hub.access`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from hub import audit
from hub.db import Database, serialise
from hub.disclosures.collect import CUSTOMER, READ, ReadCollector
from hub.models import AuditEvent, Disclosure
from hub.outage import OutageLog

# The name the writer has always logged under (before the package split).
logger = logging.getLogger("hub.disclosures")


DISCLOSURE_COLUMNS = (
    "id",
    "event_seq",
    "at",
    "customer_id",
    "organization",
    "client",
    "resource",
    "record_id",
    "fields",
    "policy_version",
)
"""The columns of a :class:`~hub.models.Disclosure` row as :func:`rows_of_event` gives
them, in order."""


async def write_reads(session: AsyncSession, reads: Sequence[ReadCollector]) -> int:
    """Append one ``read`` event per non-empty collector, in the session's transaction
    (one chain lock for the whole batch); returns events written. The per-customer index
    (:class:`Disclosure` rows) is built from the events by :func:`index_pending`."""
    reads = [r for r in reads if r.records]
    if not reads:
        return 0
    return await audit.append_many(session, [r.entry() for r in reads])


def _expand(details: Mapping[str, Any]) -> list[tuple[str, tuple[str, ...], str, str]]:
    """``(resource, fields, record id, customer id)`` per record of a ``read`` event's
    details, ids as the canonical text the event holds."""
    return [
        (resource, tuple(group["fields"]), record, about)
        for resource, groups in details.get("disclosed", {}).items()
        for group in groups
        for record, about in zip(
            group["ids"], group["ids"] if resource == CUSTOMER else group["customers"], strict=True
        )
    ]


def _row_id(seq: int, n: int) -> int:
    """The id of an event's ``n``-th index row: the event's ``seq``, then ``n`` (unique
    among the rows indexed with the event).
    Disclosure rows are many and only ever appended: keys that grow with the events land
    at the end of the primary-key index, where random keys would dirty a different index
    page per row (on SQLite, in-process, once the largest part of recording a read). And
    the same event always gets the same ids. (Rows indexed before this scheme carry
    UUIDv7-layout ids, whose leading millisecond time keeps them apart from these.)"""
    return (seq << 64) | n


def rows_of_event(
    seq: int, at: datetime, organization: str, client: str, details: Mapping[str, Any]
) -> list[tuple[Any, ...]]:
    """The :class:`Disclosure` rows of one ``read`` event (one per record disclosed), as
    values in the order of :data:`DISCLOSURE_COLUMNS` (``id`` an integer, ids UUIDs,
    ``fields`` a sorted tuple): the index is derived from the hash-chained event, which
    stays the record."""
    version = details.get("policy_version")
    return [
        (
            _row_id(seq, n),
            seq,
            at,
            uuid.UUID(customer),
            organization,
            client,
            resource,
            uuid.UUID(record),
            fields,
            version,
        )
        for n, (resource, fields, record, customer) in enumerate(_expand(details), start=1)
    ]


# The disclosure index lags the events by design: a partner page is one event but a
# hundred or more index rows, and writing those beside every request cost SQLite (in the
# hub's own process) a fifth of its throughput. The writer indexes when it is idle and
# whenever INDEX_LAG events are waiting; every report indexes what is left first, so a
# report is always complete.

INDEX_LAG = 5000
"""Events the index may lag behind under sustained load before the writer catches up."""

_INDEX_LOCK = 0x646973636C6F  # "disclo": one indexer at a time per database

_COLUMNS = ", ".join(DISCLOSURE_COLUMNS)

# On PostgreSQL the events are expanded into index rows by the database itself, in one
# statement: expanding and binding hundreds of rows per event in Python cost more CPU
# than answering the request the event records. Each event's details are read (and
# de-TOASTed) once, as jsonb, whose lookups need no re-parsing; only narrow rows flow on,
# unsorted. ROWS FROM zips a group's ids with the customers they are about (a customer's
# own group has no "customers": the id is the customer). Row ids are the event's seq and
# the row's number in the statement (:func:`_row_id`). Constant text; values are bound.
_EXPAND_PG = f"""
WITH events AS MATERIALIZED (
    SELECT seq, at, coalesce(organization, '') AS organization,
        coalesce(client, '') AS client,
        CAST(details ->> 'policy_version' AS integer) AS version,
        CAST(details AS jsonb) -> 'disclosed' AS disclosed
    FROM audit_event
    WHERE action = $1 AND seq > $2 AND seq <= $3
)
INSERT INTO disclosure ({_COLUMNS})
SELECT
    CAST(lpad(to_hex(e.seq), 16, '0') || lpad(to_hex(row_number() OVER ()), 16, '0') AS uuid),
    e.seq, e.at, CAST(coalesce(x.customer, x.record) AS uuid), e.organization, e.client,
    r.key, CAST(x.record AS uuid), CAST(g.value -> 'fields' AS json), e.version
FROM events AS e
CROSS JOIN LATERAL jsonb_each(e.disclosed) AS r
CROSS JOIN LATERAL jsonb_array_elements(r.value) AS g
CROSS JOIN LATERAL ROWS FROM (
    jsonb_array_elements_text(g.value -> 'ids'),
    jsonb_array_elements_text(g.value -> 'customers')
) AS x(record, customer)
"""  # noqa: S608 — constant SQL

# On SQLite (in the hub's process either way) the rows are built from the stored texts
# with string operations only: no UUID or datetime object per row.
_EVENTS_SQLITE = (
    "SELECT seq, at, organization, client, details FROM audit_event"
    " WHERE action = ? AND seq > ? AND seq <= ? ORDER BY seq"
)
# Constant column names and placeholders only: the values are bound by the driver.
_INSERT_SQLITE = "INSERT INTO disclosure ({}) VALUES ({})".format(  # noqa: S608
    _COLUMNS, ", ".join("?" * len(DISCLOSURE_COLUMNS))
)


async def index_pending(session: AsyncSession, *, limit: int | None = None) -> int:
    """Add the :class:`Disclosure` rows of every ``read`` event not indexed yet (up to
    ``limit`` events), in the session's transaction; returns the events indexed.
    Serialised per database, so two replicas never index one event twice."""
    await serialise(session, _INDEX_LOCK)
    done = (await session.execute(select(func.max(col(Disclosure.event_seq))))).scalar() or 0
    statement = (
        select(col(AuditEvent.seq))
        .where(col(AuditEvent.action) == READ, col(AuditEvent.seq) > done)
        .order_by(col(AuditEvent.seq))
    )
    if limit is not None:
        statement = statement.limit(limit)
    seqs = (await session.execute(statement)).scalars().all()
    if not seqs:
        return 0
    connection = await session.connection()
    if connection.dialect.name == "postgresql":
        # Its planner guesses a hundred rows per JSON element function, nested three deep,
        # and would compile the statement to machine code (JIT) for longer than it runs.
        await connection.exec_driver_sql("SET LOCAL jit = off")
        await connection.exec_driver_sql(_EXPAND_PG, (READ, done, seqs[-1]))
    else:
        events = await connection.exec_driver_sql(_EVENTS_SQLITE, (READ, done, seqs[-1]))
        rows = [row for event in events for row in _sqlite_rows(*event)]
        # In customer order: bulk inserts into the customer index then touch each page once.
        rows.sort(key=lambda r: (r[3], r[1]))
        for start in range(0, len(rows), 5000):
            await connection.exec_driver_sql(_INSERT_SQLITE, rows[start : start + 5000])
    return len(seqs)


def _sqlite_rows(*event: Any) -> list[tuple[Any, ...]]:
    # One stored event: seq, at, organization, client, details (JSON text).
    # sqlalchemy.Uuid stores 32 hex digits on SQLite; ``at`` is copied as stored.
    seq, at, organization, client, details = event
    parsed = orjson.loads(details)
    version = parsed.get("policy_version")
    as_json: dict[tuple[str, ...], str] = {}  # most records share their field list
    rows = []
    for n, (resource, fields, record, customer) in enumerate(_expand(parsed), start=1):
        encoded = as_json.get(fields)
        if encoded is None:
            encoded = as_json[fields] = json.dumps(list(fields))
        rows.append(
            (
                f"{seq:016x}{n:016x}",
                seq,
                at,
                customer.replace("-", ""),
                organization or "",
                client or "",
                resource,
                record.replace("-", ""),
                encoded,
                version,
            )
        )
    return rows


class DisclosureWriter:
    """Writes collectors in the background, batched: every ``interval`` seconds, or as soon
    as ``batch_size`` are pending, one transaction appends them all (one chain lock).

    A failed write keeps the batch and retries at the next tick; beyond ``max_pending``
    collectors the oldest are dropped with an error in the log (a database outage must not
    exhaust the memory). What is pending when the process dies is lost: the window is
    one ``interval`` in normal operation (docs/audit.md).

    Example (``app.py`` lifespan)::

        writer = DisclosureWriter(database, interval=0.5, batch_size=200)
        writer.start()
        ...
        await writer.stop()  # flushes what is pending
    """

    def __init__(
        self,
        database: Database,
        *,
        interval: float,
        batch_size: int,
        max_pending: int | None = None,
    ) -> None:
        self.database = database
        self.interval = interval
        self.batch_size = batch_size
        self.max_pending = max_pending or batch_size * 100
        self.dropped = 0
        self.unindexed = 0  # events this writer appended that the index may lack
        self._pending: list[ReadCollector] = []
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    @property
    def pending(self) -> int:
        return len(self._pending)

    def submit(self, reads: ReadCollector) -> None:
        """Queue one request's reads (never blocks, never fails); empty ones are skipped."""
        if not reads.records:
            return
        self._pending.append(reads)
        if len(self._pending) > self.max_pending:
            excess = len(self._pending) - self.max_pending
            del self._pending[:excess]
            self.dropped += excess
            logger.error(
                "audit: %d partner reads dropped unrecorded (%d in all): the database "
                "has not accepted disclosure batches",
                excess,
                self.dropped,
            )
        if len(self._pending) >= self.batch_size:
            self._wake.set()

    async def flush(self) -> int:
        """Write everything pending now (an admin report calls this first, so that it
        includes the reads just made); returns the events written. Raises on a database
        error, keeping the unwritten collectors for the next attempt."""
        written = 0
        async with self._lock:
            while self._pending:
                batch = self._pending[: self.batch_size]
                del self._pending[: len(batch)]
                try:
                    async with self.database.transaction() as session:
                        written += await write_reads(session, batch)
                except BaseException:
                    self._pending[:0] = batch  # retried in order with the next flush
                    raise
        self.unindexed += written
        return written

    async def index(self) -> int:
        """Bring the disclosure index up to date (every replica's events, not only this
        one's); returns the events indexed."""
        indexed = 0
        while True:
            async with self.database.transaction() as session:
                done = await index_pending(session, limit=INDEX_LAG)
            indexed += done
            if done < INDEX_LAG:
                self.unindexed = 0
                return indexed

    async def run(self) -> None:
        """Flush on every tick or full batch until cancelled; errors are logged and
        retried (a database hiccup must not stop recording for the process's life)."""
        outage = OutageLog("audit: writing partner reads")
        while True:
            idle = True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.interval)
                idle = False
            self._wake.clear()
            try:
                written = await self.flush()
                # Index when a tick brought nothing new, or when the lag reaches its bound.
                if (idle and not written and self.unindexed) or self.unindexed >= INDEX_LAG:
                    await self.index()
            except Exception as error:  # noqa: BLE001 — the writer must outlive any failure
                outage.failed(error)
            else:
                outage.succeeded()

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name="disclosure-writer")

    async def stop(self) -> None:
        """Stop the task and write what is pending (at shutdown)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        try:
            await self.flush()
        except (SQLAlchemyError, OSError):
            logger.exception("audit: %d partner reads lost at shutdown", self.pending)
