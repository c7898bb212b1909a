"""oauth4webapi (an independent, spec-following client) against the real hub: discovery,
the authorization code grant with PKCE S256 through the staff sign-in page, a refresh with
rotation, and the refreshed access token accepted at /graphql."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest

from tests.conformance.conftest import NodeTools
from tests.e2e.server import HUB, HubServer

pytestmark = [pytest.mark.e2e, pytest.mark.conformance]

PASSWORD = "conformance password " + uuid.uuid4().hex[:8]
REDIRECT = "http://127.0.0.1:9/callback"


async def _hub(server: HubServer, *args: str, stdin: str | None = None) -> dict[str, Any]:
    process = await asyncio.create_subprocess_exec(
        HUB,
        *args,
        cwd=server.workdir,
        env=server.env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    data = None if stdin is None else stdin.encode()
    out, err = await asyncio.wait_for(process.communicate(data), timeout=60)
    assert process.returncode == 0, err.decode()
    result: dict[str, Any] = json.loads(out)
    return result


async def test_authorization_code_pkce_and_refresh(
    hub_server: HubServer, node_tools: NodeTools
) -> None:
    org = hub_server.credential("operator")["org"]
    email = f"staff-{uuid.uuid4().hex[:8]}@example.test"
    user = await _hub(
        hub_server,
        *("users", "create", "--org", org, "--role", "analyst", "--email", email),
        *("--name", "Staff", "--password-stdin"),
        stdin=PASSWORD + "\n",
    )
    assert user["email"] == email
    registered = await _hub(
        hub_server,
        *("clients", "create", "--org", org, "--scopes", "customers:read"),
        *("--grant", "authorization_code", "--public", "--redirect-uri", REDIRECT),
    )
    assert registered["token_endpoint_auth_method"] == "none"

    result = await node_tools.run(
        "oauth_code.mjs",
        stdin={
            "issuer": hub_server.base_url,
            "clientId": registered["client_id"],
            "redirectUri": REDIRECT,
            "email": email,
            "password": PASSWORD,
        },
    )

    assert result["tokenType"].lower() == "bearer"
    assert result["scope"] == "customers:read"
    assert result["hasRefreshToken"] is True
    assert result["rotated"] is True
    assert result["refreshedScope"] == "customers:read"
    assert result["graphqlStatus"] == 200
    assert result["me"] == {"clientId": registered["client_id"]}
