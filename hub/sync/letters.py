"""A batch's dead letters: one per source position, written, updated, reopened or resolved
in the batch's transaction (docs/sync.md, "Dead letters").

A record that could not be stored leaves a letter at its position (why, the cursor, the
raw record, sealed); a later run meeting the same position again updates that letter
(``attempts``, reopened if it was resolved); a position stored fine resolves its open
letter. On PostgreSQL all of a batch's letters are one statement (:data:`_UPSERT_PG`);
elsewhere, and for the odd batch naming a position twice over, the ORM writes them one
by one (:func:`_each`), the reference the one statement is tested against.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Any

import orjson
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from connectors import Record
from hub.bulk import any_of, fetch_planned_now
from hub.models._types import new_id, utcnow
from hub.models.sync import SyncDeadLetter
from hub.sync.apart import RawData

MAX_POSITION = 300
MAX_REASON = 2000
"""The lengths of the columns a letter's position and reason are cut to."""


def raw_record(record: Record) -> str:
    """The record as read, for its dead letter (JSON text)."""
    if isinstance(record.data, RawData):  # read in a child process: the text is made
        return record.data.text
    return orjson.dumps(dict(record.data), default=str).decode()


async def write_letters(
    session: AsyncSession,
    connector_id: uuid.UUID,
    run_id: uuid.UUID,
    letters: Sequence[tuple[Record, str]],
    fine: Sequence[Record],
) -> None:
    """One dead letter per source position of ``letters`` (a record and why it was not
    stored): a new one, or the one a previous run left there updated and reopened; the
    open letters at the positions of ``fine`` (records stored) resolved."""
    if not letters and not fine:
        return
    if session.get_bind().dialect.name != "postgresql":
        await _each(session, connector_id, run_id, letters, fine)
        return
    resolved = [record.position[:MAX_POSITION] for record in fine]
    if not letters:
        await fetch_planned_now(session, _RESOLVE_PG, utcnow(), connector_id, resolved)
        return
    # The last letter at each position, and how many times the batch names it (each
    # counts as an attempt, as one by one).
    last: dict[str, tuple[Record, str]] = {}
    times: dict[str, int] = {}
    for record, reason in letters:
        position = record.position[:MAX_POSITION]
        last[position] = (record, reason)
        times[position] = times.get(position, 0) + 1
    if not last.keys().isdisjoint(resolved):
        # A position both refused and stored in one batch (a source repeating one): the
        # one statement would touch its row twice; one by one decides, as before.
        await _each(session, connector_id, run_id, letters, fine)
        return
    seal = _sealer(session)
    entries = list(last.items())
    await session.flush()  # the ORM's pending rows first, as a flush before a statement
    await fetch_planned_now(
        session,
        _UPSERT_PG,
        utcnow(),
        connector_id,
        resolved,
        run_id,
        [new_id() for _ in entries],
        [position for position, _ in entries],
        [record.cursor for _, (record, _) in entries],
        [reason[:MAX_REASON] for _, (_, reason) in entries],
        [seal(raw_record(record)) for _, (record, _) in entries],
        [times[position] for position, _ in entries],
    )


