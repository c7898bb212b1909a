"""The hub composes a Node ``@apollo/subgraph`` service (the loyalty service of
``loyalty_subgraph.mjs``, on 127.0.0.1) as a remote subgraph, under the sharing policy:

- a department reads ``customers { name loyaltyTier }`` through the hub;
- a partner whose policy hides ``loyaltyTier`` does not have it in its schema, and the
  subgraph receives no request for it; a policy that masks it answers the mask, and the
  read audit records it;
- fifty customers with remote fields cost one request to the subgraph;
- with the subgraph stopped, the hub answers the local data and an error on each remote
  path;
- a refreshed SDL that no longer composes is refused and the accepted one keeps serving.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update
from sqlmodel import col
from starlette.applications import Starlette

from app import create_app
from hub import sharing
from hub.db import Database
from hub.federation import store
from hub.federation.state import Federation, federation
from hub.models import AuditEvent, Customer
from hub.models.subgraph import Subgraph
from hub.netguard import NetPolicy
from hub.runtime import Runtime
from policies.masks import REDACTED
from tests.conformance.conftest import NodeTools
from tests.conformance.loyalty import LoyaltyService, loyalty_service, points_of, tier_of
from tests.conformance.test_federation_gateway import pytestmark as _marks
from tests.conftest import Caller, gql, make_caller, make_settings
from tests.hub.factories import assign, make_customers, make_feedback

pytestmark = [m for m in _marks if m.name == "conformance"]

LOOPBACK = NetPolicy(allow_loopback=True)
SUBGRAPH_TOKEN = "Bearer loyalty-service-key"
CUSTOMERS = 50
PAGE = """
query ($first: Int) {
  customers(first: $first, orderBy: {field: NAME, direction: ASC}) {
    edges { node {
      id name segment lifecycleStage loyaltyTier loyalty { tier points }
      feedback(first: 2) { edges { node { kind customer { name loyaltyTier } } } }
    } }
  }
}
"""
SALES = """    subjects: [{kind: department, role: sales}]
    resource: Customer
    read: {visible: *customer_all}"""
# Sales' own rule shows the loyalty fields too (a second rule showing only them would leave
# no field shown in clear by every rule: no ordering by name).
SALES_LOYALTY = SALES.replace(
    "*customer_all",
    "[id, kind, name, email, phone, company, title, city, region, country, segment, "
    "lifecycle_stage, lifetime_value, consent_share_with_partners, consent_marketing_opt_in, "
    "consent_given_at, consent_source, traits, provenance, version, created_at, updated_at, "
    "loyaltyTier, loyaltyPoints, loyalty]",
)
MASKED = "masked: {email: partial_email, phone: last4, loyaltyTier: redact}"


@dataclass
class Hub:
    http: httpx.AsyncClient
    runtime: Runtime
    app: Starlette
    sales: Caller
    distributor: Caller


def policy(*, sales: bool = True, distributor_mask: bool = False) -> str:
    """The default policy, plus loyalty fields for sales and (masked) for distributors."""
    source = sharing.default_source()
    rules, _, expect = source.partition("\nexpect:")
    if sales:
        assert SALES in rules
        rules = rules.replace(SALES, SALES_LOYALTY, 1)
    if distributor_mask:
        original = "masked: {email: partial_email, phone: last4}"
        assert original in rules
        rules = rules.replace(original, MASKED, 1)
    return f"{rules}\nexpect:{expect}"


async def publish(hub: Hub, source: str) -> None:
    async with hub.runtime.database.transaction() as session:
        await sharing.publish(session, source, author="tests", reason="loyalty fields")
    await hub.runtime.reload_policy()


async def register(hub: Hub, name: str, url: str) -> store.Refresh:
    async with hub.runtime.database.transaction() as session:
        await store.add_subgraph(
            session,
            name=name,
            url=url,
            policy=LOOPBACK,
            header=("Authorization", SUBGRAPH_TOKEN),
            timeout_seconds=2.0,
        )
        result = await store.refresh_subgraph(session, name, LOOPBACK)
    await hub.runtime.reload_policy()
    return result


@pytest.fixture(scope="module")
async def loyalty(node_tools: NodeTools) -> AsyncIterator[LoyaltyService]:
    async with loyalty_service(node_tools) as service:
        yield service


@pytest.fixture
async def hub(
    db: Database, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Hub]:
    # The hub's outbound calls may reach the test's service on 127.0.0.1.
    monkeypatch.setenv("HUB_FEDERATION_ALLOW_LOOPBACK", "true")
    sales = await make_caller(db, "department", attributes={"roles": ["sales"]})
    distributor = await make_caller(db, "distributor", slug="acme-distribution")
    customers = await make_customers(
        db,
        [
            {"name": f"C{i:02d}", "consent_share_with_partners": True, "email": f"c{i}@x.test"}
            for i in range(CUSTOMERS)
        ],
    )
    for customer in customers[:10]:
        await assign(db, customer, distributor.org)
        await make_feedback(db, customer, sales.org, visibility="partners")
    application = create_app(make_settings(database_url))
    try:
        async with application.router.lifespan_context(application):
            transport = httpx.ASGITransport(app=application)
            async with httpx.AsyncClient(transport=transport, base_url="http://hub.test") as http:
                yield Hub(http, application.state.runtime, application, sales, distributor)
    finally:
        old, federation.current = federation.current, Federation()
        await old.aclose()


async def _entity_requests_since(service: LoyaltyService, before: int) -> list[dict[str, Any]]:
    return [r for r in (await service.received())[before:] if "_entities" in r["query"]]


async def test_a_department_reads_remote_fields_in_one_request_for_fifty_customers(
    hub: Hub, loyalty: LoyaltyService
) -> None:
    result = await register(hub, "loyalty", loyalty.url)
    assert result.accepted, result.problems
    assert result.fields == ["Customer.loyalty", "Customer.loyaltyPoints", "Customer.loyaltyTier"]
    await publish(hub, policy())
    before = len(await loyalty.received())

    body = await gql(hub.http, hub.sales, PAGE, {"first": CUSTOMERS})
    nodes = [edge["node"] for edge in body["data"]["customers"]["edges"]]
    assert len(nodes) == CUSTOMERS
    for node in nodes:
        assert node["name"].startswith("C")
        assert node["loyaltyTier"] == tier_of(node["id"])
        assert node["loyalty"] == {"tier": tier_of(node["id"]), "points": points_of(node["id"])}

    with_feedback = [node for node in nodes if node["feedback"]["edges"]]
    nested = [node["feedback"]["edges"][0]["node"]["customer"] for node in with_feedback]
    assert len(nested) == 10
    assert [c["loyaltyTier"] for c in nested] == [tier_of(n["id"]) for n in with_feedback]

    # The schema around the remote fields is the hub's as ever: the Node interface, enums.
    one = await gql(
        hub.http,
        hub.sales,
        "query ($id: ID!) { node(id: $id) { __typename ... on Customer { segment loyaltyTier } } }",
        {"id": nodes[0]["id"]},
    )
    assert one["data"]["node"]["loyaltyTier"] == tier_of(nodes[0]["id"])

    # One request to the subgraph per level, as the hub: the fifty customers with both
    # fields, then the ten customers below their feedback.
    request, below, _ = await _entity_requests_since(loyalty, before)
    sent = [r for reps in request["variables"].values() for r in reps]
    assert sorted(r["id"] for r in sent) == sorted(n["id"] for n in nodes)
    assert len([r for reps in below["variables"].values() for r in reps]) == 10
    assert request["authorization"] == SUBGRAPH_TOKEN
    assert hub.sales.token is not None and hub.sales.token not in str(request)
    # Only what was selected: no loyaltyPoints, no memberSince.
    assert "loyaltyTier" in request["query"] and "loyaltyPoints" not in request["query"]
    assert "memberSince" not in request["query"]


async def test_a_remote_field_a_partner_may_not_see_is_not_in_its_schema(
    hub: Hub, loyalty: LoyaltyService
) -> None:
    assert (await register(hub, "loyalty", loyalty.url)).accepted
    await publish(hub, policy())
    before = len(await loyalty.received())
    described = await gql(
        hub.http, hub.distributor, '{ __type(name: "Customer") { fields { name } } }'
    )
    fields = {f["name"] for f in described["data"]["__type"]["fields"]}
    assert "name" in fields and not {"loyaltyTier", "loyalty", "loyaltyPoints"} & fields
    assert (await gql(hub.http, hub.distributor, '{ __type(name: "LoyaltyAccount") { name } }'))[
        "data"
    ]["__type"] is None
    # Asked anyway: the error of a field that does not exist, and nothing sent.
    asked = await gql(
        hub.http,
        hub.distributor,
        "{ customers { edges { node { name loyaltyTier } } } }",
        expect_errors=True,
    )
    unknown = await gql(
        hub.http,
        hub.distributor,
        "{ customers { edges { node { name noSuchField } } } }",
        expect_errors=True,
    )
    assert [e["message"] for e in asked["errors"]] == [
        e["message"].replace("noSuchField", "loyaltyTier") for e in unknown["errors"]
    ]
    assert await _entity_requests_since(loyalty, before) == []
    # The department still sees it (the same hub, the same subgraph).
    body = await gql(
        hub.http, hub.sales, "{ customers(first: 2) { edges { node { loyaltyTier } } } }"
    )
    assert all(e["node"]["loyaltyTier"] for e in body["data"]["customers"]["edges"])


async def test_a_masked_remote_field_answers_the_mask_and_is_audited(
    hub: Hub, loyalty: LoyaltyService
) -> None:
    assert (await register(hub, "loyalty", loyalty.url)).accepted
    await publish(hub, policy(distributor_mask=True))
    body = await gql(
        hub.http, hub.distributor, "{ customers { edges { node { id name loyaltyTier } } } }"
    )
    nodes = [edge["node"] for edge in body["data"]["customers"]["edges"]]
    assert len(nodes) == 10
    assert {node["loyaltyTier"] for node in nodes} == {REDACTED}
    await hub.app.state.disclosures.flush()
    async with hub.runtime.database.session() as session:
        events = (
            await session.execute(select(AuditEvent).where(col(AuditEvent.action) == "read"))
        ).scalars()
        disclosed = [group for e in events for group in e.details["disclosed"]["Customer"]]
    assert disclosed, "the partner's read is audited"
    assert all("loyaltyTier" in group["fields"] for group in disclosed)
    assert sum(len(group["ids"]) for group in disclosed) == 10


async def test_with_the_subgraph_down_local_data_comes_with_errors_on_remote_paths(
    hub: Hub, node_tools: NodeTools
) -> None:
    async with loyalty_service(node_tools) as service:
        assert (await register(hub, "loyalty", service.url)).accepted
        await publish(hub, policy())
    # Stopped now: the hub answers what it has.
    body = await gql(
        hub.http,
        hub.sales,
        "{ customers(first: 5) { edges { node { name loyaltyTier loyalty { tier } } } } }",
        expect_errors=True,
    )
    nodes = [edge["node"] for edge in body["data"]["customers"]["edges"]]
    assert len(nodes) == 5 and all(node["name"].startswith("C") for node in nodes)
    assert all(node["loyaltyTier"] is None and node["loyalty"] is None for node in nodes)
    paths = sorted(tuple(e["path"]) for e in body["errors"])
    expected = sorted(
        ("customers", "edges", i, "node", field)
        for i in range(5)
        for field in ("loyaltyTier", "loyalty")
    )
    assert paths == expected
    assert {e["extensions"]["code"] for e in body["errors"]} == {"SUBGRAPH_UNAVAILABLE"}
    # Which subgraph, and no more: no address, no system error for the caller.
    assert {e["message"] for e in body["errors"]} == {
        "the subgraph 'loyalty' failed: the subgraph cannot be reached"
    }


async def test_a_slow_subgraph_times_out_and_the_rest_answers(
    hub: Hub, loyalty: LoyaltyService
) -> None:
    assert (await register(hub, "loyalty", loyalty.url)).accepted
    await publish(hub, policy())
    await loyalty.delay(3000)  # past the 2 s timeout
    try:
        started = asyncio.get_running_loop().time()
        body = await gql(
            hub.http,
            hub.sales,
            "{ customers(first: 3) { edges { node { name loyaltyTier } } } }",
            expect_errors=True,
        )
        assert asyncio.get_running_loop().time() - started < 2.9
    finally:
        await loyalty.delay(0)
    names = [e["node"]["name"] for e in body["data"]["customers"]["edges"]]
    assert len(names) == 3 and all(name.startswith("C") for name in names)
    assert len(body["errors"]) == 3
    assert all("did not answer within 2 s" in e["message"] for e in body["errors"])


async def test_a_refresh_that_no_longer_composes_is_refused_and_the_old_sdl_serves(
    hub: Hub, loyalty: LoyaltyService, node_tools: NodeTools
) -> None:
    assert (await register(hub, "loyalty", loyalty.url)).accepted
    await publish(hub, policy())
    async with loyalty_service(node_tools, variant="clash") as broken:
        async with hub.runtime.database.transaction() as session:
            await session.execute(
                update(Subgraph).where(col(Subgraph.name) == "loyalty").values(url=broken.url)
            )
            result = await store.refresh_subgraph(session, "loyalty", LOOPBACK)
        await hub.runtime.reload_policy()
    assert not result.accepted and result.status == "refused"
    assert "Customer.name: the hub already has this field" in result.problems
    async with hub.runtime.database.session() as session:
        row = await store.get_subgraph(session, "loyalty")
        assert row.status == "refused" and row.last_error and "Customer.name" in row.last_error
    # Back to the working service's URL: the accepted SDL served all along.
    async with hub.runtime.database.transaction() as session:
        await session.execute(
            update(Subgraph).where(col(Subgraph.name) == "loyalty").values(url=loyalty.url)
        )
    body = await gql(
        hub.http, hub.sales, "{ customers(first: 2) { edges { node { id loyaltyTier } } } }"
    )
    assert [e["node"]["loyaltyTier"] for e in body["data"]["customers"]["edges"]] == [
        tier_of(e["node"]["id"]) for e in body["data"]["customers"]["edges"]
    ]


ADD = """
mutation ($input: AddSubgraphInput!) {
  addSubgraph(input: $input) {
    accepted problems
    subgraph { name auth status fields lastError }
    userErrors { field message code }
  }
}
"""


async def test_administrators_add_and_refresh_subgraphs_through_graphql(
    hub: Hub, loyalty: LoyaltyService, db: Database
) -> None:
    admin = await make_caller(
        db, "operator", scopes=["customers:read", "feedback:read", "hub:admin"]
    )
    variables: dict[str, Any] = {
        "input": {
            "name": "loyalty",
            "url": loyalty.url,
            "header": {"name": "Authorization", "value": SUBGRAPH_TOKEN},
            "timeoutMs": 2000,
        }
    }
    body = await gql(hub.http, admin, ADD, variables)
    added = body["data"]["addSubgraph"]
    assert added["accepted"] and added["userErrors"] == [] and added["problems"] == []
    assert added["subgraph"]["status"] == "ok" and added["subgraph"]["auth"] == "header"
    assert "Customer.loyaltyTier" in added["subgraph"]["fields"]
    assert SUBGRAPH_TOKEN not in str(body)
    # Served by this replica at once: the administrator's full schema has the field, and
    # so has the SDL the hub gives a supergraph (the hub resolves it).
    described = await gql(hub.http, admin, '{ __type(name: "Customer") { fields { name } } }')
    assert "loyaltyTier" in {f["name"] for f in described["data"]["__type"]["fields"]}
    sdl = (await gql(hub.http, admin, "{ _service { sdl } }"))["data"]["_service"]["sdl"]
    assert "loyaltyTier: String" in sdl and "type LoyaltyAccount" in sdl

    bad = {"input": {**variables["input"], "name": "Bad Name", "url": "http://10.9.8.7/g"}}
    refused = (await gql(hub.http, admin, ADD, bad))["data"]["addSubgraph"]
    assert not refused["accepted"] and refused["subgraph"] is None
    assert {tuple(e["field"]) for e in refused["userErrors"]} == {("input", "name")}

    listed = await gql(hub.http, admin, "{ subgraphs { name status fields } }")
    assert [s["name"] for s in listed["data"]["subgraphs"]] == ["loyalty"]
    again = await gql(
        hub.http,
        admin,
        'mutation { refreshSubgraph(name: "loyalty") { accepted subgraph { status } } }',
    )
    assert again["data"]["refreshSubgraph"] == {"accepted": True, "subgraph": {"status": "ok"}}

    removed = await gql(hub.http, admin, 'mutation { removeSubgraph(name: "loyalty") { code } }')
    assert removed["data"]["removeSubgraph"] == []
    described = await gql(hub.http, admin, '{ __type(name: "Customer") { fields { name } } }')
    assert "loyaltyTier" not in {f["name"] for f in described["data"]["__type"]["fields"]}
    assert (await gql(hub.http, admin, "{ subgraphs { name } }"))["data"]["subgraphs"] == []

    # Partners and departments have no such field: it is for administrators.
    for caller in (hub.distributor, hub.sales):
        denied = await gql(hub.http, caller, "{ subgraphs { name } }", expect_errors=True)
        assert denied["errors"][0]["message"] == "Cannot query field 'subgraphs' on type 'Query'."


async def test_the_hub_authenticates_with_client_credentials_from_the_subgraph_s_server(
    hub: Hub, node_tools: NodeTools
) -> None:
    async with loyalty_service(node_tools) as service:
        token_url = f"{service.base}/token"
        async with hub.runtime.database.transaction() as session:
            await store.add_subgraph(
                session,
                name="loyalty",
                url=service.url,
                policy=LOOPBACK,
                oauth={
                    "token_url": token_url,
                    "client_id": "loyalty-hub",
                    "client_secret": "s3cret",
                    "scope": "loyalty:read",
                },
            )
            result = await store.refresh_subgraph(session, "loyalty", LOOPBACK)
            row = await store.get_subgraph(session, "loyalty")
            assert row.auth == {
                "token_url": token_url,
                "client_id": "loyalty-hub",
                "method": "client_secret_basic",
                "scope": "loyalty:read",
            }
        assert result.accepted, result.problems
        await hub.runtime.reload_policy()
        await publish(hub, policy())
        # From now on the service requires its tokens: the hub's runtime client gets one.
        body = await gql(
            hub.http, hub.sales, "{ customers(first: 3) { edges { node { id loyaltyTier } } } }"
        )
        nodes = [edge["node"] for edge in body["data"]["customers"]["edges"]]
        assert [n["loyaltyTier"] for n in nodes] == [tier_of(n["id"]) for n in nodes]
        tokens = await service.token_requests()
        assert tokens and all(
            t == {"grantType": "client_credentials", "scope": "loyalty:read"} for t in tokens
        )
        [entities] = await service.entity_requests()
        assert entities["authorization"] == f"Bearer tok-{len(tokens)}"

        # A wrong secret: the refresh says the authorization server refused the client.
        async with hub.runtime.database.transaction() as session:
            await session.execute(
                update(Subgraph).where(col(Subgraph.name) == "loyalty").values(secret="wrong")
            )
            refused = await store.refresh_subgraph(session, "loyalty", LOOPBACK)
        assert refused.status == "unreachable"
        assert "authorization server refused the client: invalid_client" in refused.problems[0]


async def test_a_remote_field_shown_on_some_rows_is_fetched_for_those_only(
    hub: Hub, loyalty: LoyaltyService, db: Database
) -> None:
    assert (await register(hub, "loyalty", loyalty.url)).accepted
    # Distributors see loyaltyTier only on their customers in the SMB segment.
    source = policy(sales=False).replace(
        "\nexpect:",
        """  - name: distributors-smb-loyalty
    subjects: [{kind: distributor}]
    resource: Customer
    rows:
      and:
        - consent_share_with_partners: {eq: true}
        - assignments.organization: {eq: $subject.org}
        - segment: {eq: smb}
    read: {visible: [id, loyaltyTier]}
