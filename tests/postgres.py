"""Where the PostgreSQL test cases run, and what happens when there is no server."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

DEFAULT_PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


async def _pg_reachable(url: str) -> str | None:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return None
    except Exception as error:  # noqa: BLE001 — any failure means "not reachable"
        return f"{type(error).__name__}: {error}"
    finally:
        await engine.dispose()


async def postgres_server() -> str:
    """The PostgreSQL server URL for tests; skips (fails under CI=true) when unreachable."""
    server = os.environ.get("HUB_TEST_DATABASE_URL", DEFAULT_PG)
    problem = await _pg_reachable(server)
    if problem is not None:
        message = f"PostgreSQL at {make_url(server).render_as_string()} unreachable ({problem})"
        if _in_ci():
            pytest.fail(f"{message}; CI=true requires the PostgreSQL tests to run")
        pytest.skip(f"{message}; set HUB_TEST_DATABASE_URL to run the PostgreSQL cases")
    return server


@contextlib.asynccontextmanager
async def scratch_database(prefix: str) -> AsyncIterator[str]:
    """An empty database of its own on the test PostgreSQL server (``prefix`` and a random
    suffix name it), dropped afterwards; yields its URL."""
    server = await postgres_server()
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = create_async_engine(server, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(server).set(database=name).render_as_string(hide_password=False)
    finally:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()
