"""Helpers for staff sign-in tests: users, authorization_code clients, the login form."""

from __future__ import annotations

import base64
import html
import json
import re
import secrets
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from hub.db import Database
from hub.models import Organization, StaffUser
from hub.oauth.clients import create_code_client
from hub.oauth.pkce import s256
from hub.staff import create_staff_user
from tests.conftest import ALL_SCOPES, make_org

PASSWORD = "correct horse battery staple"
REDIRECT = "https://console.test/callback"


@dataclass
class Staff:
    user: StaffUser
    org: Organization
    email: str


async def make_staff(
    db: Database, kind: str = "operator", roles: tuple[str, ...] = ("analyst",)
) -> Staff:
    org = await make_org(db, kind)
    email = f"Person.{uuid.uuid4().hex[:6]}@Example.test"
    async with db.transaction() as session:
        user = await create_staff_user(
            session, organization=org, email=email, name="Person", password=PASSWORD, roles=roles
        )
    return Staff(user, org, email)


@dataclass
class CodeClient:
    client_id: str
    secret: str | None


async def make_code_client(
    db: Database, org: Organization, *, public: bool = True, scopes: list[str] | None = None
) -> CodeClient:
    async with db.transaction() as session:
        client, secret = await create_code_client(
            session,
            organization=org,
            name="console",
            scopes=scopes or ALL_SCOPES,
            redirect_uris=[REDIRECT],
            public=public,
        )
    return CodeClient(client.client_id, secret)


def unverified_claims(token: str) -> dict[str, Any]:
    """The payload of a JWT, read without checking it (the hub checks it at /graphql)."""
    payload = token.split(".")[1]
    claims: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return claims


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    return verifier, s256(verifier)


def authorize_params(client_id: str, challenge: str | None, **extra: str) -> dict[str, str]:
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT,
        "scope": "customers:read",
        "state": "st-" + uuid.uuid4().hex,
    }
    if challenge is not None:
        params.update(code_challenge=challenge, code_challenge_method="S256")
    params.update(extra)
    return {name: value for name, value in params.items() if value}


def form_fields(page: str) -> dict[str, str]:
    """The hidden inputs of the sign-in form."""
    pattern = r'<input type="hidden" name="([^"]+)" value="([^"]*)">'
    return {name: html.unescape(value) for name, value in re.findall(pattern, page)}


async def submit_login(
    http: httpx.AsyncClient, params: dict[str, str], email: str, password: str = PASSWORD
) -> httpx.Response:
    page = await http.get("/oauth/authorize", params=params)
    assert page.status_code == 200, page.text
    fields = {**form_fields(page.text), "email": email, "password": password}
    return await http.post("/oauth/authorize", data=fields)


def redirect_query(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    assert location.startswith(REDIRECT + "?"), location
    return {name: values[0] for name, values in parse_qs(urlsplit(location).query).items()}


async def get_code(http: httpx.AsyncClient, client_id: str, email: str, challenge: str) -> str:
    params = authorize_params(client_id, challenge)
    query = redirect_query(await submit_login(http, params, email))
    assert query["state"] == params["state"]
    return query["code"]


async def exchange(
    http: httpx.AsyncClient,
    client: CodeClient,
    code: str,
    verifier: str | None,
    redirect_uri: str = REDIRECT,
) -> httpx.Response:
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "client_id": client.client_id,
    }
    if verifier is not None:
        data["code_verifier"] = verifier
    if client.secret is not None:
        data["client_secret"] = client.secret
    return await http.post("/oauth/token", data=data)


async def refresh(http: httpx.AsyncClient, client: CodeClient, token: str) -> httpx.Response:
    data = {"grant_type": "refresh_token", "refresh_token": token, "client_id": client.client_id}
    if client.secret is not None:
        data["client_secret"] = client.secret
    return await http.post("/oauth/token", data=data)


async def me(http: httpx.AsyncClient, access_token: str) -> httpx.Response:
    return await http.post(
        "/graphql",
        json={"query": "{ me { clientId } }"},
        headers={
            "Authorization": f"Bearer {access_token}",
            "Accept": "application/graphql-response+json",
        },
    )
