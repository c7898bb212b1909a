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
import os
import time
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

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
    events = await audit.append_all(session, [r.entry() for r in reads])
    return len(events)


def rows_of_event(
    seq: int, at: datetime, organization: str, client: str, details: Mapping[str, Any]
) -> list[tuple[Any, ...]]:
    """The :class:`Disclosure` rows of one ``read`` event (one per record disclosed), as
    values in the order of :data:`DISCLOSURE_COLUMNS` (``fields`` a sorted tuple): the
    index is derived from the hash-chained event, which stays the record."""
    version = details.get("policy_version")
    pairs = [
        (resource, tuple(group["fields"]), uuid.UUID(record), uuid.UUID(about))
        for resource, groups in details.get("disclosed", {}).items()
        for group in groups
        for record, about in zip(
            group["ids"], group["ids"] if resource == CUSTOMER else group["customers"], strict=True
        )
    ]
    return [
        (id_, seq, at, customer_id, organization, client, resource, record_id, fields, version)
        for id_, (resource, fields, record_id, customer_id) in zip(
            _ordered_ids(len(pairs)), pairs, strict=True
        )
    ]


def _ordered_ids(count: int) -> list[int]:
    """``count`` ids in the UUIDv7 layout (RFC 9562 §5.7): the millisecond time first, then
    a random start counting up. Disclosure rows are many and only ever appended: with
    time-ordered keys they land at the end of the primary-key index, where random (v4) keys
    would dirty a different index page per row (on SQLite, in-process, the largest part of
    recording a read)."""
    millis = time.time_ns() // 1_000_000
    random = int.from_bytes(os.urandom(10), "big")
    head = (millis << 80) | (0x7 << 76) | ((random >> 64) & 0xFFF) << 64 | (0b10 << 62)
    start = random & ((1 << 62) - 1)
    mask = (1 << 62) - 1
    # Plain integers: building a UUID object per row costs more than the rest of a row;
    # _bind renders them as each backend stores a UUID.
    return [head | ((start + n) & mask) for n in range(count)]


# The disclosure index lags the events by design: a partner page is one event but a
# hundred or more index rows, and writing those beside every request cost SQLite (in the
# hub's own process) a fifth of its throughput. The writer indexes when it is idle and
# whenever INDEX_LAG events are waiting; every report indexes what is left first, so a
# report is always complete.

INDEX_LAG = 5000
"""Events the index may lag behind under sustained load before the writer catches up."""

_INDEX_LOCK = 0x646973636C6F  # "disclo": one indexer at a time per database


async def index_pending(session: AsyncSession, *, limit: int | None = None) -> int:
    """Add the :class:`Disclosure` rows of every ``read`` event not indexed yet (up to
    ``limit`` events), in the session's transaction; returns the events indexed.
    Serialised per database, so two replicas never index one event twice."""
    await serialise(session, _INDEX_LOCK)
    done = (await session.execute(select(func.max(col(Disclosure.event_seq))))).scalar()
    statement = (
        select(
            col(AuditEvent.seq),
            col(AuditEvent.at),
            col(AuditEvent.organization),
            col(AuditEvent.client),
            col(AuditEvent.details),
        )
        .where(col(AuditEvent.action) == READ, col(AuditEvent.seq) > (done or 0))
        .order_by(col(AuditEvent.seq))
    )
    if limit is not None:
        statement = statement.limit(limit)
    events = (await session.execute(statement)).all()
    rows = [
        row
        for seq, at, org, client, details in events
        for row in rows_of_event(seq, at, org or "", client or "", details)
    ]
    if rows:
        # In customer order: bulk inserts into the customer index then touch each page once.
        rows.sort(key=lambda r: (r[3].int, r[1]))
        connection = await session.connection()
        dialect = connection.dialect
        for start in range(0, len(rows), 5000):
            chunk = _bind(dialect.name, rows[start : start + 5000])
            await connection.exec_driver_sql(_insert_sql(dialect.paramstyle), chunk)
    return len(events)


# A partner page leaves a disclosure row per record it returned (a hundred or more), and
# through a typed insert SQLAlchemy's per-row, per-column parameter processing cost more
# than all the rest of recording the read. So the values are converted here, as the
# column types would store them on each backend, and sent in one driver executemany.


def _insert_sql(paramstyle: str) -> str:
    if paramstyle == "qmark":  # sqlite3
        marks = ["?"] * len(DISCLOSURE_COLUMNS)
    elif paramstyle == "numeric_dollar":  # asyncpg
        marks = [f"${n}" for n in range(1, len(DISCLOSURE_COLUMNS) + 1)]
    else:
        raise NotImplementedError(f"no disclosure insert for the {paramstyle} paramstyle")
    columns = ", ".join(DISCLOSURE_COLUMNS)
    # Constant column names and placeholders only: the values are bound by the driver.
    return f"INSERT INTO disclosure ({columns}) VALUES ({', '.join(marks)})"  # noqa: S608


def _bind(dialect: str, rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    as_json: dict[tuple[str, ...], str] = {}  # most records share their field list
    times: dict[datetime, str] = {}  # and a request's records their time
    bound: list[tuple[Any, ...]] = []
    sqlite = dialect == "sqlite"
    for id_, seq, at, customer_id, org, client, resource, record_id, fields, version in rows:
        encoded = as_json.get(fields)
        if encoded is None:
            encoded = as_json[fields] = json.dumps(list(fields))
        if sqlite:
            when = times.get(at)
            if when is None:
                when = times[at] = _sqlite_time(at)
            # sqlalchemy.Uuid stores 32 hex digits on SQLite; UTCDateTime naive UTC text.
            bound.append(
                (
                    f"{id_:032x}",
                    seq,
                    when,
                    customer_id.hex,
                    org,
                    client,
                    resource,
                    record_id.hex,
                    encoded,
                    version,
                )
            )
        else:
            # asyncpg takes UUIDs and aware datetimes; SQLAlchemy's json codec takes text.
            bound.append(
                (
                    uuid.UUID(int=id_),
                    seq,
                    at,
                    customer_id,
                    org,
                    client,
                    resource,
                    record_id,
                    encoded,
                    version,
                )
            )
    return bound


def _sqlite_time(at: datetime) -> str:
    return at.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


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
