"""Access through the real server (``hub demo`` data, the default sharing policy): what a
distributor and a vendor see, and how a bad token is refused."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from policies.masks import last4, partial_email
from tests.e2e.server import HubServer

pytestmark = pytest.mark.e2e

DISTRIBUTOR_VIEW = """
{ customers(first: 100) { totalCount edges { node { id name city email phone } } } }
"""
OPERATOR_VIEW = """
{ customers(first: 100) { totalCount edges { node { id name city email phone
    consent { shareWithPartners }
    partners(first: 50) { edges { node { organization { slug } } } } } } } }
"""
CUSTOMER_FIELDS = '{ __type(name: "Customer") { fields { name } } }'


def _nodes(body: dict[str, Any]) -> list[dict[str, Any]]:
    connection = body["data"]["customers"]
    nodes = [edge["node"] for edge in connection["edges"]]
    assert connection["totalCount"] == len(nodes), "the demo has more customers than one page"
    return nodes


async def test_distributor_sees_its_consenting_customers_with_masked_contacts(
    hub_server: HubServer,
) -> None:
    slug = hub_server.credential("distributor")["org"]
    everyone = {
        node["id"]: node for node in _nodes(await hub_server.gql("operator", OPERATOR_VIEW))
    }
    assert any(node["email"] for node in everyone.values()), "the operator sees contact fields"

    def assigned(node: dict[str, Any]) -> bool:
        return slug in {edge["node"]["organization"]["slug"] for edge in node["partners"]["edges"]}

    expected = {
        id_
        for id_, node in everyone.items()
        if assigned(node) and node["consent"]["shareWithPartners"]
    }
    withheld = {id_ for id_, node in everyone.items() if assigned(node)} - expected
    assert expected, "the demo distributor should serve some consenting customers"
    assert withheld, "the demo distributor should also serve customers who did not consent"

    nodes = _nodes(await hub_server.gql("distributor", DISTRIBUTOR_VIEW))
    # Its assigned customers that consented to partner sharing: no other.
    assert {node["id"] for node in nodes} == expected
    for node in nodes:
        clear = everyone[node["id"]]
        assert (node["name"], node["city"]) == (clear["name"], clear["city"])
        # Contact details masked (partial_email, last4), never in clear.
        assert node["email"] == partial_email(clear["email"]), node
        assert node["phone"] == last4(clear["phone"]), node
        for field in ("email", "phone"):
            assert node[field] is None or node[field] != clear[field], (field, node)


@pytest.mark.parametrize("field", ["lifetimeValue", "traits", "createdAt"])
async def test_fields_a_distributor_never_sees_are_unknown_to_it(
    hub_server: HubServer, field: str
) -> None:
    described = await hub_server.gql("distributor", CUSTOMER_FIELDS)
    assert field not in {f["name"] for f in described["data"]["__type"]["fields"]}
    query = "{ customers(first: 1) { edges { node { id %s } } } }"
    stand_in = "q" * len(field)
    hidden = await hub_server.post("distributor", query % field)
    unknown = await hub_server.post("distributor", query % stand_in)
    # Not refused: unknown, exactly like a name that exists nowhere (DESIGN §5).
    assert hidden.status_code == unknown.status_code == 400, hidden.text
    assert hidden.json() == json.loads(unknown.text.replace(stand_in, field))
    assert [e["extensions"]["code"] for e in hidden.json()["errors"]] == [
        "GRAPHQL_VALIDATION_FAILED"
    ]
    # The operator has the field.
    await hub_server.gql("operator", query % field)


async def test_a_vendor_sees_no_customer_at_all(hub_server: HubServer) -> None:
    me = await hub_server.gql("vendor", "{ me { organization { kind } } }")
    assert me["data"]["me"]["organization"]["kind"] == "VENDOR"
    response = await hub_server.post("vendor", "{ customers(first: 1) { totalCount } }")
    assert response.status_code == 400, response.text
    assert [e["message"] for e in response.json()["errors"]] == [
        "Cannot query field 'customers' on type 'Query'."
    ]


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
