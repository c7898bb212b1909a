"""Introspection (RFC 7662) and revocation (RFC 7009), and the deny list at /graphql."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from app import create_app
from hub.db import Database
from hub.settings import Settings
from tests.conftest import make_caller, make_settings, token_for
from tests.hub.oauth_helpers import make_key_client, post_form

QUERY = {"query": "{ me { clientId } }"}


async def graphql(http: httpx.AsyncClient, token: str) -> httpx.Response:
    return await http.post("/graphql", json=QUERY, headers={"Authorization": f"Bearer {token}"})


async def test_introspection_with_each_auth_method(client: httpx.AsyncClient, db: Database) -> None:
    caller = await make_caller(db, "distributor")
    token = await token_for(client, caller, "customers:read")

    basic = await post_form(client, "/oauth/introspect", {"token": token}, caller.basic)
    posted = await post_form(
        client,
        "/oauth/introspect",
        {"token": token, "client_id": caller.client_id, "client_secret": caller.secret},
    )

    assert basic.status_code == posted.status_code == 200, basic.text
    assert basic.headers["cache-control"] == "no-store"
    body = basic.json()
    assert body == posted.json()
    assert body["active"] is True
    assert body["client_id"] == caller.client_id
    assert body["scope"] == "customers:read"
    assert body["token_type"] == "Bearer"
    assert {"exp", "iat", "sub", "aud", "iss", "jti"} <= set(body)

    key_client = await make_key_client(db)
    own = await post_form(
        client, "/oauth/token", {"grant_type": "client_credentials", **key_client.form()}
    )
    keyed = await post_form(
        client, "/oauth/introspect", {"token": own.json()["access_token"], **key_client.form()}
    )
    assert keyed.status_code == 200, keyed.text
    assert keyed.json()["active"] is True


async def test_another_clients_token_is_inactive(client: httpx.AsyncClient, db: Database) -> None:
    owner = await make_caller(db, "distributor")
    other = await make_caller(db, "vendor")
    token = await token_for(client, owner)
    response = await post_form(client, "/oauth/introspect", {"token": token}, other.basic)
    assert response.status_code == 200
    assert response.json() == {"active": False}


@pytest.mark.parametrize("token", ["garbage", "a.b.c"])
async def test_invalid_token_is_inactive(
    client: httpx.AsyncClient, db: Database, token: str
) -> None:
    caller = await make_caller(db, "distributor")
    response = await post_form(client, "/oauth/introspect", {"token": token}, caller.basic)
    assert response.json() == {"active": False}


@pytest.mark.parametrize("path", ["/oauth/introspect", "/oauth/revoke"])
async def test_unauthenticated_callers_are_invalid_client(
    client: httpx.AsyncClient, db: Database, path: str
) -> None:
    caller = await make_caller(db, "distributor")
    token = await token_for(client, caller)
    for authorization in (None, "Basic " + "eDp5"):  # none, then wrong credentials "x:y"
        response = await post_form(client, path, {"token": token}, authorization)
        assert response.status_code == 401, response.text
        assert response.json()["error"] == "invalid_client"
        assert response.headers["www-authenticate"].startswith("Basic")


async def test_revoked_token_is_refused_and_inactive(
    client: httpx.AsyncClient, db: Database
) -> None:
    caller = await make_caller(db, "distributor")
    token = await token_for(client, caller)
    assert (await graphql(client, token)).status_code == 200

    revoked = await post_form(client, "/oauth/revoke", {"token": token}, caller.basic)

    assert revoked.status_code == 200, revoked.text
    assert revoked.content == b""
    response = await graphql(client, token)
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    introspected = await post_form(client, "/oauth/introspect", {"token": token}, caller.basic)
    assert introspected.json() == {"active": False}
    # Idempotent (RFC 7009 §2.2), and the caller's other tokens still work.
    again = await post_form(client, "/oauth/revoke", {"token": token}, caller.basic)
    assert again.status_code == 200
    fresh = await token_for(client, caller)
    assert (await graphql(client, fresh)).status_code == 200


async def test_revoking_unknown_or_invalid_tokens_answers_200(
    client: httpx.AsyncClient, db: Database
) -> None:
    caller = await make_caller(db, "distributor")
    for token in ("garbage", "a.b.c"):
        response = await post_form(
            client,
            "/oauth/revoke",
            {"token": token, "token_type_hint": "refresh_token"},
            caller.basic,
        )
        assert response.status_code == 200


async def test_a_client_cannot_revoke_another_clients_token(
    client: httpx.AsyncClient, db: Database
) -> None:
    owner = await make_caller(db, "distributor")
    other = await make_caller(db, "vendor")
    token = await token_for(client, owner)

    response = await post_form(client, "/oauth/revoke", {"token": token}, other.basic)

    assert response.status_code == 400
    assert response.json()["error"] == "unauthorized_client"
    assert (await graphql(client, token)).status_code == 200


@pytest.fixture
async def replica(db: Database, database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """A second app on the same database, refreshing its deny list every 0.1 s."""
    settings: Settings = make_settings(database_url, revocation_refresh_interval=0.1)
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://hub.test") as http:
            yield http


async def test_revocation_reaches_another_replica(
    client: httpx.AsyncClient, replica: httpx.AsyncClient, db: Database
) -> None:
    caller = await make_caller(db, "distributor")
    token = await token_for(client, caller)
    assert (await graphql(replica, token)).status_code == 200

    await post_form(client, "/oauth/revoke", {"token": token}, caller.basic)

    for _ in range(50):
        if (await graphql(replica, token)).status_code == 401:
            break
        await asyncio.sleep(0.05)
    assert (await graphql(replica, token)).status_code == 401
