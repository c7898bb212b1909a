"""The sql source against real SQLite and PostgreSQL source databases: pages in
(cursor, key) order, rows sharing a cursor value across a boundary neither lost nor
repeated, resuming after any record, new and changed rows read next time."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from connectors import REGISTRY, ConfigError, Record, SourceError, TransientSourceError
from connectors.sql import SqlSource
from tests.postgres import scratch_database

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
async def source_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """An empty source database of the system being synced (not the hub's)."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'desk.db'}"
        return
    async with scratch_database("desk") as url:
        yield url


async def execute(
    url: str, *statements: str, rows: Sequence[Mapping[str, Any]] | None = None
) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            for statement in statements:
                await conn.execute(text(statement), list(rows) if rows else {})
    finally:
        await engine.dispose()


async def tickets(url: str, rows: list[tuple[int, datetime, str]]) -> None:
    timestamp = "TEXT" if url.startswith("sqlite") else "TIMESTAMPTZ"
    await execute(
        url,
        f"CREATE TABLE IF NOT EXISTS ticket (id INTEGER PRIMARY KEY, updated_at {timestamp}, body TEXT)",
    )
    stored = [
        {"id": i, "at": at.isoformat() if url.startswith("sqlite") else at, "body": body}
        for i, at, body in rows
    ]
    await execute(
        url, "INSERT INTO ticket (id, updated_at, body) VALUES (:id, :at, :body)", rows=stored
    )


def source(url: str, page: int = 3) -> SqlSource:
    return SqlSource.from_config(
        {
            "url": url,
            "query": "SELECT id, updated_at, body FROM ticket",
            "cursor": "updated_at",
            "key": "id",
            "page": page,
        }
    )


async def read_all(src: SqlSource, cursor: str | None = None) -> list[Record]:
    return [record async for record in src.read(cursor)]


def ids(records: list[Record]) -> list[object]:
    return [r.data["id"] for r in records]


async def test_ties_across_a_boundary_are_neither_lost_nor_repeated(source_url: str) -> None:
    # Ids 2..8 share one cursor value; pages of 3 cut through them twice.
    rows = [(1, T0, "a")] + [(i, T0 + timedelta(minutes=1), f"t{i}") for i in range(8, 1, -1)]
    rows += [(9, T0 + timedelta(minutes=2), "z")]
    await tickets(source_url, rows)
    everything = await read_all(source(source_url))
    assert ids(everything) == [1, 2, 3, 4, 5, 6, 7, 8, 9]
    assert everything[3].position == "id=4"
    # Resuming after any record (a batch committed there, then a failure) reads exactly
    # the rest, whatever page size the next run uses.
    for stop in range(len(everything)):
        rest = await read_all(source(source_url, page=2), everything[stop].cursor)
        assert ids(rest) == ids(everything)[stop + 1 :], stop


async def test_new_and_changed_rows_are_read_next_time(source_url: str) -> None:
    await tickets(source_url, [(1, T0, "a"), (2, T0, "b")])
    first = await read_all(source(source_url))
    checkpoint = first[-1].cursor
    assert await read_all(source(source_url), checkpoint) == []  # a far checkpoint: nothing
    later = T0 + timedelta(hours=1)
    at = later.isoformat() if source_url.startswith("sqlite") else later
    await execute(
        source_url,
        "UPDATE ticket SET body = 'b2', updated_at = :at WHERE id = 2",
        rows=[{"at": at}],
    )
    await tickets(source_url, [(3, T0 - timedelta(days=1), "old"), (4, later, "d")])
    again = await read_all(source(source_url), checkpoint)
    # Row 3 was added with a cursor before the checkpoint: an incremental cursor must
    # grow with every change, or the change is not seen (documented).
    assert ids(again) == [2, 4]
    assert again[0].data["body"] == "b2"


async def test_a_bad_query_or_column_is_a_source_error(source_url: str) -> None:
    await tickets(source_url, [(1, T0, "a")])
    bad = SqlSource.from_config(
        {
            "url": source_url,
            "query": "SELECT id, body FROM ticket",
            "cursor": "updated_at",
            "key": "id",
        }
    )
    with pytest.raises(SourceError, match="the query failed"):
        await read_all(bad)
    missing = SqlSource.from_config(
        {
            "url": source_url,
            "query": "SELECT * FROM no_such_table",
            "cursor": "updated_at",
            "key": "id",
        }
    )
    with pytest.raises(SourceError, match="the query failed"):
        await read_all(missing)


async def test_an_unreachable_database_is_transient() -> None:
    down = SqlSource.from_config(
        {
            "url": "postgresql://nobody@127.0.0.1:1/none",
            "query": "SELECT 1 AS id, 1 AS c",
            "cursor": "c",
            "key": "id",
        }
    )
    with pytest.raises(TransientSourceError, match=r"127\.0\.0\.1"):
        await read_all(down)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"query": "q", "cursor": "c", "key": "k"}, "config.url: required"),
        (
            {"url": "nonsense", "query": "q", "cursor": "c", "key": "k"},
            "config.url: not a database URL",
        ),
        (
            {"url": "sqlite://", "query": "q", "cursor": "c; drop", "key": "k"},
            "config.cursor: must be a column",
        ),
        ({"url": "sqlite://", "query": "q", "cursor": "c", "key": "k", "page": 0}, "config.page"),
        (
            {"url": "sqlite://", "query": "q", "cursor": "c", "key": "k", "table": "t"},
            "config.table: not a setting",
        ),
    ],
)
def test_bad_configuration_names_the_key(config: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        REGISTRY["sql"](config, None)


def test_the_password_may_come_from_the_credentials() -> None:
    src = SqlSource.from_config(
        {"url": "postgresql://desk@db/desk", "query": "q", "cursor": "c", "key": "k"},
        {"password": "s3cret"},
    )
    assert src.config.url.password == "s3cret"
    assert src.config.url.drivername == "postgresql+asyncpg"
