"""openid-client v6 (an independent, spec-following client) against the real hub:
discovery, client_credentials with client_secret_basic and private_key_jwt, then
introspection active -> revocation -> introspection inactive."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from joserfc.jwk import ECKey

from tests.conformance.conftest import NodeTools
from tests.e2e.server import HUB, HubServer

pytestmark = [pytest.mark.e2e, pytest.mark.conformance]


async def _register_key_client(server: HubServer, public_jwks: dict[str, Any]) -> str:
    path = server.workdir / "client-jwks.json"
    path.write_text(json.dumps(public_jwks))
    org = server.credential("distributor")["org"]
    process = await asyncio.create_subprocess_exec(
        HUB,
        "clients",
        "create",
        "--org",
        org,
        "--scopes",
        "customers:read",
        "--jwks",
        str(path),
        cwd=server.workdir,
        env=server.env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, err.decode()
    client_id: str = json.loads(out)["client_id"]
    return client_id


def _assert_flow(result: dict[str, Any], server: HubServer) -> None:
    assert result["scope"] == "customers:read"
    assert result["tokenType"].lower() == "bearer"
    assert result["activeBefore"] is True
    assert result["activeAfter"] is False
    assert result["metadata"] == {
        "introspection_endpoint": f"{server.base_url}/oauth/introspect",
        "revocation_endpoint": f"{server.base_url}/oauth/revoke",
    }


async def test_client_secret_basic(hub_server: HubServer, node_tools: NodeTools) -> None:
    row = hub_server.credential("distributor")
    result = await node_tools.run(
        "oauth.mjs",
        stdin={
            "issuer": hub_server.base_url,
            "clientId": row["client_id"],
            "secret": row["client_secret"],
        },
    )
    _assert_flow(result, hub_server)
    assert result["clientIdIntrospected"] == row["client_id"]


async def test_private_key_jwt(hub_server: HubServer, node_tools: NodeTools) -> None:
    key = ECKey.generate_key("P-256", private=True)
    kid = key.thumbprint()
    client_id = await _register_key_client(
        hub_server, {"keys": [{**key.as_dict(private=False), "kid": kid}]}
    )
    result = await node_tools.run(
        "oauth.mjs",
        stdin={
            "issuer": hub_server.base_url,
            "clientId": client_id,
            "privateJwk": {**key.as_dict(private=True), "kid": kid},
        },
    )
    _assert_flow(result, hub_server)
    assert result["clientIdIntrospected"] == client_id
    # The method openid-client used is the one the metadata advertises.
    async with httpx.AsyncClient(base_url=hub_server.base_url) as http:
        metadata = (await http.get("/.well-known/oauth-authorization-server")).json()
    assert "private_key_jwt" in metadata["token_endpoint_auth_methods_supported"]
