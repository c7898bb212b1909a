"""The hub as an Apollo Federation v2 subgraph: its ``_service { sdl }`` composes with
another subgraph (``@apollo/composition``), and ``_entities`` is scoped like ``customer``."""

from __future__ import annotations

import base64
import re
import uuid
from typing import Any

import pytest

from tests.conformance.conftest import NodeTools
from tests.e2e.server import HubServer

pytestmark = [pytest.mark.e2e, pytest.mark.conformance]

LOYALTY_SDL = """
extend schema @link(url: "https://specs.apollo.dev/federation/v2.0", import: ["@key"])

type Customer @key(fields: "id") {
  id: ID!
  loyaltyPoints: Int
}
"""
HUB_CUSTOMER_FIELDS = ("name", "email", "phone", "lifetimeValue", "feedback", "partners")

ENTITIES = """
query ($representations: [_Any!]!) {
  _entities(representations: $representations) {
    __typename
    ... on Customer { id name email phone }
  }
}
"""
IDS = "query ($first: Int) { customers(first: $first) { totalCount edges { node { id } } } }"


def _type_block(sdl: str, name: str) -> str:
    match = re.search(rf"^type {name}\b[^{{]*\{{(.*?)^\}}", sdl, re.MULTILINE | re.DOTALL)
    assert match, f"no type {name} in the supergraph:\n{sdl}"
    return match.group(1)


async def _customer_ids(server: HubServer, kind: str) -> list[str]:
    body = await server.gql(kind, IDS, {"first": 100})
    connection = body["data"]["customers"]
    ids = [edge["node"]["id"] for edge in connection["edges"]]
    assert len(ids) == connection["totalCount"], "the demo has more customers than one page"
    return ids


async def test_hub_subgraph_composes_with_a_customer_extension(
    hub_server: HubServer, node_tools: NodeTools
) -> None:
    body = await hub_server.gql("operator", "{ _service { sdl } }")
    hub_sdl = body["data"]["_service"]["sdl"]
    result: dict[str, Any] = await node_tools.run(
        "compose.mjs",
        stdin={
            "subgraphs": [
                {"name": "hub", "url": hub_server.graphql_url, "sdl": hub_sdl},
                {"name": "loyalty", "url": "http://loyalty.invalid/graphql", "sdl": LOYALTY_SDL},
            ]
        },
    )
    assert result["errors"] == [], "\n".join(
        f"{e['code']}: {e['message']}" for e in result["errors"]
    )
    supergraph = result["supergraphSdl"]
    assert supergraph
    customer = _type_block(supergraph, "Customer")
    fields = set(re.findall(r"^\s+(\w+)\s*[(:]", customer, re.MULTILINE))
    assert {"id", "loyaltyPoints", *HUB_CUSTOMER_FIELDS} <= fields, customer
    assert re.search(r'@join__type\(graph: HUB, key: "id"\)', supergraph)
    assert re.search(r'@join__type\(graph: LOYALTY, key: "id"\)', supergraph)


async def test_entities_are_scoped_to_the_partner(hub_server: HubServer) -> None:
    assigned = await _customer_ids(hub_server, "distributor")
    everyone = await _customer_ids(hub_server, "operator")
    others = [customer for customer in everyone if customer not in set(assigned)]
    assert assigned, "the demo distributor should serve some customers"
    assert others, "some demo customers should belong to other partners"

    representations = [
        {"__typename": "Customer", "id": assigned[0]},
        {"__typename": "Customer", "id": others[0]},
    ]
    body = await hub_server.gql("distributor", ENTITIES, {"representations": representations})
    mine, not_mine = body["data"]["_entities"]
    assert not_mine is None
    assert mine is not None
    assert mine["__typename"] == "Customer"
    assert mine["id"] == assigned[0]
    assert mine["name"]
    assert (mine["email"], mine["phone"]) == (None, None)

    # The operator resolves both, contact fields included: the null above is scoping.
    seen = await hub_server.gql("operator", ENTITIES, {"representations": representations})
    assert [entity["id"] for entity in seen["data"]["_entities"]] == [assigned[0], others[0]]
    assert all(entity["email"] for entity in seen["data"]["_entities"])


async def test_entities_for_an_unknown_id_answer_like_one_not_yours(hub_server: HubServer) -> None:
    everyone = await _customer_ids(hub_server, "operator")
    assigned = set(await _customer_ids(hub_server, "distributor"))
    not_mine = next(customer for customer in everyone if customer not in assigned)
    unknown = base64.urlsafe_b64encode(f"Customer:{uuid.uuid4()}".encode()).decode().rstrip("=")
    representations = [{"__typename": "Customer", "id": i} for i in (not_mine, unknown)]
    body = await hub_server.gql("distributor", ENTITIES, {"representations": representations})
    assert body["data"]["_entities"] == [None, None]


# The backend plays no part in this: one is enough.
@pytest.mark.parametrize("hub_server", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    "representation",
    [
        {"__typename": "Customer"},
        {"id": "Q3VzdG9tZXI6eA"},
        {"__typename": "NoSuchType", "id": "x"},
        {"__typename": "Organization", "id": "x"},
        "not an object",
    ],
    ids=["no-id", "no-typename", "unknown-type", "not-an-entity", "not-an-object"],
)
async def test_a_malformed_representation_is_bad_input_not_an_internal_error(
    hub_server: HubServer, representation: Any
) -> None:
    # A router or client sending a bad representation made a request error: the answer
    # names it (BAD_USER_INPUT), and the hub does not log it as an incident.
    response = await hub_server.post(
        "distributor",
        "query ($r: [_Any!]!) { _entities(representations: $r) { __typename } }",
        {"r": [representation]},
    )
    body = response.json()
    codes = [error.get("extensions", {}).get("code") for error in body.get("errors", [])]
    assert codes, body
    assert set(codes) == {"BAD_USER_INPUT"}, body
