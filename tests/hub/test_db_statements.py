"""Database.direct: single-statement reads through the driver, outside any transaction."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import DBAPIError

from hub.db import Database, count_statements


async def test_direct_reads_answer_one_value_through_the_driver_outside_any_transaction(
    db: Database,
) -> None:
    postgresql = db.engine.dialect.name == "postgresql"
    one, two = ("$1", "$2") if postgresql else ("?", "?")
    pool = db.engine.sync_engine.pool
    with count_statements() as counted:
        async with db.direct() as reads:
            assert await reads.value(f"SELECT CAST({one} AS INTEGER) + 1", [41]) == 42
            query = f"SELECT {one} || {two} WHERE 1 = 0"
            assert await reads.value(query, ["a", "b"]) is None  # no row
            raw = reads._driver
            if postgresql:
                assert not raw.is_in_transaction()
            else:
                assert not raw.in_transaction
            assert pool.checkedout() == 1  # type: ignore[attr-defined]
    assert counted[0] == 2
    assert pool.checkedout() == 0  # type: ignore[attr-defined]


async def test_a_direct_read_that_fails_raises_a_dbapi_error_without_its_parameters(
    db: Database,
) -> None:
    marker = "secret-parameter-value"
    placeholder = "$1" if db.engine.dialect.name == "postgresql" else "?"
    with pytest.raises(DBAPIError) as raised:
        async with db.direct() as reads:
            await reads.value(f"SELECT {placeholder} FROM no_such_table", [marker])  # noqa: S608
    assert "no_such_table" in str(raised.value)
    assert marker not in str(raised.value)
    assert not raised.value.connection_invalidated
    # The connection went back to the pool and still works.
    async with db.direct() as reads:
        assert await reads.value("SELECT 7", []) == 7


async def test_a_direct_read_on_a_connection_the_server_closed_drops_it_from_the_pool(
    db: Database, database_url: str
) -> None:
    pool = db.engine.sync_engine.pool
    if not database_url.startswith("postgresql"):
        # SQLite has no server to close a connection: a file that cannot be opened is
        # what goes wrong, and it fails the same way (a DBAPIError, the pool intact).
        async with db.direct() as reads:
            with pytest.raises(DBAPIError) as raised:
                await reads.value("ATTACH DATABASE '/nonexistent/dir/x.db' AS x", [])
        assert not raised.value.connection_invalidated
        assert pool.checkedout() == 0  # type: ignore[attr-defined]
        return
    async with db.direct() as reads:
        pid = await reads.value("SELECT pg_backend_pid()", [])
        # The backend ends itself in the middle of the statement.
        with pytest.raises(DBAPIError) as raised:
            await reads.value("SELECT pg_terminate_backend(pg_backend_pid())", [])
    assert raised.value.connection_invalidated
    assert pool.checkedout() == 0  # type: ignore[attr-defined]
    async with db.direct() as reads:
        assert await reads.value("SELECT pg_backend_pid()", []) != pid
