"""The database: engine and sessions, created in the app's lifespan (never at import)."""

from __future__ import annotations

import contextvars
import hashlib
import json
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import orjson
from sqlalchemy import event, exc, text
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.util import greenlet_spawn

# Counts SQL statements per request (tests, bench). The context variable holds a mutable
# cell so tasks spawned by the GraphQL executor add to the request's own count.
_statement_counters: contextvars.ContextVar[tuple[list[int], ...]] = contextvars.ContextVar(
    "statement_counters", default=()
)


@contextmanager
def count_statements() -> Iterator[list[int]]:
    """Count the SQL statements executed inside the block: ``with count_statements() as n``."""
    cell = [0]
    # Blocks nest: an outer block (a test) also counts what an inner one (a request) sees.
    token = _statement_counters.set((*_statement_counters.get(), cell))
    try:
        yield cell
    finally:
        _statement_counters.reset(token)


def _on_execute(*_: Any) -> None:
    for cell in _statement_counters.get():
        cell[0] += 1


class DirectReads:
    """One pooled connection used through its driver, for reads that are one statement
    each and return one value: a compiled read plan's response, as one JSON text
    (:mod:`schema.compiled`). From :meth:`Database.direct`.

    A statement through SQLAlchemy's connection, execution context and result objects
    cost 270 µs of CPU, 120 this way, pool checkout and return included (PostgreSQL,
    in-process, 3,000 statements); a compiled plan needs none of them: its SQL is compiled once
    and its answer is one value. No transaction is begun (asyncpg runs a statement on
    its own, sqlite3 begins none for a ``SELECT``), and each statement is counted like
    the engine's (:func:`count_statements`). A driver error is raised as SQLAlchemy's
    :class:`~sqlalchemy.exc.DBAPIError` (``orig``: the driver's), without parameters;
    a connection it leaves closed is dropped from the pool.
    """

    def __init__(self, pooled: Any, dialect: Dialect) -> None:
        self.dialect = dialect
        self._pooled = pooled
        self._driver = pooled.driver_connection
        self._postgresql = dialect.name == "postgresql"

    async def value(self, statement: str, parameters: Sequence[Any]) -> Any:
        """The first column of the first row of ``statement`` (``None`` without rows);
        ``parameters`` positional, in the dialect's style (``$1`` or ``?``)."""
        _on_execute()
        try:
            if self._postgresql:
                return await self._driver.fetchval(statement, *parameters)
            cursor = await self._driver.execute(statement, tuple(parameters))
            try:
                row = await cursor.fetchone()
            finally:
                await cursor.close()
            return None if row is None else row[0]
        except Exception as error:
            closed = self._postgresql and self._driver.is_closed()
            if closed:
                self._pooled.invalidate(error)
            raise exc.DBAPIError(statement, None, error, connection_invalidated=closed) from error


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers run beside the single writer; foreign keys are off by default.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    # Savepoints (a sync batch stores each record in one) journal to temporary files
    # otherwise: keep them in memory (several times faster per savepoint).
    cursor.execute("PRAGMA temp_store=MEMORY")
    cursor.close()
    # SQLite's own lower() folds ASCII only; case-insensitive search needs Unicode folding.
    dbapi_connection.create_function("lower", 1, _unicode_lower, deterministic=True)


def _unicode_lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def make_engine(
    url: str,
    *,
    pool_size: int = 20,
    quiet_ping_seconds: float | None = None,
    **kwargs: Any,
) -> AsyncEngine:
    """Create the async engine for ``url`` with the hub's per-backend settings.

    The pool is sized for the expected concurrency with little overflow: connections
    opened past the pool are closed again after use, and opening one is costly (a thread
    and pragmas per aiosqlite connection, a backend process per PostgreSQL session).
    A pooled PostgreSQL connection idle for ``quiet_ping_seconds`` (default
    :data:`QUIET_PING_SECONDS`) is pinged before use (:func:`_check_liveness_at_checkout`).
    """
    pool = {"pool_size": pool_size, "max_overflow": max(2, pool_size // 4)}
    kwargs.setdefault("json_serializer", json_text)
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 30}, **pool, **kwargs)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    else:
        # A host that drops packets must not hold a request for asyncpg's default minute.
        kwargs.setdefault("connect_args", {"timeout": 10})
        engine = create_async_engine(url, **pool, **kwargs)
        quiet = QUIET_PING_SECONDS if quiet_ping_seconds is None else quiet_ping_seconds
        _check_liveness_at_checkout(engine, quiet)
    event.listen(engine.sync_engine, "before_cursor_execute", _on_execute)
    return engine


