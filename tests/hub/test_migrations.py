"""Migrations are the schema: they match the models and guard start-up."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from typer.testing import CliRunner

from hub.cli import app as cli
from hub.db import make_engine
from hub.migrate import (
    DatabaseBehindError,
    alembic_config,
    current_revision,
    ensure_current,
    head_revision,
)
from hub.models import metadata
from tests.conftest import SECRET
from tests.postgres import scratch_database


async def test_migrations_match_models(database_url: str) -> None:
    engine = make_engine(database_url)
    async with engine.connect() as conn:

        def diff(sync_conn: Connection) -> list[object]:
            return list(compare_metadata(MigrationContext.configure(sync_conn), metadata))

        differences = await conn.run_sync(diff)
    await engine.dispose()
    assert differences == []
    assert await current_revision(database_url) == head_revision()


async def test_sqlite_is_upgraded_automatically(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"
    await ensure_current(url, auto_upgrade=True)
    assert await current_revision(url) == head_revision()


@pytest.fixture
async def empty_postgres() -> AsyncIterator[str]:
    """An empty database on the test PostgreSQL server (PostgreSQL-only behaviour)."""
    async with scratch_database("hub_behind") as url:
        yield url


@pytest.mark.db
async def test_postgres_behind_is_refused(empty_postgres: str) -> None:
    with pytest.raises(DatabaseBehindError, match="hub migrate"):
        await ensure_current(empty_postgres, auto_upgrade=False)


@pytest.mark.db
def test_serve_refuses_a_postgres_database_that_is_behind(empty_postgres: str) -> None:
    env = {**os.environ, "HUB_DATABASE_URL": empty_postgres, "HUB_SECRET_KEY": SECRET}
    result = CliRunner().invoke(cli, ["serve", "--port", "1"], env=env)
    assert result.exit_code == 2
    assert "run `hub migrate`" in " ".join(result.output.split())


@pytest.mark.db
async def test_postgres_compresses_audit_details_with_lz4_and_back(empty_postgres: str) -> None:
    """Migration 0014: new read events' details are compressed with lz4 (this server has
    it: Debian's PostgreSQL is built with lz4); downgrading restores the default."""
    query = text(
        "SELECT attcompression::text FROM pg_attribute"
        " WHERE attrelid = 'audit_event'::regclass AND attname = 'details'"
    )

    async def compression() -> str:
        engine = create_async_engine(empty_postgres)
        try:
            async with engine.connect() as conn:
                return str((await conn.execute(query)).scalar_one())
        finally:
            await engine.dispose()

    await ensure_current(empty_postgres, auto_upgrade=True)
    assert await compression() == "l"
    await asyncio.to_thread(command.downgrade, alembic_config(empty_postgres), "0013")
    assert await compression() == ""  # the server's default_toast_compression
