"""Database.statements: single-statement reads outside any transaction."""

from __future__ import annotations

from sqlalchemy import text

from hub.db import Database


async def test_statements_run_without_a_transaction_and_leave_the_pool_as_they_found_it(
    db: Database,
) -> None:
    async with db.statements() as connection:
        assert (await connection.execute(text("SELECT 41 + 1"))).scalar_one() == 42
        raw = (await connection.get_raw_connection()).driver_connection
        assert raw is not None
        if connection.dialect.name == "postgresql":
            # asyncpg knows whether it sent BEGIN: in autocommit it did not.
            assert not raw.is_in_transaction()
        else:
            assert not raw.in_transaction  # sqlite3 begins nothing for a SELECT
    # The pooled connection is back in its default mode: sessions still get transactions.
    async with db.transaction() as session:
        await session.execute(text("SELECT 1"))
        raw = (await (await session.connection()).get_raw_connection()).driver_connection
        assert raw is not None
        if session.get_bind().dialect.name == "postgresql":
            assert raw.is_in_transaction()
