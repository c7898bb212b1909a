"""The token endpoint (RFC 6749 §4.4, §5), its metadata (RFC 8414) and the JWKS."""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet
from sqlalchemy import select
from sqlmodel import col

from hub.db import Database
from hub.models import Client, Organization
from tests.conftest import ALL_SCOPES, Caller, make_caller

ISSUER = "http://hub.test"
FORM = "application/x-www-form-urlencoded"


def basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


async def post_token(
    http: httpx.AsyncClient,
    body: str,
    *,
    authorization: str | None,
    content_type: str = FORM,
) -> httpx.Response:
    headers = {"Content-Type": content_type}
    if authorization is not None:
        headers["Authorization"] = authorization
    return await http.post("/oauth/token", content=body.encode(), headers=headers)


async def decode_with_jwks(http: httpx.AsyncClient, token: str) -> jwt.Token:
    jwks = (await http.get("/.well-known/jwks.json")).json()
    return jwt.decode(token, KeySet.import_key_set(jwks), algorithms=["ES256"])


async def test_success_returns_a_signed_rfc9068_access_token(
    client: httpx.AsyncClient, db: Database
) -> None:
    caller = await make_caller(db, "distributor")
    response = await post_token(client, "grant_type=client_credentials", authorization=caller.basic)

    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert isinstance(body["expires_in"], int) and body["expires_in"] > 0
    assert body["scope"].split() == sorted(ALL_SCOPES)

    decoded = await decode_with_jwks(client, body["access_token"])
    assert decoded.header["typ"] == "at+jwt"
    assert decoded.header["alg"] == "ES256"
    jwks = (await client.get("/.well-known/jwks.json")).json()
    assert decoded.header["kid"] in {key["kid"] for key in jwks["keys"]}

    claims = decoded.claims
    assert claims["iss"] == ISSUER
    assert claims["sub"] == caller.client_id
    assert claims["client_id"] == caller.client_id
    assert claims["aud"] == ISSUER
    assert claims["org"] == caller.org.slug
    assert claims["scope"] == body["scope"]
    assert claims["exp"] - claims["iat"] == body["expires_in"]
    assert isinstance(claims["jti"], str) and len(claims["jti"]) >= 16


async def test_each_token_has_its_own_jti(client: httpx.AsyncClient, db: Database) -> None:
    caller = await make_caller(db, "vendor")
    jtis = set()
    for _ in range(3):
        response = await post_token(
            client, "grant_type=client_credentials", authorization=caller.basic
        )
        decoded = await decode_with_jwks(client, response.json()["access_token"])
        jtis.add(decoded.claims["jti"])
    assert len(jtis) == 3


async def test_requested_subset_narrows_the_scope(client: httpx.AsyncClient, db: Database) -> None:
    caller = await make_caller(db, "supplier")
    response = await post_token(
        client,
        "grant_type=client_credentials&scope=feedback%3Aread+customers%3Aread",
        authorization=caller.basic,
    )

    assert response.status_code == 200, response.text
    assert response.json()["scope"] == "customers:read feedback:read"
    decoded = await decode_with_jwks(client, response.json()["access_token"])
    assert decoded.claims["scope"] == "customers:read feedback:read"


async def _disable_client(db: Database, caller: Caller) -> None:
    async with db.transaction() as session:
        row = (
            await session.execute(select(Client).where(col(Client.client_id) == caller.client_id))
        ).scalar_one()
        row.active = False


async def _disable_org(db: Database, caller: Caller) -> None:
    async with db.transaction() as session:
        org = await session.get(Organization, caller.org.id)
        assert org is not None
        org.active = False


async def _no_change(_db: Database, _caller: Caller) -> None:
    return None


