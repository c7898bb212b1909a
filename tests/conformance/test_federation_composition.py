"""The hub as an Apollo Federation v2 subgraph: its ``_service { sdl }`` composes with
another subgraph (``@apollo/composition``), and ``_entities`` is scoped like ``customer``.

``_service { sdl }`` answers the schema of the caller's audience (schema/visibility.py):
composing the company supergraph takes a hub administrator's token (the full schema), which
an operator creates with ``hub clients create ... --scopes "... hub:admin"``; a partner's
SDL leaves out what it never sees."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import uuid
from typing import Any

import httpx
import pytest

from policies.masks import last4, partial_email
from tests.conformance.conftest import NodeTools
from tests.e2e.server import HUB, HubServer, basic_auth

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
SDL = "{ _service { sdl } }"
ADMIN_SCOPES = "customers:read customers:write feedback:read feedback:write hub:admin"
# Administration: in the full schema, in no one else's.
ADMIN_QUERY_FIELDS = ("organizations", "clients", "policyVersions")
ADMIN_MUTATIONS = ("createOrganization", "registerClient", "publishPolicy")

_admin_tokens: dict[str, str] = {}


async def admin_token(server: HubServer) -> str:
    """A hub administrator's token, as an operator composing its supergraph gets one: a
    ``hub:admin`` client of the operator organization made with ``hub clients create``."""
    if server.base_url in _admin_tokens:
        return _admin_tokens[server.base_url]
    operator = server.credential("operator")["org"]
    process = await asyncio.create_subprocess_exec(
        HUB,
        "clients",
        "create",
        "--org",
        operator,
        "--scopes",
        ADMIN_SCOPES,
        "--name",
        "supergraph composition",
        cwd=server.workdir,
        env=server.env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, err.decode()
    created = json.loads(out)
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as http:
        response = await http.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            headers={"Authorization": basic_auth(created["client_id"], created["client_secret"])},
        )
    assert response.status_code == 200, response.text
    assert "hub:admin" in response.json()["scope"].split()
    _admin_tokens[server.base_url] = response.json()["access_token"]
    return _admin_tokens[server.base_url]


async def sdl_of(server: HubServer, who: str) -> str:
    """The ``_service { sdl }`` a caller gets: ``admin`` or a demo organization kind."""
    if who != "admin":
        body = await server.gql(who, SDL)
    else:
        async with httpx.AsyncClient(timeout=30) as http:
            response = await http.post(
                server.graphql_url,
                json={"query": SDL},
                headers={"Authorization": f"Bearer {await admin_token(server)}"},
            )
        assert response.status_code == 200, response.text
        body = response.json()
        assert "errors" not in body, body
    sdl: str = body["data"]["_service"]["sdl"]
    return sdl


def _fields(sdl: str, type_name: str) -> set[str]:
    return set(re.findall(r"^\s+(\w+)\s*[(:]", _type_block(sdl, type_name), re.MULTILINE))


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
    hub_sdl = await sdl_of(hub_server, "admin")  # the full schema
    assert set(ADMIN_QUERY_FIELDS) <= _fields(hub_sdl, "Query")
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
    fields = _fields(supergraph, "Customer")
    assert {"id", "loyaltyPoints", "traits", "createdAt", *HUB_CUSTOMER_FIELDS} <= fields
    assert set(ADMIN_QUERY_FIELDS) <= _fields(supergraph, "Query")
    assert set(ADMIN_MUTATIONS) <= _fields(supergraph, "Mutation")
    assert re.search(r'@join__type\(graph: HUB, key: "id"\)', supergraph)
    assert re.search(r'@join__type\(graph: LOYALTY, key: "id"\)', supergraph)


async def test_each_audience_reads_the_sdl_of_its_own_schema(hub_server: HubServer) -> None:
    full = await sdl_of(hub_server, "admin")
    operator = await sdl_of(hub_server, "operator")  # no hub:admin: every data field
    distributor = await sdl_of(hub_server, "distributor")
    assert _fields(operator, "Customer") == _fields(full, "Customer")
    assert not set(ADMIN_QUERY_FIELDS) & _fields(operator, "Query")
    assert not set(ADMIN_MUTATIONS) & _fields(operator, "Mutation")
    # The distributor's SDL has its masked contacts, not what it never sees.
    customer = _fields(distributor, "Customer")
    assert {"id", "name", "email", "phone", "lifecycleStage"} <= customer
    assert not {"lifetimeValue", "traits", "createdAt", "purchases"} & customer
    assert not set(ADMIN_QUERY_FIELDS) & _fields(distributor, "Query")
    assert "reportPurchase" not in _fields(distributor, "Mutation")
    for hidden in ("lifetimeValue", "traits", "Purchase", "CreateOrganizationInput"):
        assert hidden in full, hidden
        assert hidden not in distributor, hidden


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
    # Contact fields the distributor's schema has (DESIGN §5) are never in clear for it.
    described = await hub_server.gql(
        "distributor", '{ __type(name: "Customer") { fields { name } } }'
    )
    contact = [
        f
        for f in ("email", "phone")
        if f in {x["name"] for x in described["data"]["__type"]["fields"]}
    ]
    query = ENTITIES.replace("email phone", " ".join(contact))
    body = await hub_server.gql("distributor", query, {"representations": representations})
    mine, not_mine = body["data"]["_entities"]
    assert not_mine is None
    assert mine is not None
    assert mine["__typename"] == "Customer"
    assert mine["id"] == assigned[0]
    assert mine["name"]

    # The operator resolves both, contact fields included: the null above is scoping.
    seen = await hub_server.gql("operator", ENTITIES, {"representations": representations})
    assert [entity["id"] for entity in seen["data"]["_entities"]] == [assigned[0], others[0]]
    assert all(entity["email"] for entity in seen["data"]["_entities"])
    clear = seen["data"]["_entities"][0]
    for name in contact:
        assert mine[name] is None or mine[name] != clear[name], name
    # ...masked as the policy says, exactly as a query shows them.
    assert mine["email"] == partial_email(clear["email"])
    assert mine["phone"] == last4(clear["phone"])


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
