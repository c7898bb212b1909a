"""Migration 0015 (the disclosure index: one row per read event on PostgreSQL, its
customers in a GIN-indexed ``uuid[]``; one per event and customer on SQLite), up and
down on both backends; the index is rebuilt from the events after either."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import insert, inspect, select
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from hub import disclosures
from hub.db import Database, make_engine
from hub.migrate import alembic_config, ensure_current
from hub.models import AuditEvent, Disclosure
from hub.models._types import utcnow
from tests.postgres import scratch_database


@pytest.fixture(params=["sqlite", "postgresql"])
async def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database on each backend."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}"
        return
    async with scratch_database("hub_disclosure") as url:
        yield url


def _shape(sync_conn: Connection) -> tuple[list[str], dict[str, str]]:
    """The disclosure table's columns, and its indexes with their access method."""
    inspector = inspect(sync_conn)
    columns = [c["name"] for c in inspector.get_columns("disclosure")]
    indexes = {
        i["name"] or "": str(i.get("dialect_options", {}).get("postgresql_using", "btree"))
        for i in inspector.get_indexes("disclosure")
    }
    return columns, indexes


async def shape(url: str) -> tuple[list[str], dict[str, str]]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(_shape)
    finally:
        await engine.dispose()


async def test_0015_up_and_down_and_the_index_rebuilt_from_the_events(fresh_url: str) -> None:
    await ensure_current(fresh_url, auto_upgrade=True)
    postgres = fresh_url.startswith("postgresql")
    columns, indexes = await shape(fresh_url)
    assert columns == [
        "id",
        "event_seq",
        "at",
        "organization",
        "client",
        "policy_version",
        "customer_ids",
    ]
    assert indexes == {"ix_disclosure_customer_ids": "gin" if postgres else "btree"}

    customers = sorted(str(uuid.uuid4()) for _ in range(3))
    database = Database(make_engine(fresh_url))
    try:
        async with database.transaction() as session:
            # index_pending reads the events' columns only, not the chain.
            await session.execute(
                insert(AuditEvent),
                [
                    {
                        "id": uuid.uuid4(),
                        "seq": 1,
                        "at": utcnow(),
                        "actor": "acme/c",
                        "organization": "acme",
                        "client": "c",
                        "action": "read",
                        "target": "operation:Page",
                        "details": {"policy_version": 1, "customers": customers},
                        "prev_hash": "0" * 64,
                        "hash": "1" * 64,
                    }
                ],
            )
            assert await disclosures.index_pending(session) == 1
    finally:
        await database.dispose()

    config = alembic_config(fresh_url)
    await asyncio.to_thread(command.downgrade, config, "0014")
    columns, indexes = await shape(fresh_url)
    assert set(columns) == {
        "id",
        "event_seq",
        "at",
        "customer_id",
        "organization",
        "client",
        "policy_version",
    }
    assert indexes == {"ix_disclosure_customer_id": "btree", "ix_disclosure_event_seq": "btree"}

    await asyncio.to_thread(command.upgrade, config, "head")
    database = Database(make_engine(fresh_url))
    try:
        async with database.transaction() as session:
            assert (await session.execute(select(Disclosure))).scalars().all() == []
            assert await disclosures.index_pending(session) == 1  # rebuilt from the event
        async with database.session() as session:
            rows = (await session.execute(select(Disclosure))).scalars().all()
    finally:
        await database.dispose()
    assert sorted(str(c) for row in rows for c in row.customer_ids) == customers
    assert len(rows) == (1 if postgres else 3)
