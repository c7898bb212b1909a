"""The database: engine and sessions, created in the app's lifespan (never at import)."""

from __future__ import annotations

import contextvars
import hashlib
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

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


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers run beside the single writer; foreign keys are off by default.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
    # SQLite's own lower() folds ASCII only; case-insensitive search needs Unicode folding.
    dbapi_connection.create_function("lower", 1, _unicode_lower, deterministic=True)


def _unicode_lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def make_engine(url: str, *, pool_size: int = 20, **kwargs: Any) -> AsyncEngine:
    """Create the async engine for ``url`` with the hub's per-backend settings.

    The pool is sized for the expected concurrency with little overflow: connections
    opened past the pool are closed again after use, and opening one is costly (a thread
    and pragmas per aiosqlite connection, a backend process per PostgreSQL session).
    """
    pool = {"pool_size": pool_size, "max_overflow": max(2, pool_size // 4)}
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 30}, **pool, **kwargs)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    else:
        # A pooled connection may have died with a database restart or failover: ping it
        # at checkout (one round trip) so the hub recovers by itself, without a request
        # failing on a dead connection first.
        # A host that drops packets must not hold a request for asyncpg's default minute.
        kwargs.setdefault("connect_args", {"timeout": 10})
        engine = create_async_engine(url, pool_pre_ping=True, **pool, **kwargs)
    event.listen(engine.sync_engine, "before_cursor_execute", _on_execute)
    return engine


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
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session in one transaction: committed at the end, rolled back on any error."""
        async with self.sessions() as session, session.begin():
            yield session

    async def dispose(self) -> None:
        await self.engine.dispose()
