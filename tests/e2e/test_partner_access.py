"""Access through the real server: what a partner sees, and how a bad token is refused."""

from __future__ import annotations

import httpx
import pytest

from tests.e2e.server import HubServer

pytestmark = pytest.mark.e2e

CUSTOMERS = """
{ customers(first: 100) { totalCount edges { node { id name email phone lifetimeValue } } } }
"""


async def test_distributor_sees_its_customers_without_contact_fields(
    hub_server: HubServer,
) -> None:
    body = await hub_server.gql("distributor", CUSTOMERS)
    nodes = [edge["node"] for edge in body["data"]["customers"]["edges"]]
    assert nodes, "the demo distributor should serve some customers"
    for node in nodes:
        assert node["id"]
        assert node["name"]
        assert (node["email"], node["phone"], node["lifetimeValue"]) == (None, None, None), node

    everything = await hub_server.gql("operator", CUSTOMERS)
    operator_nodes = [edge["node"] for edge in everything["data"]["customers"]["edges"]]
    assert everything["data"]["customers"]["totalCount"] > body["data"]["customers"]["totalCount"]
    assert any(node["email"] for node in operator_nodes), "the operator sees contact fields"


@pytest.mark.parametrize(
    "token",
    [
        "not-a-jwt",
        "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.",
    ],
    ids=["garbage", "alg-none"],
)
async def test_invalid_token_is_refused_with_a_bearer_challenge(
    hub_server: HubServer, token: str
) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.post(
            hub_server.graphql_url,
            json={"query": "{ customers(first: 1) { totalCount } }"},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert response.status_code == 401, response.text
    challenge = response.headers.get("www-authenticate", "")
    assert challenge.startswith("Bearer "), challenge
    assert 'error="invalid_token"' in challenge, challenge
    assert "data" not in response.json()


async def test_a_tampered_token_is_refused(hub_server: HubServer) -> None:
    header, payload, signature = (await hub_server.token("distributor")).split(".")
    flipped = signature[:-2] + ("AA" if signature[-2:] != "AA" else "BB")
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.post(
            hub_server.graphql_url,
            json={"query": "{ customers(first: 1) { totalCount } }"},
            headers={"Authorization": f"Bearer {header}.{payload}.{flipped}"},
        )
    assert response.status_code == 401, response.text
    assert 'error="invalid_token"' in response.headers.get("www-authenticate", "")
