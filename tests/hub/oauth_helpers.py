"""Helpers for the OAuth tests: private_key_jwt clients and their assertions."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
import warnings
from dataclasses import dataclass
from typing import Any

import httpx
from joserfc import jwt
from joserfc.errors import SecurityWarning
from joserfc.jwk import ECKey, OKPKey, RSAKey

from hub.db import Database
from hub.oauth.assertions import ASSERTION_TYPE
from hub.oauth.client_keys import validate_client_jwks
from hub.oauth.clients import create_key_client
from tests.conftest import ALL_SCOPES, make_org

ISSUER = "http://hub.test"
PrivateKey = ECKey | RSAKey | OKPKey


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def b64json(value: dict[str, Any]) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode())


def new_key(alg: str = "ES256") -> PrivateKey:
    key: PrivateKey
    if alg == "ES256":
        key = ECKey.generate_key("P-256", private=True)
    elif alg == "RS256":
        key = RSAKey.generate_key(2048, private=True)
    else:
        key = OKPKey.generate_key("Ed25519", private=True)
    key.ensure_kid()
    return key


def public_jwks(*keys: PrivateKey) -> dict[str, Any]:
    return {"keys": [{**key.as_dict(private=False), "kid": key.kid} for key in keys]}


@dataclass
class KeyClient:
    client_id: str
    key: PrivateKey
    alg: str

    def claims(self, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": ISSUER,
            "iat": now,
            "exp": now + 60,
            "jti": uuid.uuid4().hex,
        }
        claims.update(overrides)
        return {name: value for name, value in claims.items() if value is not None}

    def assertion(
        self, key: PrivateKey | None = None, kid: str | None = None, **overrides: Any
    ) -> str:
        signer = key or self.key
        header = {"alg": self.alg, "kid": kid or signer.kid}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SecurityWarning)  # EdDSA: see hub.oauth.assertions
            return jwt.encode(header, self.claims(**overrides), signer, algorithms=[self.alg])

    def form(self, assertion: str | None = None, **extra: str) -> dict[str, str]:
        return {
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion or self.assertion(),
            **extra,
        }


async def make_key_client(
    db: Database, alg: str = "ES256", *, scopes: list[str] | None = None
) -> KeyClient:
    org = await make_org(db, "distributor")
    key = new_key(alg)
    async with db.transaction() as session:
        client = await create_key_client(
            session,
            organization=org,
            name="keys",
            scopes=scopes or ALL_SCOPES,
            jwks=validate_client_jwks(public_jwks(key)),
        )
    return KeyClient(client.client_id, key, alg)


def unsigned(client: KeyClient, **overrides: Any) -> str:
    """``alg: none`` (RFC 7519 §6): no signature at all."""
    return f"{b64json({'alg': 'none'})}.{b64json(client.claims(**overrides))}."


def hs256_with_public_key(client: KeyClient) -> str:
    """The algorithm-confusion attack: HMAC keyed with the client's public JWK."""
    signing_input = f"{b64json({'alg': 'HS256', 'kid': client.key.kid})}.{b64json(client.claims())}"
    secret = json.dumps(client.key.as_dict(private=False)).encode()
    return f"{signing_input}.{b64url(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())}"


async def post_form(
    http: httpx.AsyncClient, path: str, data: dict[str, str], authorization: str | None = None
) -> httpx.Response:
    headers = {} if authorization is None else {"Authorization": authorization}
    return await http.post(path, data=data, headers=headers)
