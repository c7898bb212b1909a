"""A sql connector end to end: a support desk's database (SQLite and PostgreSQL) read into
feedback through the runner, in batches cutting through rows that share a cursor value."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from hub.db import Database
from hub.sync.config import parse_spec, save_connector
from tests.connectors.test_sql import execute, source_url
from tests.hub.sync_helpers import customers, feedback_count, runner, support_org

__all__ = ["source_url"]  # the fixture, shared with the connector's own tests
T0 = datetime(2026, 2, 1, 9, 0, tzinfo=UTC)


async def test_a_sql_connector_reads_each_row_once(
    db: Database, source_url: str, tmp_path: Path
) -> None:
    del tmp_path
    await support_org(db)
    await customers(db, 3)
    sqlite = source_url.startswith("sqlite")
    await execute(
        source_url,
        f"CREATE TABLE ticket (id INTEGER PRIMARY KEY, email TEXT, body TEXT, "
        f"updated_at {'TEXT' if sqlite else 'TIMESTAMPTZ'})",
    )

    async def add(first: int, last: int, at: datetime) -> None:
        rows = [
            {
                "id": n,
                "email": f"person{n % 3}@example.com",
                "body": f"Ticket {n}",
                "at": at.isoformat() if sqlite else at,
            }
            for n in range(first, last)
        ]
        await execute(source_url, "INSERT INTO ticket VALUES (:id, :email, :body, :at)", rows=rows)

    await add(1, 8, T0)  # seven rows, one cursor value
    async with db.transaction() as session:
        await save_connector(
            session,
            parse_spec(
                {
                    "name": "desk-db",
                    "kind": "sql",
                    "resource": "feedback",
                    "organization": "support",
                    "config": {
                        "url": source_url,
                        "query": "SELECT * FROM ticket",
                        "cursor": "updated_at",
                        "key": "id",
                        "page": 3,
                    },
                    "mapping": {
                        "external_id": "id",
                        "customer_email": "email",
                        "text": "body",
                        "channel": {"from": "via", "default": "chat"},
                        "kind": {"from": "type", "default": "question"},
                    },
                }
            ),
        )
    first = await runner(db, batch_size=2).run("desk-db")
    assert first.status == "succeeded", first.error
    assert (first.counts.read, first.counts.created) == (7, 7)
    await add(8, 10, T0 + timedelta(minutes=5))
    second = await runner(db, batch_size=2).run("desk-db")
    assert (second.counts.read, second.counts.created) == (2, 2)
    assert await feedback_count(db) == 9