# name -> (Authorization header for the caller, extra form body, change made first)
AUTH_FAILURES: dict[
    str,
    tuple[Callable[[Caller], str | None], str, Callable[[Database, Caller], Awaitable[None]]],
] = {
    "wrong secret": (lambda c: basic(c.client_id, c.secret + "x"), "", _no_change),
    "unknown client": (lambda c: basic("hub_" + "0" * 24, c.secret), "", _no_change),
    "disabled client": (lambda c: c.basic, "", _disable_client),
    "disabled organization": (lambda c: c.basic, "", _disable_org),
    "no authorization": (lambda c: None, "", _no_change),
    "wrong secret in the body (client_secret_post)": (
        lambda c: None,
        "&client_id={id}&client_secret={secret}x",
        _no_change,
    ),
    "disabled client (client_secret_post)": (
        lambda c: None,
        "&client_id={id}&client_secret={secret}",
        _disable_client,
    ),
    "other scheme": (lambda c: "Token " + c.secret, "", _no_change),
    "basic not base64": (lambda c: "Basic !!not-base64!!", "", _no_change),
    "basic without colon": (
        lambda c: "Basic " + base64.b64encode(c.client_id.encode()).decode(),
        "",
        _no_change,
    ),
}


@pytest.mark.parametrize("case", list(AUTH_FAILURES))
async def test_client_authentication_failures_are_invalid_client(
    client: httpx.AsyncClient, db: Database, case: str
) -> None:
    authorization, extra, prepare = AUTH_FAILURES[case]
    caller = await make_caller(db, "distributor")
    await prepare(db, caller)
    body = "grant_type=client_credentials" + extra.format(id=caller.client_id, secret=caller.secret)

    response = await post_token(client, body, authorization=authorization(caller))

    assert response.status_code == 401, response.text
    assert response.json()["error"] == "invalid_client"
    assert response.headers["www-authenticate"].startswith("Basic")
    assert response.headers["cache-control"] == "no-store"
    assert "access_token" not in response.json()


async def test_invalid_client_answers_are_identical(
    client: httpx.AsyncClient, db: Database
) -> None:
    """Unknown, wrong-secret and disabled clients get one answer (no account probing)."""
    caller = await make_caller(db, "distributor")
    unknown = await post_token(
        client, "grant_type=client_credentials", authorization=basic("hub_nobody", "x")
    )
    wrong = await post_token(
        client, "grant_type=client_credentials", authorization=basic(caller.client_id, "x")
    )
    await _disable_client(db, caller)
    disabled = await post_token(client, "grant_type=client_credentials", authorization=caller.basic)
    assert unknown.json() == wrong.json() == disabled.json()


@pytest.mark.parametrize(
    ("body", "content_type", "error"),
    [
        ("", FORM, "invalid_request"),
        ("scope=customers%3Aread", FORM, "invalid_request"),
        ("grant_type=", FORM, "invalid_request"),
        (
            "grant_type=password&username=a&password=b",
            FORM,
            "unsupported_grant_type",
        ),
        # Supported now, but not for a client_credentials client (RFC 6749 §5.2).
        ("grant_type=authorization_code&code=x", FORM, "unauthorized_client"),
        ("grant_type=client_credentials&scope=admin", FORM, "invalid_scope"),
        (
            "grant_type=client_credentials&grant_type=client_credentials",
            FORM,
            "invalid_request",
        ),
        (
            "grant_type=client_credentials&scope=customers%3Aread&scope=feedback%3Aread",
            FORM,
            "invalid_request",
        ),
        ('{"grant_type": "client_credentials"}', "application/json", "invalid_request"),
        ("grant_type=client_credentials", "text/plain", "invalid_request"),
        ("grant_type=client_credentials", "multipart/form-data; boundary=x", "invalid_request"),
    ],
)
async def test_request_errors_follow_rfc6749_section_5_2(
    client: httpx.AsyncClient, db: Database, body: str, content_type: str, error: str
) -> None:
    caller = await make_caller(db, "distributor")
    response = await post_token(client, body, authorization=caller.basic, content_type=content_type)

    assert response.status_code == 400, response.text
    payload = response.json()
    assert payload["error"] == error
    assert isinstance(payload["error_description"], str)
    assert "access_token" not in payload
    assert response.headers["cache-control"] == "no-store"


