"""Liveness and readiness endpoints."""

from __future__ import annotations

import httpx

from hub.db import Database, make_engine
from hub.runtime import Runtime


async def test_healthz_and_readyz(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "database": "ok"}


async def test_readyz_is_503_when_the_database_is_unreachable(client: httpx.AsyncClient) -> None:
    runtime: Runtime = client._transport.app.state.runtime  # type: ignore[attr-defined]
    working = runtime.database
    runtime.database = Database(make_engine("sqlite+aiosqlite:////nonexistent/dir/hub.db"))
    try:
        response = await client.get("/readyz")
    finally:
        await runtime.database.dispose()
        runtime.database = working
    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"
