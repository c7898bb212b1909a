"""Shared fixtures: a fresh database per backend, the app, tokens, and the gql() helper.

Database tests run on SQLite and on PostgreSQL. PostgreSQL is the server named by
``HUB_TEST_DATABASE_URL`` (default ``postgresql+asyncpg://postgres@127.0.0.1:5432/test``);
each run creates its own database there and drops it afterwards. Without a reachable
server the PostgreSQL cases skip with the reason, except under ``CI=true``, where they fail.
"""

from __future__ import annotations

import base64
import os
import uuid
from collections.abc import AsyncIterator, Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel import col

from app import create_app
from hub.db import Database, make_engine
from hub.migrate import upgrade
from hub.models import Organization, OrgKind, PolicyVersion, metadata
from hub.oauth.clients import create_client
from hub.oauth.keys import generate_signing_key
from hub.settings import Settings
from hub.sharing import install_defaults
from hub.vault import ensure_data_key, load_data_keys
from tests.e2e.server import attach_server_log, hub_server
from tests.postgres import postgres_server

# One real-server fixture for tests/e2e and tests/conformance alike: defined here, a
# session fixture starts one server per backend for the whole run.
__all__ = ["hub_server"]

SECRET = "test-secret-key-" + "x" * 40
ALL_SCOPES = ["customers:read", "customers:write", "feedback:read", "feedback:write"]


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
async def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    """A freshly migrated database for this test run, on each backend."""
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("db") / "hub.db"
        url = f"sqlite+aiosqlite:///{path}"
        await upgrade(url)
        yield url
        return
    server = await postgres_server()
    name = f"hub_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = create_async_engine(server, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(server).set(database=name).render_as_string(hide_password=False)
    try:
        await upgrade(url)
        yield url
    finally:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


@pytest.fixture(scope="session")
async def database(database_url: str) -> AsyncIterator[Database]:
    db = Database(make_engine(database_url))
    async with db.transaction() as session:
        await generate_signing_key(session, SECRET.encode())
        await ensure_data_key(session, SECRET.encode())
        await install_defaults(session, author="tests")
    yield db
    await db.dispose()


_KEEP = {"signing_key", "data_key", "alembic_version", "policy_version"}


@pytest.fixture
async def db(database: Database) -> AsyncIterator[Database]:
    """The session database, emptied of everything but signing keys after each test."""
    # Both backends' databases live in this process: put this one's data keys in force.
    async with database.session() as session:
        await load_data_keys(session, SECRET.encode())
    yield database
    async with database.transaction() as session:
        for table in reversed(metadata.sorted_tables):
            if table.name not in _KEEP:
                await session.execute(table.delete())
        # The default policy (version 1) stays; versions a test published go.
        await session.execute(delete(PolicyVersion).where(col(PolicyVersion.number) > 1))


def make_settings(database_url: str, **overrides: Any) -> Settings:
    return Settings(
        database_url=database_url,
        secret_key=SECRET,
        issuer="http://hub.test",
        log_json=False,
        log_level="WARNING",
        client_cache_ttl=0,
        # Frozen objects of every app would stay for the whole run.
        **{"gc_tuning": False, **overrides},
    )


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url)


@pytest.fixture
async def client(db: Database, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for the app, its lifespan running (in-process, no sockets)."""
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://hub.test") as http:
            yield http


@dataclass
class Caller:
    """An organization with a registered client; ``token`` is fetched on demand."""

    org: Organization
    client_id: str
    secret: str
    token: str | None = None

    @property
    def basic(self) -> str:
        return "Basic " + base64.b64encode(f"{self.client_id}:{self.secret}".encode()).decode()


async def make_org(
    db: Database, kind: OrgKind | str, slug: str | None = None, **extra: Any
) -> Organization:
    kind = OrgKind(kind)
    org = Organization(
        slug=slug or f"{kind.value}-{uuid.uuid4().hex[:6]}",
        name=(slug or kind.value).title(),
        kind=kind,
        **extra,
    )
    async with db.transaction() as session:
        session.add(org)
    return org


async def make_caller(
    db: Database,
    kind: OrgKind | str,
    *,
    scopes: list[str] | None = None,
    slug: str | None = None,
    attributes: dict[str, Any] | None = None,
) -> Caller:
    org = await make_org(db, kind, slug, attributes=attributes or {})
    async with db.transaction() as session:
        registered, secret = await create_client(
            session, organization=org, name="test", scopes=scopes or ALL_SCOPES
        )
    return Caller(org=org, client_id=registered.client_id, secret=secret)


async def token_for(http: httpx.AsyncClient, caller: Caller, scope: str | None = None) -> str:
    data = {"grant_type": "client_credentials"}
    if scope is not None:
        data["scope"] = scope
    response = await http.post("/oauth/token", data=data, headers={"Authorization": caller.basic})
    assert response.status_code == 200, response.text
    caller.token = response.json()["access_token"]
    return caller.token


async def gql(
    http: httpx.AsyncClient,
    caller: Caller,
    query: str,
    variables: dict[str, Any] | None = None,
    *,
    expect_errors: bool = False,
) -> dict[str, Any]:
    """POST a GraphQL operation as ``caller``; fails on unexpected errors."""
    token = caller.token or await token_for(http, caller)
    response = await http.post(
        "/graphql",
        json={"query": query, "variables": variables or {}},
        headers={"Authorization": f"Bearer {token}", "Accept": "application/graphql-response+json"},
    )
    body = response.json()
    if not expect_errors:
        assert response.status_code == 200, body
        assert "errors" not in body, body["errors"]
    result: dict[str, Any] = body
    return result


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Every test that uses a database fixture is a database test (marker `db`).
    for item in items:
        if "database_url" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.db)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Attach the real server's log to a failed end-to-end test's report."""
    del call
    report = yield
    attach_server_log(item, report)
    return report
