"""A batch's dead letters: the one statement PostgreSQL writes them with leaves exactly
what the ORM leaves writing them one by one (on SQLite both are the ORM's)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlmodel import col

from connectors import Record
from hub.db import Database
from hub.models.sync import SyncDeadLetter
from hub.sync import letters
from hub.sync.apart import RawData
from hub.sync.config import parse_spec, save_connector
from hub.sync.lease import take
from hub.sync.runs import start
from tests.hub.sync_helpers import support_org


def bad(line: int, reason: str, **data: Any) -> tuple[Record, str]:
    return Record({"line": line, **data}, f"line {line}", f"c{line}"), reason


def good(line: int) -> Record:
    return Record({"line": line}, f"line {line}", f"c{line}")


# Batches of (letters, records stored fine), in order.
BATCHES: list[tuple[list[tuple[Record, str]], list[Record]]] = [
    (
        [bad(1, "text: must not be empty"), bad(2, "no customer ✓", email="a@example.com")],
        [good(3)],
    ),
    # line 1 again (attempts 2); line 4 twice in one batch (attempts 2, the last one's
    # reason); line 2 stored fine: resolved.
    ([bad(1, "kind: bad"), bad(4, "first"), bad(4, "second")], [good(2), good(5)]),
    # A resolved letter reopened; a letter resolved; a record read in a child process.
    (
        [
            bad(2, "again"),
            (Record(RawData('{"line":6}'), "line 6", "c6"), "from the child"),
        ],
        [good(1)],
    ),
    # A position both refused and stored in one batch (one by one decides).
    ([bad(7, "refused"), bad(8, "refused")], [good(7), good(4)]),
    ([], [good(6), good(9)]),  # letters resolved, none written
    # Letters only: a reason cut to its column; a known letter named twice (attempts 3).
    ([bad(3, "x" * 2500), bad(8, "once"), bad(8, "twice")], []),
    ([], []),
]


async def connector(db: Database, tmp_path: Path, name: str) -> tuple[uuid.UUID, uuid.UUID]:
    async with db.transaction() as session:
        row, _ = await save_connector(
            session,
            parse_spec(
                {
                    "name": name,
                    "kind": "files",
                    "resource": "feedback",
                    "organization": "support",
                    "config": {"path": str(tmp_path)},
                }
            ),
        )
        await take(session, row.id, f"{name}:1:a")
        run, _ = await start(session, row.id, f"{name}:1:a")
    return row.id, run.id


async def written(db: Database, connector_id: uuid.UUID, run_id: uuid.UUID) -> list[Any]:
    async with db.session() as session:
        rows = await session.execute(
            select(SyncDeadLetter)
            .where(col(SyncDeadLetter.connector_id) == connector_id)
            .order_by(col(SyncDeadLetter.position))
        )
        return [
            (
                r.position,
                r.cursor,
                r.reason,
                json.loads(r.record),
                r.attempts,
                r.resolved_at is None,
                r.run_id == run_id,
            )
            for r in rows.scalars()
        ]


async def test_a_batch_s_letters_at_once_are_the_letters_one_by_one(
    db: Database, tmp_path: Path
) -> None:
    await support_org(db)
    at_once = await connector(db, tmp_path, "at-once")
    each = await connector(db, tmp_path, "each")
    for batch_letters, fine in BATCHES:
        async with db.transaction() as session:
            await letters.write_letters(session, *at_once, batch_letters, fine)
        async with db.transaction() as session:
            await letters._each(session, *each, batch_letters, fine)
    expected = await written(db, *each)
    assert await written(db, *at_once) == expected
    # What one by one leaves, for the record (so the comparison compares something).
    shown = {
        position: (reason[:10], attempts, open_)
        for position, _, reason, _, attempts, open_, _ in expected
    }
    assert shown == {
        "line 1": ("kind: bad", 2, False),
        "line 2": ("again", 2, True),
        "line 3": ("x" * 10, 1, True),
        "line 4": ("second", 2, False),
        "line 6": ("from the c", 1, False),
        # Refused and stored in one batch: written, then resolved, on both backends.
        "line 7": ("refused", 1, False),
        "line 8": ("twice", 3, True),
    }
