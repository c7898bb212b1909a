"""Refresh tokens of staff sessions: rotation and reuse detection (RFC 6749 §6,
RFC 9700 §4.14.2)."""

from __future__ import annotations

from typing import Any

import httpx

from hub.db import Database
from hub.models import RefreshToken
from tests.hub.staff_helpers import (
    CodeClient,
    exchange,
    get_code,
    make_code_client,
    make_staff,
    me,
    pkce_pair,
    refresh,
    unverified_claims,
)


async def _session(http: httpx.AsyncClient, db: Database) -> tuple[CodeClient, dict[str, Any]]:
    staff = await make_staff(db, roles=("member",))
    registered = await make_code_client(db, staff.org)
    verifier, challenge = pkce_pair()
    code = await get_code(http, registered.client_id, staff.email, challenge)
    response = await exchange(http, registered, code, verifier)
    assert response.status_code == 200, response.text
    return registered, response.json()


async def test_refresh_rotates(client: httpx.AsyncClient, db: Database) -> None:
    registered, first = await _session(client, db)

    response = await refresh(client, registered, first["refresh_token"])

    assert response.status_code == 200, response.text
    second = response.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["scope"] == first["scope"]
    assert unverified_claims(second["access_token"])["roles"] == ["member"]
    assert (await me(client, second["access_token"])).status_code == 200
    # Refresh tokens are stored hashed.
    async with db.session() as session:
        assert await session.get(RefreshToken, second["refresh_token"]) is None


async def test_reused_refresh_token_kills_the_family(
    client: httpx.AsyncClient, db: Database
) -> None:
    registered, first = await _session(client, db)
    second = (await refresh(client, registered, first["refresh_token"])).json()

    reused = await refresh(client, registered, first["refresh_token"])

    assert reused.status_code == 400
    assert reused.json()["error"] == "invalid_grant"
    newest = await refresh(client, registered, second["refresh_token"])
    assert newest.json()["error"] == "invalid_grant"
    runtime = client._transport.app.state.runtime  # type: ignore[attr-defined]
    await runtime.revocations.refresh(db)
    for body in (first, second):
        assert (await me(client, body["access_token"])).status_code == 401


async def test_another_clients_refresh_token_is_refused(
    client: httpx.AsyncClient, db: Database
) -> None:
    registered, first = await _session(client, db)
    staff = await make_staff(db)
    other = await make_code_client(db, staff.org)
    response = await refresh(client, other, first["refresh_token"])
    assert response.json()["error"] == "invalid_grant"
    # The rightful client still can (the failed attempt did not spend it).
    assert (await refresh(client, registered, first["refresh_token"])).status_code == 200


async def test_unknown_refresh_token(client: httpx.AsyncClient, db: Database) -> None:
    registered, _ = await _session(client, db)
    response = await refresh(client, registered, "not-a-token")
    assert response.json()["error"] == "invalid_grant"


async def test_disabled_user_cannot_refresh(client: httpx.AsyncClient, db: Database) -> None:
    registered, first = await _session(client, db)
    async with db.transaction() as session:
        row = await session.get(RefreshToken, _hash(first["refresh_token"]))
        assert row is not None
        from hub.models import StaffUser

        user = await session.get(StaffUser, row.user_id)
        assert user is not None
        user.active = False
    response = await refresh(client, registered, first["refresh_token"])
    assert response.json()["error"] == "invalid_grant"
    # client_cache_ttl is 0 in tests: the access token stops at once.
    assert (await me(client, first["access_token"])).status_code == 401


def _hash(token: str) -> str:
    import hashlib

    return hashlib.sha256(token.encode()).hexdigest()
