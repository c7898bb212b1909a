"""Bulk emission to the outbox (:func:`hub.outbox.emit_many`, a ``COPY`` on PostgreSQL
from :data:`hub.bulk.COPY_FROM` events): the same events as :func:`~hub.outbox.emit_all`,
numbered after the newest under the same lock, without gaps, in commit order; and rolled
back with the transaction. On both backends."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import select
from sqlmodel import col

from hub import outbox
from hub.bulk import COPY_FROM
from hub.db import Database
from hub.models import OutboxEvent
from hub.outbox import Change, Operation


def _changes(count: int) -> list[Change]:
    return [
        Change(
            "Feedback",
            uuid.uuid4(),
            Operation.CREATE,
            ("channel", "kind", "text") if n % 2 else ("kind",),
            version=None if n % 3 else n,
        )
        for n in range(count)
    ]


async def _events(db: Database, after: int = 0) -> list[outbox.Event]:
    async with db.session() as session:
        return await outbox.changes_since(session, after, limit=10_000)


@pytest.mark.parametrize("count", [3, COPY_FROM + 70])
async def test_emit_many_writes_what_emit_all_writes_numbered_after_the_newest(
    db: Database, count: int
) -> None:
    async with db.transaction() as session:
        await outbox.emit_all(session, _changes(2), actor="before")
    many, every = _changes(count), _changes(count)
    async with db.transaction() as session:
        positions = await outbox.emit_many(session, many, actor="bulk")
    async with db.transaction() as session:
        await outbox.emit_all(session, every, actor="bulk")
    events = await _events(db)
    assert [e.position for e in events] == list(range(1, 2 * count + 3))
    assert positions == list(range(3, count + 3))
    got = [(e.resource, e.record_id, e.operation, e.fields, e.version, e.actor) for e in events]
    want = [
        (c.resource, c.record_id, c.operation, c.fields, c.version, "bulk") for c in many + every
    ]
    assert got[2:] == want
    async with db.session() as session:
        stamps = (
            await session.execute(
                select(col(OutboxEvent.at)).where(col(OutboxEvent.position).in_(positions))
            )
        ).scalars()
        assert len(set(stamps)) == 1  # one write, one time


async def test_a_rolled_back_bulk_emission_leaves_neither_events_nor_a_hole(
    db: Database,
) -> None:
    async def fail_after_emitting() -> None:
        async with db.transaction() as session:
            await outbox.emit_many(session, _changes(COPY_FROM + 5), actor="bulk")
            raise RuntimeError("the write failed after its events")

    with pytest.raises(RuntimeError):
        await fail_after_emitting()
    async with db.transaction() as session:
        await outbox.emit_many(session, _changes(COPY_FROM), actor="bulk")
    assert [e.position for e in await _events(db)] == list(range(1, COPY_FROM + 1))
    async with db.session() as session:
        assert await outbox.emit_many(session, [], actor="bulk") == []


async def test_concurrent_bulk_emissions_number_in_commit_order_without_gaps(
    db: Database,
) -> None:
    async def emit(actor: str) -> list[int]:
        async with db.transaction() as session:
            return await outbox.emit_many(session, _changes(COPY_FROM + 10), actor=actor)

    first, second = await asyncio.gather(emit("a"), emit("b"))
    events = await _events(db)
    assert [e.position for e in events] == list(range(1, 2 * (COPY_FROM + 10) + 1))
    # Each writer's events form one unbroken run (the lock is held until commit).
    for positions in (first, second):
        assert positions == list(range(positions[0], positions[0] + COPY_FROM + 10))
