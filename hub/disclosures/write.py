"""Writing collected reads: the audit events, then the disclosure index.

:func:`write_reads` turns closed collectors into ``read`` events of the audit chain; the
:class:`DisclosureWriter` is the background task batching them so requests never wait for
the audit log (see docs/audit.md for the bounded loss window it implies), and bringing
the index (:mod:`hub.disclosures.index`) up to date after them, lagging by design.

May import :mod:`hub.disclosures.collect`, :mod:`hub.disclosures.index`, :mod:`hub.audit`,
:mod:`hub.db`, :mod:`hub.models` and :mod:`hub.outage`; never :mod:`hub.access`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from datetime import UTC
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from hub import audit
from hub.db import Database
from hub.disclosures.collect import CUSTOMER, ReadCollector
from hub.disclosures.index import GROUPED, ReadEvent, index_pending, indexed_until
from hub.models import AuditEvent
from hub.outage import OutageLog

# The name the writer has always logged under (before the package split).
logger = logging.getLogger("hub.disclosures")


async def write_reads(session: AsyncSession, reads: Sequence[ReadCollector]) -> int:
    """Append one ``read`` event per non-empty collector, in the session's transaction
    (one chain lock for the whole batch); returns events written. The index
    (:class:`Disclosure` rows) is built from the events by :func:`index_pending`."""
    return len(await _append_reads(session, reads))


async def _append_reads(session: AsyncSession, reads: Sequence[ReadCollector]) -> list[audit.Entry]:
    """:func:`write_reads`, returning the entries appended (their events are the chain's
    last, in order: :func:`hub.audit.append_many` appends any anchor event first)."""
    entries = [r.entry() for r in reads if r.records]
    if entries:
        await audit.append_many(session, entries)
    return entries


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


async def _read_events(
    session: AsyncSession, entries: Sequence[audit.Entry]
) -> dict[int, ReadEvent]:
    """What the index takes from the events of ``entries``, just appended in the
    session's transaction (which holds the chain's lock): they are the chain's last."""
    head = (await session.execute(select(func.max(col(AuditEvent.seq))))).scalar_one()
    first = int(head) - len(entries) + 1
    return {
        seq: ReadEvent(
            seq=seq,
            at=entry.at.astimezone(UTC),  # as hub.audit stores it
            organization=entry.organization or "",
            client=entry.client or "",
            policy_version=entry.details.get("policy_version"),
            customers=entry.details["customers"],
        )
        for seq, entry in enumerate(entries, start=first)
        if entry.at is not None  # a collector's always has one: the time of the read
    }


# The disclosure index lags the events by design: the writer indexes when it is idle and
# whenever INDEX_LAG events are waiting; every report indexes what is left first, so a
# report is always complete. The writer keeps what the index needs of the events it
# appended (on PostgreSQL, where the index takes it from memory), no more than INDEX_LAG
# of them: the ids of about 50 customers a page, some 5 KB each.

INDEX_LAG = 1000
"""Events the index may lag behind under sustained load before the writer catches up."""


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
        # Of those, what the index needs, by seq (PostgreSQL's index takes it from here).
        self._appended: dict[int, ReadEvent] = {}
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
                        entries = await _append_reads(session, batch)
                        appended = await self._indexable(session, entries)
                except BaseException:
                    self._pending[:0] = batch  # retried in order with the next flush
                    raise
                written += len(entries)
                self._appended.update(appended)  # committed
        self.unindexed += written
        return written

    async def _indexable(
        self, session: AsyncSession, entries: Sequence[audit.Entry]
    ) -> dict[int, ReadEvent]:
        """What the index will need of ``entries``' events, where it takes it from memory."""
        if not entries or (await session.connection()).dialect.name not in GROUPED:
            return {}
        return await _read_events(session, entries)

    async def index(self) -> int:
        """Bring the disclosure index up to date (every replica's events, not only this
        one's); returns the events indexed."""
        indexed = 0
        while True:
            async with self.database.transaction() as session:
                done = await index_pending(session, limit=INDEX_LAG, known=self._appended)
                newest = await indexed_until(session)
            indexed += done
            # Indexed now, by this call or by another (a report's, another replica's).
            for seq in [seq for seq in self._appended if seq <= newest]:
                del self._appended[seq]
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
