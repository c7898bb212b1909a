"""Many rows into one table at once, as fast as the backend allows (bulk imports)."""

from __future__ import annotations

import asyncio
import operator
from collections.abc import Callable, Collection, Hashable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar, cast

from sqlalchemy import (
    ColumnElement,
    Select,
    Table,
    TextClause,
    TextualSelect,
    any_,
    bindparam,
    insert,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

COPY_FROM = 50
"""Rows from which PostgreSQL's ``COPY`` beats an executemany."""

TURN_EVERY = 256
"""Rows a batch's Python loops go through between two turns of the event loop
(:func:`take_turn`)."""


async def take_turn() -> None:
    """Let the event loop run what else is ready, from a loop over a batch's rows (call it
    every :data:`TURN_EVERY` rows). A sync run stores batches at once, and one of them
    holds the audit chain's lock, which every writer of the hub waits for: a statement of
    that batch that has returned should not wait for another batch's whole loop (2,000
    rows are 5 to 10 ms of Python) before it goes on."""
    await asyncio.sleep(0)


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
    if session.get_bind().dialect.name != "postgresql" or len(rows) < COPY_FROM:
        await session.execute(insert(table), list(rows))
        return
    names = [column.name for column in table.columns]
    values_of = operator.itemgetter(*names)
    records = [values_of(row) for row in rows] if len(names) > 1 else [(r[names[0]],) for r in rows]
    await insert_records(session, table, names, records)


async def insert_records(
    session: AsyncSession,
    table: Table,
    names: Sequence[str],
    records: Sequence[Sequence[Any]],
    *,
    turns: bool = True,
) -> None:
    """:func:`insert_rows` for rows given as sequences of values in the order of
    ``names`` (every column of ``table``, in any order): what a bulk writer builds
    directly from its prepared values, without a mapping a row (a batch's thousands of
    rows, three tables a batch on an import).

    ``turns`` off: the loop over the rows gives the event loop no turn
    (:func:`take_turn`), for a writer holding the audit chain's lock, which the other
    batches wait for: a turn given then let another batch's loop run first (1 to 2 ms
    of Python) while the lock was held."""
    if not records:
        return
    dialect = session.get_bind().dialect
    if dialect.name != "postgresql" or len(records) < COPY_FROM:
        await session.execute(insert(table), [dict(zip(names, r, strict=True)) for r in records])
        return
    # The values as an INSERT would bind them (type decorators, JSON as text); most
    # columns have no processor, and their values go as they are.
    processors = [
        (i, _memoised(bind))
        for i, name in enumerate(names)
        if (bind := table.columns[name].type._cached_bind_processor(dialect)) is not None
    ]
    if processors:
        processed: list[Sequence[Any]] = []
        for n, record in enumerate(records, start=1):
            values = list(record)
            for i, process in processors:
                values[i] = process(values[i])
            processed.append(values)
            if turns and not n % TURN_EVERY:
                await take_turn()
        records = processed
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    driver: Any = raw.driver_connection
    try:
        await driver.copy_records_to_table(table.name, records=records, columns=list(names))
    except Exception as error:
        if getattr(error, "sqlstate", None) is None:
            raise
        raise DBAPIError(f"COPY {table.name}", None, error) from error


async def fetch_planned_now(session: AsyncSession, sql: str, *args: Any) -> list[Any]:
    """Run ``sql`` (PostgreSQL, ``$n`` parameters) in the session's transaction, planned
    for the tables as they are now and for these values: an unnamed statement, which
    PostgreSQL plans at each execution. The driver otherwise prepares a statement once
    per connection, and its plan stays the one made for the tables as they were then:
    during an import into a fresh database (statistics of empty tables, as where
    autovacuum is off), a scan of every row of a table the import itself grows, at each
    batch. One more round trip than a prepared statement; for a batch's statements on
    those tables. Returns the rows."""
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    driver: Any = raw.driver_connection
    statement = await driver.prepare(sql, name="")
    try:
        return list(await statement.fetch(*args))
    except Exception as error:
        if getattr(error, "sqlstate", None) is None:
            raise
        raise DBAPIError(sql, None, error) from error


def any_of(session: AsyncSession, column: Any, values: Collection[Any]) -> ColumnElement[bool]:
    """``column IN values`` for a batch's hundreds of keys. On PostgreSQL ``column =
    ANY(:array)``: one parameter, so the statement's text is the same for every batch
    and the driver's prepared statement is reused (an ``IN`` list is rendered anew for
    each batch, one parameter a value, and PostgreSQL parses and plans each rendering);
    elsewhere the ``IN`` list."""
    if session.get_bind().dialect.name != "postgresql":
        return cast("ColumnElement[bool]", column.in_(values))
    return cast(
        "ColumnElement[bool]",
        column == any_(bindparam(None, list(values), type_=ARRAY(column.type))),
    )


def any_param(dialect: str, column: Any, name: str) -> ColumnElement[bool]:
    """:func:`any_of` with its keys left to bind (``name``): for a statement built once
    and run for every batch (:func:`built_once`), the keys given at each execution
    (``{name: [...]}``). ``dialect`` is the backend's name (``session.get_bind().
    dialect.name``)."""
    if dialect != "postgresql":
        return cast("ColumnElement[bool]", column.in_(bindparam(name, expanding=True)))
    return cast("ColumnElement[bool]", column == any_(bindparam(name, type_=ARRAY(column.type))))


_T = TypeVar("_T")
_BUILT: dict[Hashable, tuple[object, Any]] = {}
_MAX_BUILT = 256


def built_once(key: Hashable, condition: object, build: Callable[[], _T]) -> _T:
    """The statement ``build()`` makes, built once per ``key`` and kept while
    ``condition`` (an object the statement holds, such as the policy's row filter for a
    principal, which :mod:`hub.access` keeps as long as its rules are in force) is the
    same object: a new one (new rules) gets a statement of its own.

    A batch's statements are otherwise built for each batch: SQLAlchemy constructs them,
    then walks them for their cache key before it finds their compiled form, some 0.15
    to 0.3 ms of CPU each, a good part of a statement's cost in the hub; a statement kept
    is walked once (its key is memoised). Its values must be left to bind
    (:func:`any_param`), not held in it.

    Example::

        among = access.candidates(principal, Resource.CUSTOMER)
        statement = built_once(
            ("customers by email", dialect),
            among,
            lambda: select(Customer.id).where(
                any_param(dialect, Customer.email_index, "keys"), among
            ),
        )
        await session.execute(statement, {"keys": [...]})
    """
    # By the condition's identity too: two principals taking turns (a worker running
    # the connectors of two organizations) keep a statement each. The condition is held
    # with its statement, so its id is not reused while the entry lives.
    slot = (key, id(condition))
    found = _BUILT.get(slot)
    if found is not None and found[0] is condition:
        return cast("_T", found[1])
    if len(_BUILT) >= _MAX_BUILT:
        _BUILT.clear()  # a handful per process and policy; this only bounds a leak
    statement = build()
    _BUILT[slot] = (condition, statement)
    return statement


class Prebuilt:
    """A statement built once and run for many batches (:func:`built_once`), on
    PostgreSQL by the driver itself: compiled once to its SQL text and the order of its
    parameters, its own values (the policy's, in a row filter) bound once.

    Through SQLAlchemy, a statement of a batch cost about 0.15 ms of CPU before its
    values and rows, and about 1 µs more per value of an array parameter and per row
    (each element bound, each row made a ``Row`` through its types' processors): a
    lookup of 500 keys answering 500 rows took 1.1 ms of the hub's CPU, 0.47 by the
    driver. The values given at each run (``params``) go to the driver as they are
    (text, numbers, UUIDs, lists of them: what asyncpg encodes itself); the rows come
    back as the driver's records (indexed and unpacked as rows are; UUIDs as its
    :class:`uuid.UUID` subclass). Elsewhere (SQLite), and as the first statement of a
    transaction (SQLAlchemy begins it then), it runs through the session.
    """

    __slots__ = ("_compiled", "statement")

    def __init__(self, statement: Select[*tuple[Any, ...]] | TextClause | TextualSelect) -> None:
        self.statement = statement
        self._compiled: tuple[Any, str, tuple[str, ...], dict[str, Any]] | None = None

    async def rows(self, session: AsyncSession, params: Mapping[str, Any]) -> Sequence[Any]:
        """The statement's rows with ``params``, in the session's transaction."""
        dialect = session.get_bind().dialect
        if dialect.name == "postgresql":
            connection = await session.connection()
            raw = await connection.get_raw_connection()
            driver: Any = raw.driver_connection
            if driver.is_in_transaction():
                sql, names, fixed = self._for(dialect)
                args = [params[name] if name in params else fixed[name] for name in names]
                try:
                    return cast("Sequence[Any]", await driver.fetch(sql, *args))
                except Exception as error:
                    if getattr(error, "sqlstate", None) is None:
                        raise
                    raise DBAPIError(sql, None, error) from error
        return (await session.execute(self.statement, params)).all()

    def _for(self, dialect: Dialect) -> tuple[str, tuple[str, ...], dict[str, Any]]:
        compiled = self._compiled
        if compiled is None or compiled[0] is not dialect:
            done = self.statement.compile(dialect=dialect)
            given = {name: None for name, bind in done.binds.items() if bind.required}
            # The statement's own lists (a row filter's IN) written out, as an execution
            # would write them; the values given at each run stay parameters.
            state = done.construct_expanded_state(given)
            processors: dict[str, Any] = {**done._bind_processors, **state.processors}
            names = tuple(state.positiontup or ())
            fixed: dict[str, Any] = {}
            for name, value in zip(names, state.positional_parameters, strict=True):
                if name in given:
                    continue
                process = processors.get(name)
                fixed[name] = value if value is None or process is None else process(value)
            compiled = self._compiled = (dialect, state.statement, names, fixed)
        return compiled[1], compiled[2], compiled[3]


def _memoised(process: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``process`` computed once per distinct value of the batch for the values rows
    repeat: a JSON list of names (an outbox event's fields, a feedback's tags; each
    encoded by the standard library otherwise) and a time (the batch's ``now``). Only
    lists of text are keyed (as a tuple): equal numbers of different types (1, 1.0,
    True) would share a key but not a JSON form; equal times are the same instant and
    process alike."""
    seen: dict[Any, Any] = {}

    def run(value: Any) -> Any:
        kind = type(value)
        if kind is list:
            # {type of each item} in C, not a generator a value: tags, an event's fields.
            if not {*map(type, value)} <= _TEXT_ONLY:
                return process(value)
            key: Any = tuple(value)
        elif kind is datetime:
            key = value
        else:
            return process(value)
        found = seen.get(key, _MISSING)
        if found is _MISSING:
            found = seen[key] = process(value)
        return found

    return run


_MISSING = object()
_TEXT_ONLY = frozenset({str})

__all__ = [
    "COPY_FROM",
    "TURN_EVERY",
    "Prebuilt",
    "any_of",
    "any_param",
    "built_once",
    "fetch_planned_now",
    "insert_records",
    "insert_rows",
    "take_turn",
]
