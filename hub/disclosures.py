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

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from hub import audit
from hub.db import Database
from hub.models import AuditEvent, Disclosure
from hub.models._types import utcnow
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
        grouped: dict[str, dict[frozenset[str], list[str]]] = {}
        versions: set[int] = set()
        for (resource, record_id), seen in sorted(self.records.items(), key=_by_key):
            groups = grouped.setdefault(resource, {})
            groups.setdefault(seen.fields, []).append(str(record_id))
            if seen.policy_version is not None:
                versions.add(seen.policy_version)
        disclosed = {
            resource: [{"fields": sorted(names), "ids": ids} for names, ids in groups.items()]
            for resource, groups in grouped.items()
        }
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

    def disclosure_rows(self, event_seq: int) -> list[tuple[Any, ...]]:
        """One :class:`Disclosure` row per record disclosed, as values in the order of
        :data:`DISCLOSURE_COLUMNS` (``fields`` a sorted tuple)."""
        org, client = self.principal.organization_slug, self.principal.client_id
        ordered: dict[frozenset[str], tuple[str, ...]] = {}
        rows = []
        ids = _ordered_ids(len(self.records))
        for id_, ((resource, record_id), seen) in zip(ids, self.records.items(), strict=True):
            fields = ordered.get(seen.fields)
            if fields is None:
                fields = ordered[seen.fields] = tuple(sorted(seen.fields))
            rows.append(
                (
                    id_,
                    event_seq,
                    self.at,
                    seen.customer_id,
                    org,
                    client,
                    resource,
                    record_id,
                    fields,
                    seen.policy_version,
                )
            )
        return rows


def _ordered_ids(count: int) -> list[uuid.UUID]:
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
    return [uuid.UUID(int=head | ((start + n) & mask)) for n in range(count)]


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
    """Append one ``read`` event per non-empty collector, and its disclosure rows, in the
    session's transaction (one chain lock for the whole batch); returns events written."""
    reads = [r for r in reads if r.records]
    if not reads:
        return 0
    events = await audit.append_all(session, [r.entry() for r in reads])
    rows = [row for r, e in zip(reads, events, strict=True) for row in r.disclosure_rows(e.seq)]
    connection = await session.connection()
    dialect = connection.dialect
    await connection.exec_driver_sql(_insert_sql(dialect.paramstyle), _bind(dialect.name, rows))
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
    bound = []
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
                    id_.hex,
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
                (id_, seq, at, customer_id, org, client, resource, record_id, encoded, version)
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
        return written

    async def run(self) -> None:
        """Flush on every tick or full batch until cancelled; errors are logged and
        retried (a database hiccup must not stop recording for the process's life)."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.interval)
            self._wake.clear()
            try:
                await self.flush()
            except (SQLAlchemyError, OSError):
                logger.exception("audit: writing partner reads failed; retrying")

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


async def disclosures_of(session: AsyncSession, customer_id: uuid.UUID) -> list[DisclosureView]:
    """Every disclosure of one customer, oldest first (no access check: callers check)."""
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
        .where(col(Disclosure.customer_id) == customer_id)
        .order_by(col(Disclosure.event_seq), col(Disclosure.resource), col(Disclosure.record_id))
    )
    return [DisclosureView(*row) for row in (await session.execute(statement)).all()]
