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
    rows = disclosures.rows_of_event(7, reads.at, "acme", "acme-client", details)
    assert len(rows) == 1  # one index row per event and customer
    row = dict(zip(disclosures.DISCLOSURE_COLUMNS, rows[0], strict=True))
    assert row["customer_id"] == customer
    assert row["event_seq"] == 7
    assert (row["organization"], row["client"], row["policy_version"]) == (
        "acme",
        "acme-client",
        3,
    )
    assert reads.customer_ids == [customer]


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
    # The per-customer index follows the events (built when idle, or before a report).
    assert await count(db, Disclosure) == 0
    assert writer.unindexed == 5
    assert await writer.index() == 5
    assert (writer.unindexed, await writer.index()) == (0, 0)
    async with db.session() as session:
        events = (await session.execute(select(AuditEvent).order_by(col(AuditEvent.seq)))).all()
        stored = (await session.execute(select(Disclosure))).scalars().all()
        assert await audit.verify_chain(session) == (5, None)
    assert [e[0].seq for e in events] == [1, 2, 3, 4, 5]
    assert len(stored) == 15
    by_seq: dict[int, set[uuid.UUID]] = {}
    for row in stored:
        by_seq.setdefault(row.event_seq, set()).add(row.customer_id)
    for event, item in zip(events, reads, strict=True):
        assert by_seq[event[0].seq] == set(item.customer_ids)
    # Written with driver-level values: read back through the column types, they round-trip.
    first = next(row for row in stored if row.event_seq == 1)
    assert (first.at, first.organization, first.client) == (reads[0].at, "acme", "acme-client")
    assert first.policy_version == 1
    assert isinstance(first.id, uuid.UUID)


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
            if await count(db, Disclosure) == 4:
                break
            await asyncio.sleep(0.02)
        assert await count(db, Disclosure) == 4
        assert writer.unindexed == 0
    finally:
        await writer.stop()

    # Written but not yet indexed (no tick has run): a report's indexing adds them once.
    writer = disclosures.DisclosureWriter(db, interval=60, batch_size=1000)
    for _ in range(2):
        writer.submit(read_of(principal(), customers=1))
    await writer.flush()
    assert (await count(db, Disclosure), writer.unindexed) == (4, 2)
    async with db.transaction() as session:  # indexing twice never repeats a row
        assert await disclosures.index_pending(session) == 2
    async with db.transaction() as session:
        assert await disclosures.index_pending(session) == 0
    assert await count(db, Disclosure) == 6


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


async def test_the_index_holds_each_events_rows_as_rows_of_event_gives_them(db: Database) -> None:
    # The database expands events into index rows (one per event and customer): its rows
    # must be those rows_of_event describes, ids derived from the event, on both backends.
    who = principal()
    reads = disclosures.ReadCollector(who, "Page", disclosures.query_hash("{ x }"))
    customers = [uuid.uuid4() for _ in range(3)]
    for customer in customers:
        reads.note("Customer", 4, customer_row(customer), MappingProxyType({"id": 1, "name": 2}))
        for text in ("a", "b"):
            raw = {"id": uuid.uuid4(), "customer_id": customer}
            reads.note("Feedback", 4, raw, MappingProxyType({"id": 1, "text": text}))
    # Feedback alone is a disclosure about its customer too.
    alone = uuid.uuid4()
    reads.note("Feedback", 4, {"id": uuid.uuid4(), "customer_id": alone}, {"kind": 1})
    async with db.transaction() as session:
        assert await disclosures.write_reads(session, [reads]) == 1
        assert await disclosures.index_pending(session) == 1
    async with db.session() as session:
        event = (await session.execute(select(AuditEvent))).scalar_one()
        stored = (await session.execute(select(Disclosure))).scalars().all()
    expected = disclosures.rows_of_event(event.seq, event.at, "acme", "acme-client", event.details)
    assert {row[3] for row in expected} == {*customers, alone}
    got = {
        (
            row.id.int,
            row.event_seq,
            row.at,
            row.customer_id,
            row.organization,
            row.client,
            row.policy_version,
        )
        for row in stored
    }
    assert got == set(expected)
    assert {row.id.int >> 64 for row in stored} == {event.seq}


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