_UPSERT_PG = """
WITH resolved AS (
    UPDATE sync_dead_letter SET resolved_at = $1, updated_at = $1
    WHERE connector_id = $2 AND resolved_at IS NULL AND position = ANY($3::varchar[])
)
INSERT INTO sync_dead_letter AS d
    (id, connector_id, run_id, position, cursor, reason, record, attempts,
     created_at, updated_at, resolved_at)
SELECT l.id, $2, $4, l.position, l.cursor, l.reason, l.record, l.attempts, $1, $1, NULL
FROM unnest($5::uuid[], $6::varchar[], $7::text[], $8::varchar[], $9::text[], $10::int[])
    AS l(id, position, cursor, reason, record, attempts)
ON CONFLICT (connector_id, position) DO UPDATE SET
    run_id = excluded.run_id, cursor = excluded.cursor, reason = excluded.reason,
    record = excluded.record, attempts = d.attempts + excluded.attempts,
    updated_at = excluded.updated_at, resolved_at = NULL
"""
"""A batch's letters on PostgreSQL, in one statement where one by one took three (the
letters at the batch's positions read as ORM rows, the new ones inserted and the old
ones updated by a flush, the resolution; 1.8 ms of the hub's CPU a batch, some 1% of
whose records are letters, whatever its size): the open letters at the positions stored
fine resolved (the ``WITH``) and each position's letter written, new or updated and
reopened (``ON CONFLICT`` on the one letter a position has). The two touch different
rows (:func:`write_letters` checks). Planned at each execution, as :data:`_RESOLVE_PG`."""

_RESOLVE_PG = """
UPDATE sync_dead_letter SET resolved_at = $1, updated_at = $1
WHERE connector_id = $2 AND resolved_at IS NULL AND position = ANY($3::varchar[])
"""
"""The open dead letters at a batch's positions stored fine, resolved, on PostgreSQL,
planned for the table as it is now and these positions (:func:`hub.bulk.
fetch_planned_now`). Prepared once, while the table held few letters, the plan compared
every open letter of the connector with every position of the batch: 3 ms a batch at 282
letters, 15 ms at 1,000, growing with each letter a run leaves."""


def _sealer(session: AsyncSession) -> Callable[[str], str]:
    """The ``record`` column's bind step (it seals the text): what an INSERT of the model
    runs on each value, for a statement the driver runs directly."""
    column: Any = SyncDeadLetter.__table__.c.record  # type: ignore[attr-defined]
    process: Callable[[str], str] | None = column.type.bind_processor(session.get_bind().dialect)
    return process if process is not None else str


async def _each(
    session: AsyncSession,
    connector_id: uuid.UUID,
    run_id: uuid.UUID,
    letters: Sequence[tuple[Record, str]],
    fine: Sequence[Record],
) -> None:
    """:func:`write_letters` one letter at a time, through the ORM."""
    now = utcnow()
    if letters:
        positions = [record.position[:MAX_POSITION] for record, _ in letters]
        found = await session.execute(
            select(SyncDeadLetter).where(
                col(SyncDeadLetter.connector_id) == connector_id,
                any_of(session, col(SyncDeadLetter.position), positions),
            )
        )
        existing = {row.position: row for row in found.scalars()}
        for record, reason in letters:
            position = record.position[:MAX_POSITION]
            row = existing.get(position)
            if row is None:
                row = SyncDeadLetter(
                    connector_id=connector_id,
                    run_id=run_id,
                    position=position,
                    cursor=record.cursor,
                    reason=reason[:MAX_REASON],
                    record=raw_record(record),
                )
                existing[position] = row
                session.add(row)
                continue
            row.run_id, row.cursor, row.reason = run_id, record.cursor, reason[:MAX_REASON]
            row.record, row.attempts = raw_record(record), row.attempts + 1
            row.updated_at, row.resolved_at = now, None
    if fine:
        positions = [r.position[:MAX_POSITION] for r in fine]
        if session.get_bind().dialect.name == "postgresql":
            # The letters above first, as the ORM's own statement would autoflush them: a
            # position both refused and stored in the batch ends resolved, as on SQLite.
            await session.flush()
            await fetch_planned_now(session, _RESOLVE_PG, now, connector_id, positions)
        else:
            await session.execute(
                update(SyncDeadLetter)
                .where(
                    col(SyncDeadLetter.connector_id) == connector_id,
                    col(SyncDeadLetter.position).in_(positions),
                    col(SyncDeadLetter.resolved_at).is_(None),
                )
                .values(resolved_at=now, updated_at=now)
            )
    await session.flush()


__all__ = ["MAX_POSITION", "MAX_REASON", "raw_record", "write_letters"]
