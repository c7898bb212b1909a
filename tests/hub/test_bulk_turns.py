"""The turns a bulk insert gives the event loop (hub.bulk.take_turn): every
:data:`hub.bulk.TURN_EVERY` rows, but none while the writer holds the audit chain's lock
(the outbox's events), which every other batch waits for."""

from __future__ import annotations

import uuid

import pytest

from hub import bulk, outbox
from hub.db import Database
from hub.models import OutboxEvent
from hub.models._types import utcnow
from hub.outbox import Operation

_ROWS = bulk.TURN_EVERY + 50


async def _counted(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    turns = [0]
    take_turn = bulk.take_turn

    async def counted() -> None:
        turns[0] += 1
        await take_turn()

    monkeypatch.setattr(bulk, "take_turn", counted)
    return turns


async def test_the_outbox_gives_no_turn_under_the_lock(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    turns = await _counted(monkeypatch)
    events = [(uuid.uuid4(), ["kind", "text"], None) for _ in range(_ROWS)]
    async with db.transaction() as session:
        numbers = await outbox.emit_batch(session, "Feedback", Operation.CREATE, events, actor="t")
    assert len(numbers) == _ROWS
    assert turns == [0]


async def test_a_bulk_insert_gives_turns_otherwise(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    turns = await _counted(monkeypatch)
    table = OutboxEvent.__table__  # type: ignore[attr-defined]
    names = ("position", "resource", "record_id", "operation", "fields", "version", "actor", "at")
    now = utcnow()
    rows = [
        (n, "Feedback", uuid.uuid4(), "create", ["kind"], None, "t", now)
        for n in range(1, _ROWS + 1)
    ]
    async with db.transaction() as session:
        await bulk.insert_records(session, table, names, rows)
    # PostgreSQL's COPY processes the rows in a loop that gives turns; SQLite's
    # executemany has no loop of ours.
    assert turns == [1 if db.engine.dialect.name == "postgresql" else 0]
