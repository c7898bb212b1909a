"""Where each backend's hub database lives: a SQLite file, or a throwaway PostgreSQL database."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine

from bench.load import LOOPBACK

BACKENDS = ("sqlite", "postgresql")


class DatabaseSetupError(Exception):
    """The benchmark database cannot be created; the message says why."""


def check_pg_url(url: str) -> None:
    parsed = make_url(url)
    if parsed.drivername != "postgresql+asyncpg":
        raise DatabaseSetupError(
            f"--pg-url must use postgresql+asyncpg://, not {parsed.drivername}"
        )
    if parsed.host not in LOOPBACK:
        raise DatabaseSetupError(f"--pg-url must point at a loopback host, not {parsed.host!r}")


@contextmanager
def database_url(backend: str, workdir: Path, pg_url: str) -> Iterator[str]:
    """The ``HUB_DATABASE_URL`` for ``backend``; a PostgreSQL database is dropped afterwards."""
    if backend == "sqlite":
        # The same file `hub demo` would pick without HUB_DATABASE_URL, named explicitly so
        # that `hub serve` finds it whatever the environment says.
        yield f"sqlite+aiosqlite:///{workdir / 'hub.db'}"
        return
    name = f"hub_bench_{secrets.token_hex(4)}"
    asyncio.run(_admin(pg_url, f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(pg_url).set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(_admin(pg_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def analyze(db_url: str) -> None:
    """Give PostgreSQL's planner statistics on the freshly seeded tables.

    In production autovacuum analyzes a table soon after a bulk load; until then, and for
    good where autovacuum is off (as on some test servers), plans assume near-empty tables.
    """
    asyncio.run(_admin(db_url, "ANALYZE"))


async def _admin(pg_url: str, statement: str) -> None:
    # CREATE/DROP DATABASE cannot run inside a transaction.
    engine = create_async_engine(pg_url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.execute(text(statement))
    except (OSError, DBAPIError) as error:
        where = make_url(pg_url).render_as_string(hide_password=True)
        raise DatabaseSetupError(f"PostgreSQL at {where}: {error}") from None
    finally:
        await engine.dispose()
