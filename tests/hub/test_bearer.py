"""Bearer access tokens on /graphql (RFC 6750 §3, RFC 9068 §4, RFC 8725)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey
from sqlalchemy import select
from sqlmodel import col

from hub.db import Database
from hub.models import Client, Organization
from hub.oauth.keys import KeyRing, load_keyring
from hub.oauth.tokens import issue_access_token
from tests.conftest import SECRET, Caller, make_caller, token_for

ISSUER = "http://hub.test"
QUERY = {"query": "{ me { clientId } }"}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def b64json(value: dict[str, Any]) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode())


async def keyring_of(db: Database) -> KeyRing:
    async with db.session() as session:
        return await load_keyring(session, SECRET.encode())


def claims_for(caller: Caller, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "sub": caller.client_id,
        "aud": ISSUER,
        "exp": now + 300,
        "iat": now,
        "jti": "test-jti-" + str(now),
        "client_id": caller.client_id,
        "scope": "customers:read",
        "org": caller.org.slug,
    }
    claims.update(overrides)
    return {name: value for name, value in claims.items() if value is not None}


def sign(keyring: KeyRing, claims: dict[str, Any], **header: Any) -> str:
    """Sign with the hub's own key, with the header fields given (no default typ)."""
    full = {"alg": "ES256", "kid": keyring.signing_kid, **header}
    full = {name: value for name, value in full.items() if value is not None}
    return jwt.encode(full, claims, keyring.signing_key, algorithms=["ES256"], default_type=None)


async def graphql(http: httpx.AsyncClient, authorization: str | None) -> httpx.Response:
    headers = {"Accept": "application/graphql-response+json"}
    if authorization is not None:
        headers["Authorization"] = authorization
    return await http.post("/graphql", json=QUERY, headers=headers)


def assert_invalid_token(response: httpx.Response, token: str) -> None:
    assert response.status_code == 401, response.text
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="')
    assert 'error="invalid_token"' in challenge
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert "data" not in response.json()
    # Neither the token nor its signature is echoed (CHECKLIST: never log tokens).
    for part in {token, *[piece for piece in token.split(".") if len(piece) > 8]}:
        assert part not in response.text
        assert part not in challenge


async def test_valid_token_is_accepted(client: httpx.AsyncClient, db: Database) -> None:
    caller = await make_caller(db, "distributor")
    token = await token_for(client, caller)
    response = await graphql(client, f"Bearer {token}")
    assert response.status_code == 200, response.text
    assert response.json() == {"data": {"me": {"clientId": caller.client_id}}}


async def test_token_forged_with_hub_key_and_right_claims_is_accepted(
    client: httpx.AsyncClient, db: Database
) -> None:
    """Control for the forgeries below: only the one thing each changes makes it fail."""
    caller = await make_caller(db, "distributor")
    token = sign(await keyring_of(db), claims_for(caller), typ="at+jwt")
    response = await graphql(client, f"Bearer {token}")
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("authorization", [None, "Basic dXNlcjpwYXNz", "Token abc"])
async def test_missing_bearer_token_is_a_bare_challenge(
    client: httpx.AsyncClient, authorization: str | None
) -> None:
    response = await graphql(client, authorization)

    assert response.status_code == 401
    challenge = response.headers["www-authenticate"]
    assert challenge == 'Bearer realm="partner-hub"'
    assert "error=" not in challenge  # RFC 6750 §3.1: no error code without a token
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


def _alg_none(keyring: KeyRing, caller: Caller) -> str:
    header = {"alg": "none", "typ": "at+jwt", "kid": keyring.signing_kid}
    return f"{b64json(header)}.{b64json(claims_for(caller))}."


def _hs256_with_public_key(keyring: KeyRing, caller: Caller) -> str:
    """The algorithm-confusion attack: HMAC keyed with the published public key."""
    header = {"alg": "HS256", "typ": "at+jwt", "kid": keyring.signing_kid}
    signing_input = f"{b64json(header)}.{b64json(claims_for(caller))}"
    public = next(key for key in keyring.public_jwks if key["kid"] == keyring.signing_kid)
    secret = json.dumps(public).encode()
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(mac)}"


def _unknown_key(keyring: KeyRing, caller: Caller) -> str:
    stranger = ECKey.generate_key("P-256", private=True)
    header = {"alg": "ES256", "typ": "at+jwt", "kid": stranger.thumbprint()}
    return jwt.encode(header, claims_for(caller), stranger, algorithms=["ES256"])


def _unknown_key_claiming_hub_kid(keyring: KeyRing, caller: Caller) -> str:
    stranger = ECKey.generate_key("P-256", private=True)
    header = {"alg": "ES256", "typ": "at+jwt", "kid": keyring.signing_kid}
    return jwt.encode(header, claims_for(caller), stranger, algorithms=["ES256"])