def json_text(value: Any) -> str:
    """A JSON column's value as text: orjson's compact UTF-8 JSON (a partner page's read
    event, 9 KB of ids, in 2 µs where the standard library takes 27), the standard
    library's for what orjson refuses (an integer beyond 64 bits). The text differs from
    ``json.dumps``'s only in spacing and in not escaping non-ASCII characters: the same
    JSON values, which is all the columns keep (PostgreSQL's ``json``, SQLite's text)."""
    try:
        return orjson.dumps(value, option=_JSON_OPTIONS).decode()
    except TypeError:  # also what neither accepts (a datetime): json.dumps says so
        return json.dumps(value)


# Non-string keys as json.dumps writes them; datetimes and dataclasses refused, as by it.
_JSON_OPTIONS = (
    orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
)


# A pooled connection idle this long is pinged at checkout; one used more recently is not.
QUIET_PING_SECONDS = 1.0
_CHECKED_IN = "hub.checked_in"


def _check_liveness_at_checkout(engine: AsyncEngine, quiet: float) -> None:
    """Hand out only live PostgreSQL connections, so the hub recovers by itself after a
    database restart or failover without a request failing on a dead connection first.

    SQLAlchemy's ``pool_pre_ping`` would do it with a ping of three round trips on every
    checkout (``BEGIN``, ``;``, ``ROLLBACK``: the asyncpg dialect's pgbouncer-safe ping),
    which doubled the round trips of a one-statement read (``BEGIN``, the query,
    ``ROLLBACK``), each a system call and event-loop turns on both sides. Instead:

    - a connection the server closed (a restart, a fast or immediate shutdown, a
      terminated backend, an idle timeout) is known to asyncpg as soon as the event loop
      reads the end of its socket: ``is_closed()``, no round trip;
    - a connection idle for ``quiet`` seconds or more is also pinged, for what a closed
      socket does not show (a peer gone silent, a NAT or firewall that dropped the
      connection); a busy hub reuses its connections within milliseconds, a quiet one
      has CPU to spare.

    A dead connection invalidates the pool, as a failed pre-ping does (its siblings are
    most likely dead too): each is replaced at its next checkout.
    """
    dialect = engine.dialect

    def checked_in(dbapi_connection: Any, record: Any) -> None:
        record.info[_CHECKED_IN] = time.monotonic()

    def checkout(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        if dbapi_connection.driver_connection.is_closed():
            raise exc.InvalidatePoolError("the server closed the connection")
        since = record.info.get(_CHECKED_IN)  # none on a fresh connection: no ping needed
        if since is None or time.monotonic() - since < quiet:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as error:
            if dialect.is_disconnect(error, dbapi_connection, None):
                raise exc.InvalidatePoolError("the connection did not answer a ping") from error
            raise

    event.listen(engine.sync_engine, "checkin", checked_in)
    event.listen(engine.sync_engine, "checkout", checkout)


async def take_write_lock(session: AsyncSession) -> None:
    """On SQLite, make this transaction the writer *now*, before it reads what it will
    decide on: the driver starts a transaction only at the first write, so a read made
    earlier could be stale by the time of the write. A write statement that changes
    nothing takes the database's write lock (other writers wait, ``busy_timeout``) until
    commit. PostgreSQL callers lock rows or advisory keys instead; this is a no-op there."""
    if session.get_bind().dialect.name == "sqlite":
        await session.execute(text("UPDATE data_key SET kid = kid WHERE 0 = 1"))


async def serialise(session: AsyncSession, *keys: int | str) -> None:
    """Hold off every other transaction serialising on any of ``keys`` until this one
    ends: PostgreSQL transaction-scoped advisory locks (taken in a fixed order, so two
    holders of several keys cannot deadlock; strings are hashed to a lock number), and
    on SQLite the database's write lock (:func:`take_write_lock`), which covers them all."""
    if session.get_bind().dialect.name != "postgresql":
        await take_write_lock(session)
        return
    numbers = {_lock_number(key) for key in keys}
    for number in sorted(numbers):
        await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": number})


def _lock_number(key: int | str) -> int:
    if isinstance(key, int):
        return key
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big", signed=True)


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


class Database:
    """The engine and its session factory, as held by the running app."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.sessions = make_sessionmaker(engine)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A read session; nothing it does is committed."""
        async with self.sessions() as session:
            yield session

    @asynccontextmanager
    async def direct(self) -> AsyncIterator[DirectReads]:
        """A pooled connection for one-statement, one-value reads through the driver
        (:class:`DirectReads`), back in the pool at the end of the block."""
        pooled = await self.engine.raw_connection()
        try:
            yield DirectReads(pooled, self.engine.dialect)
        finally:
            # Returning it may reset it through the driver: in SQLAlchemy's greenlet.
            await greenlet_spawn(pooled.close)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session in one transaction: committed at the end, rolled back on any error."""
        async with self.sessions() as session, session.begin():
            yield session

    async def dispose(self) -> None:
        await self.engine.dispose()
