"""Partner read disclosures (hub.disclosures): the per-request collector and the batched
background writer. The end-to-end behaviour through GraphQL is in
tests/schema/test_audit_admin.py."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
from sqlalchemy import delete, func, select
from sqlmodel import col

from hub import audit, disclosures
from hub.access import REMOTE, WITHHELD
from hub.db import Database, make_engine
from hub.models import AuditAnchor, AuditEvent, Disclosure, OrgKind
from hub.principal import Principal


def principal(kind: OrgKind = OrgKind.DISTRIBUTOR, slug: str = "acme") -> Principal:
    return Principal(
        client_id=f"{slug}-client",
        organization_id=uuid.uuid4(),
        organization_slug=slug,
        organization_kind=kind,
        scopes=frozenset({"customers:read", "feedback:read"}),
    )


@pytest.fixture(autouse=True)
async def empty_log(db: Database) -> None:
    async with db.transaction() as session:
        await session.execute(delete(Disclosure))
        await session.execute(delete(AuditEvent))
        await session.execute(delete(AuditAnchor))


def customer_row(customer_id: uuid.UUID) -> dict[str, Any]:
    return {"id": customer_id, "name": "Ada", "email": "ada@example.com"}


def read_of(
    who: Principal, customers: int = 1, operation: str = "Page"
) -> disclosures.ReadCollector:
    reads = disclosures.ReadCollector(who, operation, disclosures.query_hash("{ x }"))
    for _ in range(customers):
        row = customer_row(uuid.uuid4())
        reads.note("Customer", 1, row, MappingProxyType({"id": row["id"], "name": "Ada"}))
    return reads


async def count(db: Database, model: Any) -> int:
    async with db.session() as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


async def index_rows(db: Database) -> list[Disclosure]:
    async with db.session() as session:
        return list((await session.execute(select(Disclosure))).scalars().all())


async def named(db: Database) -> int:
    """Customers the index names, one per event and customer (however it stores them)."""
    return sum(len(row.customer_ids) for row in await index_rows(db))


def grouped(db: Database) -> bool:
    """Whether the backend keeps one index row per event (all its customers)."""
    return db.engine.dialect.name in disclosures.index.GROUPED


# --- the collector ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "enabled", "records"),
    [
        (OrgKind.DISTRIBUTOR, True, True),
        (OrgKind.SUPPLIER, True, True),
        (OrgKind.VENDOR, True, True),
        (OrgKind.DISTRIBUTOR, False, False),
        (OrgKind.DEPARTMENT, True, False),
        (OrgKind.OPERATOR, True, False),
    ],
)
def test_only_partner_requests_are_collected(kind: OrgKind, enabled: bool, records: bool) -> None:
    who = principal(kind)
    with disclosures.collect(who, operation="Op", query="{ x }", enabled=enabled) as reads:
        assert (reads is not None) is records
        assert (disclosures.recording(who) is not None) is records
    assert disclosures.recording(who) is None  # closed with the block


def test_projections_for_another_principal_are_not_attributed() -> None:
    who, other = principal(), principal(slug="rival")
    with disclosures.collect(who, operation=None, query="{ x }") as reads:
        assert reads is not None
        assert disclosures.recording(other) is None
        assert disclosures.recording(who) is reads


def test_note_merges_fields_and_finds_the_customer_in_the_raw_row() -> None:
    who = principal(OrgKind.SUPPLIER)
    customer, feedback = uuid.uuid4(), uuid.uuid4()
    reads = disclosures.ReadCollector(who, "Op", "h")
    raw = {"id": feedback, "customer_id": customer, "text": "t", "product": "widget"}
    # A supplier's projection carries a pseudonym, not the customer id.
    reads.note(
        "Feedback",
        3,
        raw,
        MappingProxyType({"id": feedback, "customer_ref": "p-1", WITHHELD: frozenset({"x"})}),
    )
    reads.note("Feedback", 3, raw, MappingProxyType({"id": feedback, "text": "t"}))
    entry = reads.entry()
    details = audit.normalise_details(entry.details)
    assert disclosures.records_of_event(details) == [
        ("Feedback", str(feedback), str(customer), ("customer_ref", "id", "text"))
    ]
    for dialect in ("postgresql", "sqlite"):
        rows = disclosures.rows_of_event(
            7, reads.at, "acme", "acme-client", details, dialect=dialect
        )
        assert len(rows) == 1  # one index row per event (and customer, on SQLite)
        row = dict(zip(disclosures.DISCLOSURE_COLUMNS, rows[0], strict=True))
        assert row["customer_ids"] == [customer]
        assert row["event_seq"] == 7
        assert (row["organization"], row["client"], row["policy_version"]) == (
            "acme",
            "acme-client",
            3,
        )
    assert reads.customer_ids == [customer]


def test_postgresql_keeps_a_row_per_event_sqlite_a_row_per_customer() -> None:
    a, b = sorted((uuid.uuid4() for _ in range(2)), key=str)
    details = {"policy_version": 2, "customers": [str(a), str(b)]}
    at = disclosures.ReadCollector(principal(), None, "h").at
    grouped_rows = disclosures.rows_of_event(9, at, "o", "c", details, dialect="postgresql")
    assert grouped_rows == [(9 << 24, 9, at, "o", "c", 2, [a, b])]
    rows = disclosures.rows_of_event(9, at, "o", "c", details, dialect="sqlite")
    assert rows == [(9 << 24 | 1, 9, at, "o", "c", 2, [a]), (9 << 24 | 2, 9, at, "o", "c", 2, [b])]


def test_the_internal_markers_are_those_of_the_access_module() -> None:
    assert frozenset({WITHHELD, REMOTE}) == disclosures._MARKERS


def test_the_event_groups_records_by_the_fields_they_carried() -> None:
    who = principal()
    reads = disclosures.ReadCollector(who, None, disclosures.query_hash("{ customers }"))
    a, b, c = sorted((uuid.uuid4() for _ in range(3)), key=str)
    for customer_id in (a, b):
        reads.note("Customer", 2, {"id": customer_id}, {"id": customer_id, "name": "n"})
    reads.note("Customer", 2, {"id": c}, {"id": c, "name": "n", "email": "e"})
    entry = reads.entry()
    assert (entry.action, entry.target, entry.actor) == (
        "read",
        "operation:(anonymous)",
        "acme/acme-client",
    )
    assert entry.details == {
        "operation": None,
        "query_sha256": disclosures.query_hash("{ customers }"),
        "policy_version": 2,
        "customers": [str(a), str(b), str(c)],
        "disclosed": {
            "Customer": [
                {"fields": ["id", "name"], "ids": [str(a), str(b)]},
                {"fields": ["email", "id", "name"], "ids": [str(c)]},
            ]
        },
    }


# --- the writer -------------------------------------------------------------------------


async def test_a_batch_is_one_transaction_with_consecutive_events(db: Database) -> None:
    writer = disclosures.DisclosureWriter(db, interval=60, batch_size=100)
    reads = [read_of(principal(), customers=3) for _ in range(5)]
    for item in reads:
        writer.submit(item)
    writer.submit(disclosures.ReadCollector(principal(), "Empty", "h"))  # nothing emitted
    assert writer.pending == 5
    assert await count(db, AuditEvent) == 0  # nothing until a tick or a flush
    assert await writer.flush() == 5
    assert writer.pending == 0
    # The index follows the events (built when idle, or before a report).
    assert await count(db, Disclosure) == 0
    assert writer.unindexed == 5
    assert await writer.index() == 5
    assert (writer.unindexed, await writer.index()) == (0, 0)
    assert writer._appended == {}  # what it kept of the events for the index is let go
    async with db.session() as session:
        events = (await session.execute(select(AuditEvent).order_by(col(AuditEvent.seq)))).all()
        assert await audit.verify_chain(session) == (5, None)
    stored = await index_rows(db)
    assert [e[0].seq for e in events] == [1, 2, 3, 4, 5]
    assert len(stored) == (5 if grouped(db) else 15)
    assert await named(db) == 15
    by_seq: dict[int, list[uuid.UUID]] = {}
    for row in sorted(stored, key=lambda row: row.id):
        by_seq.setdefault(row.event_seq, []).extend(row.customer_ids)
    for event, item in zip(events, reads, strict=True):
        assert by_seq[event[0].seq] == item.customer_ids  # in the event's order
    # Written with driver-level values: read back through the column types, they round-trip.
    first = next(row for row in stored if row.event_seq == 1)
    assert (first.at, first.organization, first.client) == (reads[0].at, "acme", "acme-client")
    assert first.policy_version == 1
    assert first.id >> 24 == 1


async def test_a_full_batch_is_written_without_waiting_for_the_interval(db: Database) -> None:
    writer = disclosures.DisclosureWriter(db, interval=60, batch_size=3)
    writer.start()
    try:
        for _ in range(3):
            writer.submit(read_of(principal()))
        for _ in range(100):
            if await count(db, AuditEvent) == 3:
                break
            await asyncio.sleep(0.02)
        assert await count(db, AuditEvent) == 3
    finally:
        await writer.stop()


async def test_the_interval_writes_a_partial_batch(db: Database) -> None:
    writer = disclosures.DisclosureWriter(db, interval=0.05, batch_size=1000)
    writer.start()
    try:
        writer.submit(read_of(principal()))
        for _ in range(100):
            if await count(db, AuditEvent) == 1:
                break
            await asyncio.sleep(0.02)
        assert await count(db, AuditEvent) == 1
    finally:
        await writer.stop()


async def test_the_index_is_built_when_idle_and_never_twice(db: Database) -> None:
    writer = disclosures.DisclosureWriter(db, interval=0.05, batch_size=1000)
    writer.start()
    try:
        writer.submit(read_of(principal(), customers=4))
        # A quiet tick after the write builds the index.
        for _ in range(200):
            if await named(db) == 4:
                break
            await asyncio.sleep(0.02)
        assert await named(db) == 4
        assert writer.unindexed == 0
    finally:
        await writer.stop()

    # Written but not yet indexed (no tick has run): a report's indexing adds them once.
    writer = disclosures.DisclosureWriter(db, interval=60, batch_size=1000)
    for _ in range(2):
        writer.submit(read_of(principal(), customers=1))
    await writer.flush()
    assert (await named(db), writer.unindexed) == (4, 2)
    async with db.transaction() as session:  # indexing twice never repeats a row
        assert await disclosures.index_pending(session) == 2
    async with db.transaction() as session:
        assert await disclosures.index_pending(session) == 0
    assert await named(db) == 6
    # The writer's own indexing finds them done, and lets go of what it kept for them.
    assert await writer.index() == 0
    assert (writer.unindexed, writer._appended) == (0, {})


async def test_stop_writes_what_is_pending(db: Database) -> None:
    writer = disclosures.DisclosureWriter(db, interval=60, batch_size=1000)
    writer.start()
    writer.submit(read_of(principal()))
    writer.submit(read_of(principal()))
    await writer.stop()
    assert await count(db, AuditEvent) == 2


async def test_concurrent_flushes_never_fork_or_repeat_the_chain(db: Database) -> None:
    writer = disclosures.DisclosureWriter(db, interval=60, batch_size=7)
    for _ in range(40):
        writer.submit(read_of(principal()))
    await asyncio.gather(writer.flush(), writer.flush(), writer.flush())
    async with db.session() as session:
        assert await audit.verify_chain(session) == (40, None)


async def test_a_failed_write_is_kept_and_retried(db: Database, tmp_path: Path) -> None:
    # A database whose file cannot be opened: every write fails.
    broken = Database(make_engine(f"sqlite+aiosqlite:///{tmp_path}/missing/dir/hub.db"))
    writer = disclosures.DisclosureWriter(broken, interval=60, batch_size=10)
    items = [read_of(principal()) for _ in range(3)]
    for item in items:
        writer.submit(item)
    try:
        with pytest.raises(Exception, match="unable to open"):
            await writer.flush()
        assert writer.pending == 3  # nothing lost, order kept
    finally:
        await broken.dispose()
    writer.database = db  # the database is back
    assert await writer.flush() == 3
    async with db.session() as session:
        targets = [
            row[0]
            for row in await session.execute(
                select(col(AuditEvent.details)).order_by(col(AuditEvent.seq))
            )
        ]
    assert [t["customers"] for t in targets] == [
        [str(c) for c in item.customer_ids] for item in items
    ]


def test_the_pending_queue_is_bounded(caplog: pytest.LogCaptureFixture) -> None:
    writer = disclosures.DisclosureWriter(
        None,  # type: ignore[arg-type]  # never written
        interval=60,
        batch_size=1000,
        max_pending=3,
    )
    items = [read_of(principal()) for _ in range(5)]
    for item in items:
        writer.submit(item)
    assert writer.pending == 3
    assert writer.dropped == 2
    assert writer._pending == items[2:]  # the oldest go first
    assert "dropped unrecorded" in caplog.text


def page_read(who: Principal, customers: list[uuid.UUID]) -> disclosures.ReadCollector:
    """A page of ``customers`` with two feedback records each, and one feedback record
    alone (a disclosure about its customer too)."""
    reads = disclosures.ReadCollector(who, "Page", disclosures.query_hash("{ x }"))
    for customer in customers:
        reads.note("Customer", 4, customer_row(customer), MappingProxyType({"id": 1, "name": 2}))
        for text in ("a", "b"):
            raw = {"id": uuid.uuid4(), "customer_id": customer}
            reads.note("Feedback", 4, raw, MappingProxyType({"id": 1, "text": text}))
    alone = uuid.uuid4()
    reads.note("Feedback", 4, {"id": uuid.uuid4(), "customer_id": alone}, {"kind": 1})
    return reads


def as_values(rows: list[Disclosure]) -> set[tuple[Any, ...]]:
    return {
        (
            row.id,
            row.event_seq,
            row.at,
            row.organization,
            row.client,
            row.policy_version,
            tuple(row.customer_ids),
        )
        for row in rows
    }


async def expected_index(db: Database) -> set[tuple[Any, ...]]:
    """The index rows_of_event describes for every read event of the log."""
    async with db.session() as session:
        events = (await session.execute(select(AuditEvent))).scalars().all()
    dialect = db.engine.dialect.name
    return {
        (*row[:-1], tuple(row[-1]))
        for event in events
        for row in disclosures.rows_of_event(
            event.seq,
            event.at,
            event.organization or "",
            event.client or "",
            event.details,
            dialect=dialect,
        )
    }


async def test_the_index_holds_each_events_rows_as_rows_of_event_gives_them(db: Database) -> None:
    # The database expands events into index rows: its rows must be those rows_of_event
    # describes, ids derived from the event, on both backends.
    customers = [uuid.uuid4() for _ in range(3)]
    reads = page_read(principal(), customers)
    async with db.transaction() as session:
        assert await disclosures.write_reads(session, [reads]) == 1
        assert await disclosures.index_pending(session) == 1
    async with db.session() as session:
        event = (await session.execute(select(AuditEvent))).scalar_one()
    stored = await index_rows(db)
    expected = await expected_index(db)
    assert {c for row in expected for c in row[-1]} == {*customers, *reads.customer_ids}
    assert as_values(stored) == expected
    assert len(stored) == (1 if grouped(db) else 4)
    assert {row.id >> 24 for row in stored} == {event.seq}


async def test_the_writers_index_from_memory_equals_the_index_rebuilt_from_the_log(
    db: Database,
) -> None:
    # The writer indexes the events it appended from what it appended (on PostgreSQL),
    # others' events from the log, in one go: the same rows as rows_of_event, and as a
    # rebuild from the log alone.
    writer = disclosures.DisclosureWriter(db, interval=60, batch_size=100)
    rival = principal(OrgKind.SUPPLIER, slug="rival")
    for _ in range(3):
        for _ in range(2):
            writer.submit(page_read(principal(), [uuid.uuid4() for _ in range(3)]))
        await writer.flush()
        async with db.transaction() as session:  # another writer's (or replica's) event
            await disclosures.write_reads(session, [page_read(rival, [uuid.uuid4()])])
    assert len(writer._appended) == (6 if grouped(db) else 0)
    assert await writer.index() == 9
    assert writer._appended == {}
    from_writer = as_values(await index_rows(db))
    assert from_writer == await expected_index(db)
    async with db.transaction() as session:
        await session.execute(delete(Disclosure))
    async with db.transaction() as session:  # resumable: a part, then the rest
        assert await disclosures.index_pending(session, limit=4) == 4
    async with db.transaction() as session:
        assert await disclosures.index_pending(session) == 5
    assert as_values(await index_rows(db)) == from_writer


async def test_a_report_finds_the_events_of_any_of_several_customers(db: Database) -> None:
    a, b, c, d = (uuid.uuid4() for _ in range(4))
    reads = [page_read(principal(), customers) for customers in ([a, b], [c], [b, c], [d])]
    async with db.transaction() as session:
        await disclosures.write_reads(session, reads)
        await disclosures.index_pending(session)
        dialect = (await session.connection()).dialect.name
        found = disclosures.index.events_naming(dialect, [a, c])
        seqs = sorted(set((await session.execute(found)).scalars()))
        none = disclosures.index.events_naming(dialect, [uuid.uuid4()])
        assert list((await session.execute(none)).scalars()) == []
    assert seqs == [1, 2, 3]


async def test_repointing_a_merged_customer_keeps_the_counts(db: Database) -> None:
    survivor, duplicate, other = (uuid.uuid4() for _ in range(3))
    reads = [
        page_read(principal(), customers)
        for customers in ([duplicate, other], [survivor, duplicate], [other])
    ]
    async with db.transaction() as session:
        await disclosures.write_reads(session, reads)
        await disclosures.index_pending(session)
    before = await named(db)
    async with db.transaction() as session:
        # The events naming the duplicate (both named it, one the survivor too).
        assert await disclosures.repoint(session, duplicate, survivor) == 2
    async with db.session() as session:
        dialect = (await session.connection()).dialect.name
        gone = disclosures.index.events_naming(dialect, [duplicate])
        assert list((await session.execute(gone)).scalars()) == []
        now = disclosures.index.events_naming(dialect, [survivor])
        assert sorted(set((await session.execute(now)).scalars())) == [1, 2]
        counted = select(func.sum(disclosures.customer_count(col(Disclosure.customer_ids))))
        assert (await session.execute(counted)).scalar_one() == before
    assert await named(db) == before  # the second event names the survivor twice
    async with db.transaction() as session:
        assert await disclosures.repoint(session, duplicate, survivor) == 0


async def test_reads_submitted_during_a_flush_wait_for_the_next_one(db: Database) -> None:
    # Draining until empty would give every request completing during a write a
    # transaction of its own; they wait and batch instead.
    writer = disclosures.DisclosureWriter(db, interval=60, batch_size=100)
    writer.submit(read_of(principal()))
    flushing = asyncio.create_task(writer.flush())
    await asyncio.sleep(0)  # the flush has taken what was pending and is writing it
    writer.submit(read_of(principal()))
    writer.submit(read_of(principal()))
    assert await flushing == 1
    assert writer.pending == 2
    assert await writer.flush() == 2
    assert await count(db, AuditEvent) == 3
