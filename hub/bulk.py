"""Many rows into one table at once, as fast as the backend allows (bulk imports)."""

from __future__ import annotations

import operator
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Table, insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

COPY_FROM = 50
"""Rows from which PostgreSQL's ``COPY`` beats an executemany."""


async def insert_rows(
    session: AsyncSession, table: Table, rows: Sequence[Mapping[str, Any]]
) -> None:
    """Insert ``rows`` (each naming every column of ``table``) in the session's
    transaction, as fast as the backend allows: PostgreSQL's ``COPY`` (binary, one stream
    for all the rows), else one executemany. A refusal is raised as SQLAlchemy's
    :class:`~sqlalchemy.exc.DBAPIError` either way (its ``orig`` the driver's error).

    The table, not the model: the ORM's bulk insert would leave out None values and
    split the rows into one statement per run of rows setting the same columns (optional
    fields alternate: hundreds of statements a batch)."""
    if not rows:
        return
    dialect = session.get_bind().dialect
    if dialect.name != "postgresql" or len(rows) < COPY_FROM:
        await session.execute(insert(table), list(rows))
        return
    columns = list(table.columns)
    names = [column.name for column in columns]
    # The values as an INSERT would bind them (type decorators, JSON as text); most
    # columns have no processor, and their values go as they are.
    processors = [
        (i, process)
        for i, column in enumerate(columns)
        if (process := column.type._cached_bind_processor(dialect)) is not None
    ]
    values_of = operator.itemgetter(*names)
    records: list[list[Any]] = []
    for row in rows:
        record = list(values_of(row)) if len(names) > 1 else [row[names[0]]]
        for i, process in processors:
            record[i] = process(record[i])
        records.append(record)
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    driver: Any = raw.driver_connection
    try:
        await driver.copy_records_to_table(table.name, records=records, columns=names)
    except Exception as error:
        if getattr(error, "sqlstate", None) is None:
            raise
        raise DBAPIError(f"COPY {table.name}", None, error) from error


__all__ = ["COPY_FROM", "insert_rows"]
