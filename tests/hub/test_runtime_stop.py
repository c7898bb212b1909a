"""Shutting the app down lets the refresh loop end the step it is in: a prune is never cut
off inside its transaction (on SQLite its write went on in the driver's thread and then
held the database's lock for a transaction nobody ended)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app import create_app
from hub.db import Database
from hub.models.sync import SyncRun
from hub.sync import runs
from tests.conftest import make_settings

pytestmark = pytest.mark.db


async def test_shutdown_waits_for_the_prune_in_progress(
    db: Database, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    started = asyncio.Event()
    ended: list[str] = []
    prune = runs.prune

    async def slow_prune(session: AsyncSession, retention: timedelta, **kwargs: Any) -> int:
        started.set()
        await asyncio.sleep(0.3)  # the app is shut down meanwhile
        done = await prune(session, retention, **kwargs)
        ended.append("pruned")
        return done

    monkeypatch.setattr(runs, "prune", slow_prune)
    application = create_app(make_settings(database_url))
    async with application.router.lifespan_context(application):
        await asyncio.wait_for(started.wait(), 10)
    assert ended == ["pruned"]  # ended its step, not cancelled inside it
    # Nothing of the app's is left holding the database: a write goes through at once.
    async with db.transaction() as session:
        await session.execute(SyncRun.__table__.delete())  # type: ignore[attr-defined]
