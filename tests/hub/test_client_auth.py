"""Client authentication at the token endpoint: client_secret_post and private_key_jwt
(RFC 6749 §2.3.1, RFC 7523 §2.2/§3), and the RFC 8707 ``resource`` parameter."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet
from sqlalchemy import func, select, update
from sqlmodel import col

from app import create_app
from hub.db import Database
from hub.models import Client, UsedAssertion
from tests.conftest import make_caller, make_settings
from tests.hub.oauth_helpers import (
    ISSUER,
    KeyClient,
    hs256_with_public_key,
    make_key_client,
    new_key,
    post_form,
    unsigned,
)

GRANT = {"grant_type": "client_credentials"}


def assert_invalid_client(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.json()["error"] == "invalid_client"
    assert response.headers["www-authenticate"].startswith("Basic")
    assert "access_token" not in response.json()


async def test_client_secret_post(client: httpx.AsyncClient, db: Database) -> None:
    caller = await make_caller(db, "vendor")
    form = {**GRANT, "client_id": caller.client_id, "client_secret": caller.secret}
    response = await post_form(client, "/oauth/token", form)
    assert response.status_code == 200, response.text
    assert response.json()["token_type"] == "Bearer"


async def test_two_methods_at_once_is_invalid_request(
    client: httpx.AsyncClient, db: Database
) -> None:
    caller = await make_caller(db, "vendor")
    form = {**GRANT, "client_id": caller.client_id, "client_secret": caller.secret}
    response = await post_form(client, "/oauth/token", form, caller.basic)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


@pytest.mark.parametrize("alg", ["ES256", "RS256", "EdDSA"])
async def test_private_key_jwt(client: httpx.AsyncClient, db: Database, alg: str) -> None:
    key_client = await make_key_client(db, alg)
    response = await post_form(client, "/oauth/token", {**GRANT, **key_client.form()})
    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    hub_keys = KeySet.import_key_set((await client.get("/.well-known/jwks.json")).json())
    assert jwt.decode(token, hub_keys).claims["client_id"] == key_client.client_id


@pytest.mark.parametrize("aud", [ISSUER, [ISSUER]], ids=["issuer", "list"])
async def test_assertion_audiences_accepted(
    client: httpx.AsyncClient, db: Database, aud: Any
) -> None:
    """draft-ietf-oauth-rfc7523bis: the issuer identifier, a string or a one-member array."""
    key_client = await make_key_client(db)
    form = {**GRANT, **key_client.form(key_client.assertion(aud=aud))}
    response = await post_form(client, "/oauth/token", form)
    assert response.status_code == 200, response.text


TOKEN_ENDPOINT = f"{ISSUER}/oauth/token"


@pytest.mark.parametrize("aud", [TOKEN_ENDPOINT, [TOKEN_ENDPOINT]], ids=["string", "list"])
async def test_token_endpoint_aud_is_invalid_client(
    client: httpx.AsyncClient, db: Database, aud: Any
) -> None:
    """The audience-injection defence: the token endpoint URL is not the issuer."""
    key_client = await make_key_client(db)
    form = {**GRANT, **key_client.form(key_client.assertion(aud=aud))}
    response = await post_form(client, "/oauth/token", form)
    assert_invalid_client(response)
    assert response.json()["error_description"] == f"the client assertion's aud must be {ISSUER}"


@pytest.fixture
async def legacy_client(db: Database, database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """The app with HUB_ASSERTION_ACCEPT_TOKEN_ENDPOINT_AUD=true."""
    del db  # the database of the parametrisation, made and dropped by the fixture
    settings = make_settings(database_url, assertion_accept_token_endpoint_aud=True)
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:
            yield http


@pytest.mark.parametrize(
    ("aud", "accepted"),
    [
        (TOKEN_ENDPOINT, True),
        ([TOKEN_ENDPOINT], True),
        (ISSUER, True),
        (f"{ISSUER}/oauth/introspect", False),
        ([ISSUER, TOKEN_ENDPOINT], False),
    ],
    ids=["token-endpoint", "token-endpoint-list", "issuer", "introspection", "two-values"],
)
async def test_legacy_setting_readmits_the_token_endpoint_only(
    legacy_client: httpx.AsyncClient, db: Database, aud: Any, accepted: bool
) -> None:
    key_client = await make_key_client(db)
    form = {**GRANT, **key_client.form(key_client.assertion(aud=aud))}
    response = await post_form(legacy_client, "/oauth/token", form)
    if accepted:
        assert response.status_code == 200, response.text
    else:
        assert_invalid_client(response)


async def test_replayed_assertion_is_refused(client: httpx.AsyncClient, db: Database) -> None:
    key_client = await make_key_client(db)
    assertion = key_client.assertion()
    first = await post_form(client, "/oauth/token", {**GRANT, **key_client.form(assertion)})
    assert first.status_code == 200, first.text

    replay = await post_form(client, "/oauth/token", {**GRANT, **key_client.form(assertion)})

    assert_invalid_client(replay)
    assert "already used" in replay.json()["error_description"]
    async with db.session() as session:
        stored = await session.execute(
            select(func.count())
            .select_from(UsedAssertion)
            .where(col(UsedAssertion.client_id) == key_client.client_id)
        )
    assert stored.scalar_one() == 1


def _now() -> int:
    return int(time.time())


REFUSED: dict[str, Callable[[KeyClient], str]] = {
    "wrong aud": lambda c: c.assertion(aud="http://other.test"),
    "aud with two values": lambda c: c.assertion(aud=[ISSUER, "http://other.test"]),
    "aud the issuer and the token endpoint": lambda c: c.assertion(
        aud=[ISSUER, f"{ISSUER}/oauth/token"]
    ),
    "aud the introspection endpoint": lambda c: c.assertion(aud=f"{ISSUER}/oauth/introspect"),
    "alg none": unsigned,
    "HS256 keyed with the public key": hs256_with_public_key,
    "key not in the client's JWKS": lambda c: c.assertion(key=new_key("ES256")),
    "unknown key claiming the registered kid": lambda c: c.assertion(
        key=new_key("ES256"), kid=str(c.key.kid)
    ),
    "expired": lambda c: c.assertion(iat=_now() - 400, exp=_now() - 100),
    "lifetime too long": lambda c: c.assertion(exp=_now() + 3600),
    "exp too far after iat": lambda c: c.assertion(iat=_now() - 100, exp=_now() + 250),
    "no exp": lambda c: c.assertion(exp=None),
    "no jti": lambda c: c.assertion(jti=None),
    "iat in the future": lambda c: c.assertion(iat=_now() + 3600, exp=_now() + 3650),
    "iss differs from sub": lambda c: c.assertion(sub="hub_someone_else"),
    "unknown client": lambda c: c.assertion(iss="hub_" + "0" * 24, sub="hub_" + "0" * 24),
}


@pytest.mark.parametrize("case", list(REFUSED))
async def test_bad_assertion_is_invalid_client(
    client: httpx.AsyncClient, db: Database, case: str
) -> None:
    key_client = await make_key_client(db)
    form = {**GRANT, **key_client.form(REFUSED[case](key_client))}
    assert_invalid_client(await post_form(client, "/oauth/token", form))


async def test_wrong_assertion_type_is_invalid_client(
    client: httpx.AsyncClient, db: Database
) -> None:
    key_client = await make_key_client(db)
    form = {**GRANT, **key_client.form(), "client_assertion_type": "urn:example:saml"}
    assert_invalid_client(await post_form(client, "/oauth/token", form))


async def test_disabled_key_client_is_invalid_client(
    client: httpx.AsyncClient, db: Database
) -> None:
    key_client = await make_key_client(db)
    async with db.transaction() as session:
        await session.execute(
            update(Client).where(col(Client.client_id) == key_client.client_id).values(active=False)
        )
    assert_invalid_client(await post_form(client, "/oauth/token", {**GRANT, **key_client.form()}))


async def test_secret_client_cannot_use_an_assertion(
    client: httpx.AsyncClient, db: Database
) -> None:
    caller = await make_caller(db, "vendor")
    stranger = KeyClient(caller.client_id, new_key(), "ES256")
    assert_invalid_client(await post_form(client, "/oauth/token", {**GRANT, **stranger.form()}))


async def test_key_client_has_no_secret(client: httpx.AsyncClient, db: Database) -> None:
    key_client = await make_key_client(db)
    form = {**GRANT, "client_id": key_client.client_id, "client_secret": ""}
    assert_invalid_client(await post_form(client, "/oauth/token", form))


async def test_resource_indicator(client: httpx.AsyncClient, db: Database) -> None:
    """RFC 8707 §2: the hub is the only resource; anything else is invalid_target."""
    caller = await make_caller(db, "vendor")
    ok = await post_form(client, "/oauth/token", {**GRANT, "resource": ISSUER}, caller.basic)
    assert ok.status_code == 200, ok.text
    other = await post_form(
        client, "/oauth/token", {**GRANT, "resource": "https://api.other.test"}, caller.basic
    )
    assert other.status_code == 400
    assert other.json()["error"] == "invalid_target"
