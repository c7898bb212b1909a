"""An Apollo gateway (``@apollo/gateway``) over the hub and a Node ``@apollo/subgraph``
service runs a query that needs both: the hub's customers and the service's loyalty
fields on them, joined by ``Customer @key(fields: "id")`` through the hub's
``_entities``."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conformance.conftest import NodeTools
from tests.conformance.loyalty import loyalty_service, points_of, tier_of
from tests.conformance.test_federation_composition import admin_token
from tests.e2e.server import HubServer

pytestmark = [pytest.mark.e2e, pytest.mark.conformance]

QUERY = """
{
  customers(first: 8) {
    edges { node { id name loyaltyTier loyalty { tier points } } }
  }
}
"""
# The gateway plans the loyalty service first, the hub second (entities by key).
BY_ID = """
query ($ids: [ID!]!) {
  nodes(ids: $ids) { ... on Customer { id name loyaltyPoints } }
}
"""


async def _run(
    node_tools: NodeTools, server: HubServer, url: str, query: str, variables: Any = None
) -> dict[str, Any]:
    token = await admin_token(server)
    result: dict[str, Any] = await node_tools.run(
        "gateway.mjs",
        stdin={
            "subgraphs": [
                {
                    "name": "hub",
                    "url": server.graphql_url,
                    "headers": {"authorization": f"Bearer {token}"},
                },
                {"name": "loyalty", "url": url},
            ],
            "query": query,
            "variables": variables or {},
        },
    )
    return result


# The backend plays no part in the gateway's plan: one is enough.
@pytest.mark.parametrize("hub_server", ["sqlite"], indirect=True)
async def test_a_gateway_joins_hub_customers_and_a_subgraph_s_fields(
    hub_server: HubServer, node_tools: NodeTools
) -> None:
    async with loyalty_service(node_tools) as loyalty:
        result = await _run(node_tools, hub_server, loyalty.url, QUERY)
        assert result["errors"] == [], result["errors"]
        nodes = [edge["node"] for edge in result["data"]["customers"]["edges"]]
        assert len(nodes) == 8
        for node in nodes:
            assert node["name"]  # from the hub
            assert node["loyaltyTier"] == tier_of(node["id"])  # from the service
            assert node["loyalty"] == {"tier": tier_of(node["id"]), "points": points_of(node["id"])}
        # The gateway asked the service once for the whole page, by the hub's keys.
        [entities] = await loyalty.entity_requests()
        sent = entities["variables"]["representations"]
        assert sorted(r["id"] for r in sent) == sorted(n["id"] for n in nodes)
        assert {r["__typename"] for r in sent} == {"Customer"}

        # And the other way round: the hub resolves the entities the plan sends it.
        ids = [node["id"] for node in nodes[:3]]
        result = await _run(node_tools, hub_server, loyalty.url, BY_ID, {"ids": ids})
        assert result["errors"] == [], result["errors"]
        assert [n["loyaltyPoints"] for n in result["data"]["nodes"]] == [points_of(i) for i in ids]