\nexpect:""",
        1,
    )
    await publish(hub, source)
    async with hub.runtime.database.transaction() as session:
        ids = (
            await session.execute(
                select(col(Customer.id)).where(col(Customer.name).in_(["C00", "C01", "C02"]))
            )
        ).scalars()
        await session.execute(  # the factory's customers are all SMB: three stay
            update(Customer).where(col(Customer.id).not_in(list(ids))).values(segment="consumer")
        )
    before = len(await loyalty.received())
    body = await gql(
        hub.http,
        hub.distributor,
        "{ customers { edges { node { id name loyaltyTier } } } }",
    )
    nodes = [edge["node"] for edge in body["data"]["customers"]["edges"]]
    assert len(nodes) == 10
    shown = {n["name"] for n in nodes if n["loyaltyTier"] is not None}
    assert shown == {"C00", "C01", "C02"}
    for node in nodes:
        if node["name"] in shown:
            assert node["loyaltyTier"] == tier_of(node["id"])
    # The others answer null, named as withheld; the subgraph heard of the three only.
    withheld = body["extensions"]["withheld"]
    assert sorted(path[2] for path in withheld) == sorted(
        i for i, n in enumerate(nodes) if n["name"] not in shown
    )
    assert {path[-1] for path in withheld} == {"loyaltyTier"}
    [request] = await _entity_requests_since(loyalty, before)
    sent = [r["id"] for reps in request["variables"].values() for r in reps]
    assert sorted(sent) == sorted(n["id"] for n in nodes if n["name"] in shown)


async def test_what_the_hub_accepts_composes_with_apollo_and_what_it_refuses_does_not(
    hub: Hub, loyalty: LoyaltyService, node_tools: NodeTools, db: Database
) -> None:
    admin = await make_caller(db, "operator", scopes=["customers:read", "hub:admin"])
    hub_sdl = (await gql(hub.http, admin, "{ _service { sdl } }"))["data"]["_service"]["sdl"]
    assert (await register(hub, "loyalty", loyalty.url)).accepted
    async with hub.runtime.database.session() as session:
        accepted = (await store.get_subgraph(session, "loyalty")).sdl
    assert accepted is not None

    async def compose(sdl: str) -> list[dict[str, Any]]:
        result = await node_tools.run(
            "compose.mjs",
            stdin={
                "subgraphs": [
                    {"name": "hub", "url": "http://hub.test/graphql", "sdl": hub_sdl},
                    {"name": "loyalty", "url": loyalty.url, "sdl": sdl},
                ]
            },
        )
        errors: list[dict[str, Any]] = result["errors"]
        return errors

    assert await compose(accepted) == []
    async with loyalty_service(node_tools, variant="clash") as broken:
        async with httpx.AsyncClient(timeout=10) as http:
            answer = await http.post(broken.url, json={"query": "{ _service { sdl } }"})
        clash = answer.json()["data"]["_service"]["sdl"]
        async with hub.runtime.database.transaction() as session:
            await session.execute(
                update(Subgraph).where(col(Subgraph.name) == "loyalty").values(url=broken.url)
            )
            refused = await store.refresh_subgraph(session, "loyalty", LOOPBACK)
    assert not refused.accepted
    assert [e["code"] for e in await compose(clash)] == ["INVALID_FIELD_SHARING"]
