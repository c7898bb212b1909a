"""Schema migrations (Alembic): apply, and tell whether a database is behind."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from hub.db import make_engine

MIGRATIONS = Path(__file__).parent / "migrations"


class DatabaseBehindError(Exception):
    """The database schema is older than the code; the message says what to run."""


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url)
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config("")).get_current_head()


async def current_revision(url: str) -> str | None:
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:

            def _read(sync_conn: Connection) -> str | None:
                return MigrationContext.configure(sync_conn).get_current_revision()

            return await conn.run_sync(_read)
    finally:
        await engine.dispose()


def upgrade_sync(url: str) -> None:
    """Apply every pending migration (runs its own event loop: call from sync code)."""
    command.upgrade(alembic_config(url), "head")


async def upgrade(url: str) -> None:
    # Alembic's env.py runs its own loop, so run it in a thread from async code.
    await asyncio.to_thread(upgrade_sync, url)


async def ensure_current(url: str, *, auto_upgrade: bool) -> None:
    """Upgrade (when allowed) or refuse to run on a database that is behind the code."""
    current, head = await current_revision(url), head_revision()
    if current == head:
        return
    if auto_upgrade:
        await upgrade(url)
        return
    raise DatabaseBehindError(
        f"the database is at migration {current or 'none'} but this hub needs {head}: "
        "run `hub migrate` (or `hub init` on a new database) first"
    )
