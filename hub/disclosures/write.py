"""Writing collected reads: the audit events and the disclosure index.

:func:`write_reads` turns closed collectors into ``read`` events of the audit chain;
:func:`index_pending` derives the :class:`~hub.models.Disclosure` index from those events
(one row per event and customer it disclosed something of), lagging them by design; the
:class:`DisclosureWriter` is the background task batching both so requests never wait for
the audit log (see docs/audit.md for the bounded loss window it implies).

May import :mod:`hub.disclosures.collect`, :mod:`hub.audit`, :mod:`hub.db`,
:mod:`hub.models` and :mod:`hub.outage`; never :mod:`hub.access`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
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


def records_of_event(
    details: Mapping[str, Any],
) -> list[tuple[str, str, str, tuple[str, ...]]]:
    """``(resource, record id, customer id, field names)`` per record of a ``read``
    event's details, ids as the canonical text the event holds, in the event's order."""
    return [
        (resource, record, about, tuple(group["fields"]))
        for resource, groups in details.get("disclosed", {}).items()
        for group in groups
        for record, about in zip(
            group["ids"], group["ids"] if resource == CUSTOMER else group["customers"], strict=True
        )
    ]


def _row_id(seq: int, n: int) -> int:
    """The id of an event's ``n``-th index row (from 1): the event's ``seq``, then ``n``.
    Index rows are only ever appended: keys that grow with the events land at the end of
    the primary-key index, where random keys would dirty a different index page per row;
    and indexing an event again would give the same ids."""
    return (seq << 64) | n


def rows_of_event(
    seq: int, at: datetime, organization: str, client: str, details: Mapping[str, Any]
) -> list[tuple[Any, ...]]:
    """The :class:`Disclosure` rows of one ``read`` event, one per customer it disclosed
    something of (``details["customers"]``, in order), as values in the order of
    :data:`DISCLOSURE_COLUMNS` (``id`` an integer, customer ids UUIDs). The index is
    derived from the hash-chained event, which stays the record of what was read."""
    version = details.get("policy_version")
    return [
        (_row_id(seq, n), seq, at, uuid.UUID(customer), organization, client, version)
        for n, customer in enumerate(details.get("customers", ()), start=1)
    ]


# The disclosure index lags the events by design: the writer indexes when it is idle and
# whenever INDEX_LAG events are waiting; every report indexes what is left first, so a
# report is always complete. A partner page is one event naming its fifty customers:
# fifty index rows, made by the database from the stored event in one statement (a row
# per record, as the index once had, cost the database more than answering the page).

INDEX_LAG = 5000
"""Events the index may lag behind under sustained load before the writer catches up."""

_INDEX_LOCK = 0x646973636C6F  # "disclo": one indexer at a time per database

# Each event's details are read (and, on PostgreSQL, de-TOASTed and parsed) once, in a
# materialised CTE, not once per customer. Row ids follow _row_id. Constant text; the
# values are bound.
_INDEX_SQL = {
    "postgresql": """
WITH events AS MATERIALIZED (
    SELECT seq, at, coalesce(organization, '') AS organization,
        coalesce(client, '') AS client,
        CAST(details ->> 'policy_version' AS integer) AS version,
        CAST(details AS jsonb) -> 'customers' AS customers
    FROM audit_event
    WHERE action = $1 AND seq > $2 AND seq <= $3
)
INSERT INTO disclosure (id, event_seq, at, customer_id, organization, client, policy_version)
SELECT CAST(lpad(to_hex(e.seq), 16, '0') || lpad(to_hex(c.n), 16, '0') AS uuid),
    e.seq, e.at, CAST(c.value AS uuid), e.organization, e.client, e.version
FROM events AS e
CROSS JOIN LATERAL jsonb_array_elements_text(e.customers) WITH ORDINALITY AS c(value, n)
""",
    # sqlalchemy.Uuid stores 32 hex digits on SQLite; ``at`` is copied as stored.
    "sqlite": """
WITH events AS MATERIALIZED (
    SELECT seq, at, coalesce(organization, '') AS organization,
        coalesce(client, '') AS client,
        json_extract(details, '$.policy_version') AS version,
        json_extract(details, '$.customers') AS customers
    FROM audit_event
    WHERE action = ? AND seq > ? AND seq <= ?
)
INSERT INTO disclosure (id, event_seq, at, customer_id, organization, client, policy_version)
SELECT printf('%016x%016x', e.seq, c.key + 1), e.seq, e.at, replace(c.value, '-', ''),
    e.organization, e.client, e.version
FROM events AS e, json_each(e.customers) AS c
""",
}


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
        # Its planner guesses a hundred rows per JSON element function and would compile
        # the statement to machine code (JIT) for longer than it runs.
        await connection.exec_driver_sql("SET LOCAL jit = off")
    await connection.exec_driver_sql(_INDEX_SQL[connection.dialect.name], (READ, done, seqs[-1]))
    return len(seqs)


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
            # What is pending now, no more: reads submitted while this flush writes wait
            # for the next tick and batch there. Draining until empty chased every
            # request that completed meanwhile with a transaction of its own (a chain
            # lock, the head and the anchor each time): under load most "batches" held
            # one read.
            remaining = len(self._pending)
            while remaining > 0 and self._pending:
                batch = self._pending[: min(self.batch_size, remaining)]
                del self._pending[: len(batch)]
                remaining -= len(batch)
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
            while self._pending:
                await self.flush()
        except (SQLAlchemyError, OSError):
            logger.exception("audit: %d partner reads lost at shutdown", self.pending)
