"""Partner read disclosures: what customer data each partner request received (DESIGN §5,
"the disclosure record for the audit log").

Three parts:

- a per-request :class:`ReadCollector`, opened by the channel serving the request (the
  GraphQL layer, :func:`collect`) in a context variable and fed by
  :meth:`hub.access.Access.project_all`, the one place every emitted row is projected.
  It only notes ids and field names; nothing is open for staff or when
  ``HUB_AUDIT_READS`` is off, so the projection pays one context-variable lookup;
- :func:`write_reads`, which turns closed collectors into ``read`` events of the audit
  chain plus one :class:`~hub.models.Disclosure` row per (event, customer, resource,
  record), in one transaction;
- the :class:`DisclosureWriter`, a background task batching collectors so requests never
  wait for the audit log (see docs/audit.md for the bounded loss window it implies).

The reports over the rows (:func:`disclosures_of`) are for administrators only, behind
:mod:`hub.admin.audit`.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import hashlib
import json
import logging
import os
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from hub import audit
from hub.db import Database, serialise
from hub.models import AuditEvent, Disclosure
from hub.models._types import utcnow
from hub.outage import OutageLog
from hub.principal import Principal

logger = logging.getLogger(__name__)

READ = "read"
"""The audit action of a partner read."""

_CUSTOMER = "Customer"  # hub.access.Resource.CUSTOMER (hub.access imports this module)


_MARKERS = frozenset({"__withheld__"})
"""Keys of a projected record that are not fields: ``hub.access.WITHHELD`` (named here
because ``hub.access`` imports this module; a test checks they agree)."""


@dataclass
class _Seen:
    customer_id: uuid.UUID
    fields: frozenset[str]
    policy_version: int | None


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
"""The columns of :meth:`ReadCollector.disclosure_rows`, in order."""


@dataclass
class ReadCollector:
    """What one partner request received: per ``(resource, record id)``, the customer it
    is about and the fields it carried. Fed by :meth:`note`; closed by :func:`collect`."""

    principal: Principal
    operation: str | None
    query_sha256: str
    at: datetime = field(default_factory=utcnow)
    records: dict[tuple[str, uuid.UUID], _Seen] = field(default_factory=dict)

    def note(
        self,
        resource: str,
        policy_version: int | None,
        values: Mapping[Any, Any],
        record: Mapping[str, Any],
    ) -> None:
        """Record that ``record`` (the projection of the raw row ``values``) is emitted.

        The customer concerned comes from the raw row: a supplier's feedback carries a
        pseudonymous ``customer_ref``, but the disclosure is still about that customer.
        Called for every row a partner receives: it only notes, in C-level set operations.
        """
        key = (resource, values["id"])
        fields = frozenset(record.keys() - _MARKERS)
        seen = self.records.get(key)
        if seen is None:
            customer_id = key[1] if resource == _CUSTOMER else values["customer_id"]
            self.records[key] = _Seen(customer_id, fields, policy_version)
        elif not fields <= seen.fields:
            seen.fields |= fields

    @property
    def customer_ids(self) -> list[uuid.UUID]:
        # UUIDs order like their text forms (fixed-width hex).
        return sorted({seen.customer_id for seen in self.records.values()}, key=_uuid_int)

    def entry(self) -> audit.Entry:
        """The ``read`` audit event: who, which operation (name and query hash), which
        customers, and per resource the fields disclosed with the record ids that carried
        them (records with the same fields are grouped)."""
        grouped: dict[str, dict[frozenset[str], list[tuple[str, str]]]] = {}
        versions: set[int] = set()
        for (resource, record_id), seen in sorted(self.records.items(), key=_by_key):
            groups = grouped.setdefault(resource, {})
            groups.setdefault(seen.fields, []).append((str(record_id), str(seen.customer_id)))
            if seen.policy_version is not None:
                versions.add(seen.policy_version)
        disclosed: dict[str, list[dict[str, Any]]] = {}
        for resource, groups in grouped.items():
            disclosed[resource] = []
            for names, pairs in groups.items():
                group: dict[str, Any] = {"fields": sorted(names), "ids": [i for i, _ in pairs]}
                if resource != _CUSTOMER:  # which customer each record is about
                    group["customers"] = [c for _, c in pairs]
                disclosed[resource].append(group)
        principal = self.principal
        return audit.Entry(
            actor=audit.actor_of(principal),
            organization=principal.organization_slug,
            client=principal.client_id,
            action=READ,
            target=f"operation:{self.operation or '(anonymous)'}",
            at=self.at,
            details={
                "operation": self.operation,
                "query_sha256": self.query_sha256,
                "policy_version": max(versions) if versions else None,
                "customers": [str(c) for c in self.customer_ids],
                "disclosed": disclosed,
            },
        )


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
            group["ids"], group["ids"] if resource == _CUSTOMER else group["customers"], strict=True
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


def _uuid_int(value: uuid.UUID) -> int:
    return value.int


def _by_key(item: tuple[tuple[str, uuid.UUID], _Seen]) -> tuple[str, int]:
    # By the integer: UUIDs compare in Python, ints in C (the same order).
    return item[0][0], item[0][1].int


_current: contextvars.ContextVar[ReadCollector | None] = contextvars.ContextVar(
    "read_collector", default=None
)


def recording(principal: Principal) -> ReadCollector | None:
    """The collector of the current request if it records ``principal``'s reads.

    Called once per projection; returns ``None`` (no work) unless a partner request opened
    a collector. Projections made for another principal in the same context (none today)
    are not attributed to the caller.
    """
    collector = _current.get()
    if collector is None or collector.principal != principal:
        return None
    return collector


def query_hash(query: str) -> str:
    """The SHA-256 (hex) of an operation's text, as recorded with its reads."""
    return hashlib.sha256(query.encode()).hexdigest()