def _tampered_claims(keyring: KeyRing, caller: Caller) -> str:
    header, _, signature = sign(keyring, claims_for(caller), typ="at+jwt").split(".")
    forged = b64json(claims_for(caller, scope="customers:read customers:write"))
    return f"{header}.{forged}.{signature}"


def _issued_expired(keyring: KeyRing, caller: Caller) -> str:
    return issue_access_token(
        keyring,
        issuer=ISSUER,
        audience=ISSUER,
        client_id=caller.client_id,
        organization_slug=caller.org.slug,
        scopes=["customers:read"],
        ttl=-100,
    ).token


Forgery = Callable[[KeyRing, Caller], str]

FORGERIES: dict[str, Forgery] = {
    "garbage": lambda _k, _c: "not-a-jwt",
    "three garbage parts": lambda _k, _c: "aaaa.bbbb.cccc",
    "expired (issued with negative ttl)": _issued_expired,
    "expired beyond leeway": lambda k, c: sign(
        k, claims_for(c, exp=int(time.time()) - 120), typ="at+jwt"
    ),
    "not yet valid (nbf in an hour)": lambda k, c: sign(
        k, claims_for(c, nbf=int(time.time()) + 3600), typ="at+jwt"
    ),
    "issued in the future": lambda k, c: sign(
        k, claims_for(c, iat=int(time.time()) + 3600), typ="at+jwt"
    ),
    "wrong issuer": lambda k, c: sign(k, claims_for(c, iss="http://evil.test"), typ="at+jwt"),
    "issuer with trailing slash": lambda k, c: sign(
        k, claims_for(c, iss=ISSUER + "/"), typ="at+jwt"
    ),
    "wrong audience": lambda k, c: sign(k, claims_for(c, aud="http://other.test"), typ="at+jwt"),
    "audience list without hub": lambda k, c: sign(
        k, claims_for(c, aud=["http://a.test", "http://b.test"]), typ="at+jwt"
    ),
    "typ JWT": lambda k, c: sign(k, claims_for(c), typ="JWT"),
    "typ dpop+jwt": lambda k, c: sign(k, claims_for(c), typ="dpop+jwt"),
    "missing typ": lambda k, c: sign(k, claims_for(c)),
    "missing exp": lambda k, c: sign(k, claims_for(c, exp=None), typ="at+jwt"),
    "missing jti": lambda k, c: sign(k, claims_for(c, jti=None), typ="at+jwt"),
    "missing client_id": lambda k, c: sign(k, claims_for(c, client_id=None), typ="at+jwt"),
    "non-string scope": lambda k, c: sign(k, claims_for(c, scope=["a"]), typ="at+jwt"),
    "alg none": _alg_none,
    "HS256 keyed with the public JWK": _hs256_with_public_key,
    "unknown EC key": _unknown_key,
    "unknown EC key claiming the hub kid": _unknown_key_claiming_hub_kid,
    "claims tampered after signing": _tampered_claims,
    "unknown client": lambda k, c: sign(
        k, claims_for(c, client_id="hub_" + "0" * 24, sub="hub_" + "0" * 24), typ="at+jwt"
    ),
}


@pytest.mark.parametrize("name", list(FORGERIES))
async def test_unusable_token_is_invalid_token(
    client: httpx.AsyncClient, db: Database, name: str
) -> None:
    caller = await make_caller(db, "distributor")
    token = FORGERIES[name](await keyring_of(db), caller)

    response = await graphql(client, f"Bearer {token}")

    assert_invalid_token(response, token)


@pytest.mark.parametrize("authorization", ["Bearer", "Bearer ", "Bearer a b"])
async def test_malformed_authorization_header_is_invalid_token(
    client: httpx.AsyncClient, authorization: str
) -> None:
    response = await graphql(client, authorization)
    assert response.status_code == 401, response.text
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


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


@pytest.mark.parametrize("disable", [_disable_client, _disable_org], ids=["client", "organization"])
async def test_token_of_a_disabled_client_is_refused(
    client: httpx.AsyncClient,
    db: Database,
    disable: Callable[[Database, Caller], Awaitable[None]],
) -> None:
    caller = await make_caller(db, "distributor")
    token = await token_for(client, caller)
    assert (await graphql(client, f"Bearer {token}")).status_code == 200

    await disable(db, caller)

    assert_invalid_token(await graphql(client, f"Bearer {token}"), token)


async def test_scheme_name_is_case_insensitive(client: httpx.AsyncClient, db: Database) -> None:
    caller = await make_caller(db, "distributor")
    token = await token_for(client, caller)
    response = await graphql(client, f"bearer {token}")
    assert response.status_code == 200, response.text
