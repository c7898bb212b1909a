"""Signing-key rotation: old tokens live out their lifetime, retired keys are refused,
and every replica reloads the key ring from the database."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from joserfc import jws
from sqlalchemy import delete, select, update
from sqlmodel import col
from typer.testing import CliRunner

from app import create_app
from hub.cli import app as cli
from hub.db import Database
from hub.models import SigningKey
from hub.models._types import utcnow
from hub.oauth.keys import rotate_signing_keys
from hub.runtime import Runtime
from tests.conftest import SECRET, make_caller, make_settings, token_for

TTL = 900
QUERY = {"query": "{ me { clientId } }"}


@pytest.fixture
async def restore_keys(db: Database) -> AsyncIterator[None]:
    """Put the session's signing keys back as they were: other tests sign with them."""
    async with db.session() as session:
        saved = [
            (row.kid, row.created_at, row.retired_at)
            for row in (await session.execute(select(SigningKey))).scalars()
        ]
    yield
    async with db.transaction() as session:
        kids = [kid for kid, _, _ in saved]
        await session.execute(delete(SigningKey).where(col(SigningKey.kid).not_in(kids)))
        for kid, created_at, retired_at in saved:
            await session.execute(
                update(SigningKey)
                .where(col(SigningKey.kid) == kid)
                .values(created_at=created_at, retired_at=retired_at)
            )


@pytest.fixture
async def hub(
    db: Database, database_url: str, restore_keys: None
) -> AsyncIterator[tuple[httpx.AsyncClient, Runtime]]:
    settings = make_settings(database_url, key_refresh_interval=0.1)
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://hub.test") as http:
            yield http, application.state.runtime


def kid_of(token: str) -> str:
    return str(jws.extract_compact(token.encode()).headers()["kid"])


async def rotate(db: Database) -> str:
    async with db.transaction() as session:
        return (await rotate_signing_keys(session, SECRET.encode(), max_token_lifetime=TTL)).new_kid


async def status(http: httpx.AsyncClient, token: str) -> int:
    response = await http.post("/graphql", json=QUERY, headers={"Authorization": f"Bearer {token}"})
    return response.status_code


async def published(http: httpx.AsyncClient) -> set[str]:
    return {key["kid"] for key in (await http.get("/.well-known/jwks.json")).json()["keys"]}


async def test_rotation_keeps_issued_tokens_valid(
    hub: tuple[httpx.AsyncClient, Runtime], db: Database
) -> None:
    http, runtime = hub
    caller = await make_caller(db, "distributor")
    old_token = await token_for(http, caller)
    old_kid = kid_of(old_token)

    new_kid = await rotate(db)
    await runtime.reload_keys()

    new_token = await token_for(http, caller)
    assert kid_of(new_token) == new_kid != old_kid
    assert await published(http) >= {old_kid, new_kid}
    assert await status(http, old_token) == 200
    assert await status(http, new_token) == 200


async def test_token_of_a_retired_key_is_refused(
    hub: tuple[httpx.AsyncClient, Runtime], db: Database
) -> None:
    http, runtime = hub
    caller = await make_caller(db, "distributor")
    old_token = await token_for(http, caller)
    old_kid = kid_of(old_token)
    new_kid = await rotate(db)
    # The successor is now older than the longest token lifetime (plus skew leeway).
    async with db.transaction() as session:
        long_ago = utcnow() - timedelta(seconds=TTL + 120)
        await session.execute(
            update(SigningKey).where(col(SigningKey.kid) == new_kid).values(created_at=long_ago)
        )
        await session.execute(
            update(SigningKey)
            .where(col(SigningKey.kid) != new_kid)
            .values(created_at=long_ago - timedelta(days=1))
        )
    await runtime.reload_keys()

    assert await status(http, old_token) == 401
    assert old_kid not in await published(http)
    assert await status(http, await token_for(http, caller)) == 200

    # The next rotation records the retirement in the table.
    await rotate(db)
    async with db.session() as session:
        row = await session.get(SigningKey, old_kid)
    assert row is not None and row.retired_at is not None


async def test_every_replica_reloads_the_key_ring(
    hub: tuple[httpx.AsyncClient, Runtime], db: Database
) -> None:
    http, _runtime = hub
    caller = await make_caller(db, "distributor")
    new_kid = await rotate(db)  # as `hub keys rotate` would, from another process
    for _ in range(50):
        if new_kid in await published(http):
            break
        await asyncio.sleep(0.05)
    assert kid_of(await token_for(http, caller)) == new_kid


def test_keys_rotate_command(tmp_path: Path) -> None:
    env = {
        "HUB_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}",
        "HUB_SECRET_KEY_FILE": str(tmp_path / "secret.key"),
    }
    assert CliRunner().invoke(cli, ["init"], env=env).exit_code == 0
    result = CliRunner().invoke(cli, ["keys", "rotate"], env=env)
    assert result.exit_code == 0, result.output
    rotated = json.loads(result.stdout)
    assert rotated["current"] in rotated["published"]
    assert len(rotated["published"]) == 2
    assert rotated["retired"] == []