@contextlib.contextmanager
def collect(
    principal: Principal, *, operation: str | None, query: str, enabled: bool = True
) -> Iterator[ReadCollector | None]:
    """Collect the reads of one request in the block (``None``: nothing is recorded: the
    caller is not a partner, or read auditing is off). Hand the collector to
    :meth:`DisclosureWriter.submit` afterwards; it is empty when nothing was emitted.

    Example::

        with collect(principal, operation=name, query=text) as reads:
            result = await execute()
        if reads is not None:
            writer.submit(reads)
    """
    if not enabled or not principal.is_partner:
        yield None
        return
    collector = ReadCollector(principal, operation, query_hash(query))
    token = _current.set(collector)
    try:
        yield collector
    finally:
        _current.reset(token)


async def write_reads(session: AsyncSession, reads: Sequence[ReadCollector]) -> int:
    """Append one ``read`` event per non-empty collector, in the session's transaction
    (one chain lock for the whole batch); returns events written. The per-customer index
    (:class:`Disclosure` rows) is built from the events by :func:`index_pending`."""
    reads = [r for r in reads if r.records]
    if not reads:
        return 0
    events = await audit.append_all(session, [r.entry() for r in reads])
    return len(events)


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


# --- reports ----------------------------------------------------------------------------


@dataclass(frozen=True)
class DisclosureView:
    """One record of a customer disclosed to an organization, for access reports."""

    at: datetime
    organization: str
    client: str
    resource: str
    record_id: uuid.UUID
    customer_id: uuid.UUID
    fields: list[str]
    policy_version: int | None
    event_seq: int
    operation: str | None

    def as_json(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "organization": self.organization,
            "client": self.client,
            "customer_id": str(self.customer_id),
            "resource": self.resource,
            "record_id": str(self.record_id),
            "fields": self.fields,
            "policy_version": self.policy_version,
            "event_seq": self.event_seq,
            "operation": self.operation,
        }


EXPORT_COLUMNS = (
    "at",
    "organization",
    "client",
    "customer_id",
    "resource",
    "record_id",
    "fields",
    "policy_version",
    "event_seq",
    "operation",
)


async def merged_into(session: AsyncSession, customer_id: uuid.UUID) -> set[uuid.UUID]:
    """The customer and every customer merged into it, however many merges ago (from the
    ``customer.merge`` events of the audit log)."""
    found, frontier = {customer_id}, [customer_id]
    while frontier:
        targets = [f"Customer:{c}" for c in frontier]
        rows = await session.execute(
            select(col(AuditEvent.details)).where(
                col(AuditEvent.action) == "customer.merge", col(AuditEvent.target).in_(targets)
            )
        )
        merged = {uuid.UUID(details["duplicate"]) for details in rows.scalars()} - found
        found |= merged
        frontier = list(merged)
    return found


async def disclosures_of(session: AsyncSession, customer_id: uuid.UUID) -> list[DisclosureView]:
    """Every disclosure of one customer, oldest first (no access check: callers check).
    The index is brought up to date first, in the session, so the report is complete.
    Disclosures of customers merged into this one count as its own: reads recorded (or
    indexed) after a merge still name the duplicate."""
    await index_pending(session)
    customers = await merged_into(session, customer_id)
    operation = AuditEvent.details["operation"].as_string()
    statement = (
        select(
            col(Disclosure.at),
            col(Disclosure.organization),
            col(Disclosure.client),
            col(Disclosure.resource),
            col(Disclosure.record_id),
            col(Disclosure.customer_id),
            col(Disclosure.fields),
            col(Disclosure.policy_version),
            col(Disclosure.event_seq),
            operation,
        )
        .outerjoin(AuditEvent, col(AuditEvent.seq) == col(Disclosure.event_seq))
        .where(col(Disclosure.customer_id).in_(customers))
        .order_by(col(Disclosure.event_seq), col(Disclosure.resource), col(Disclosure.record_id))
    )
    return [DisclosureView(*row) for row in (await session.execute(statement)).all()]