async def test_scope_the_client_lacks_is_invalid_scope(
    client: httpx.AsyncClient, db: Database
) -> None:
    caller = await make_caller(db, "distributor", scopes=["customers:read"])
    response = await post_token(
        client,
        "grant_type=client_credentials&scope=customers%3Aread+customers%3Awrite",
        authorization=caller.basic,
    )

    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_scope"


async def test_no_scope_requested_grants_the_registered_scopes(
    client: httpx.AsyncClient, db: Database
) -> None:
    caller = await make_caller(db, "distributor", scopes=["feedback:read", "customers:read"])
    response = await post_token(client, "grant_type=client_credentials", authorization=caller.basic)
    assert response.json()["scope"] == "customers:read feedback:read"


async def test_client_secret_is_stored_hashed(db: Database) -> None:
    caller = await make_caller(db, "distributor")
    async with db.session() as session:
        row = (
            await session.execute(select(Client).where(col(Client.client_id) == caller.client_id))
        ).scalar_one()
    assert row.secret_hash is not None
    assert row.secret_hash != caller.secret
    assert caller.secret not in row.secret_hash


async def test_get_is_not_allowed_on_the_token_endpoint(
    client: httpx.AsyncClient, db: Database
) -> None:
    caller = await make_caller(db, "distributor")
    response = await client.get(
        "/oauth/token",
        params={"grant_type": "client_credentials"},
        headers={"Authorization": caller.basic},
    )
    assert response.status_code == 405


async def test_authorization_server_metadata(client: httpx.AsyncClient) -> None:
    response = await client.get("/.well-known/oauth-authorization-server")

    assert response.status_code == 200
    metadata: dict[str, Any] = response.json()
    assert metadata["issuer"] == ISSUER
    assert metadata["token_endpoint"] == f"{ISSUER}/oauth/token"
    assert metadata["jwks_uri"] == f"{ISSUER}/.well-known/jwks.json"
    assert metadata["introspection_endpoint"] == f"{ISSUER}/oauth/introspect"
    assert metadata["revocation_endpoint"] == f"{ISSUER}/oauth/revoke"
    assert metadata["grant_types_supported"] == [
        "client_credentials",
        "authorization_code",
        "refresh_token",
    ]
    assert metadata["authorization_endpoint"] == f"{ISSUER}/oauth/authorize"
    assert metadata["response_types_supported"] == ["code"]
    assert metadata["code_challenge_methods_supported"] == ["S256"]
    methods = ["client_secret_basic", "client_secret_post", "private_key_jwt"]
    # "none" (public clients) only where a code is redeemed, never to introspect or revoke.
    assert metadata["token_endpoint_auth_methods_supported"] == [*methods, "none"]
    for endpoint in ("introspection", "revocation"):
        assert metadata[f"{endpoint}_endpoint_auth_methods_supported"] == methods
    for endpoint in ("token", "introspection", "revocation"):
        algorithms = metadata[f"{endpoint}_endpoint_auth_signing_alg_values_supported"]
        assert algorithms == ["ES256", "RS256", "EdDSA"]
    assert set(metadata["scopes_supported"]) == {*ALL_SCOPES, "webhooks:manage"}
    assert metadata["access_token_signing_alg_values_supported"] == ["ES256"]


async def test_jwks_publishes_public_keys_only(client: httpx.AsyncClient) -> None:
    response = await client.get("/.well-known/jwks.json")

    assert response.status_code == 200
    keys = response.json()["keys"]
    assert keys
    for key in keys:
        assert key["kty"] == "EC"
        assert key["crv"] == "P-256"
        assert key["alg"] == "ES256"
        assert key["use"] == "sig"
        assert "kid" in key
        assert "d" not in key
