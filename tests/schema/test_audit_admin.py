"""The audit API (issue 5 §7): partner reads recorded through every channel, reported
exactly by ``customerDisclosures`` (and its CSV/JSON export), ``auditEvents`` as a cursor
connection; all of it for administrators only. Real tokens, the default policy."""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from hub.access import access
from hub.db import Database
from hub.models import Customer, Feedback, Interaction
from tests.conftest import ALL_SCOPES, Caller, gql, make_caller, token_for
from tests.hub.factories import assign, gid, make_customer, make_feedback, make_interaction

ADMIN_SCOPES = [*ALL_SCOPES, "hub:admin"]

# What the default policy gives each partner (policies/defaults/default.yaml): the keys of
# the projected records, visible and masked alike.
DISTRIBUTOR_CUSTOMER = sorted(
    {
        "id",
        "kind",
        "name",
        "company",
        "city",
        "region",
        "country",
        "segment",
        "lifecycle_stage",
        "consent_share_with_partners",
        "version",
        "updated_at",
        "email",  # masked (partial_email)
        "phone",  # masked (last4)
    }
)
DISTRIBUTOR_FEEDBACK = sorted(
    {
        "id",
        "customer_id",
        "customer_ref",
        "channel",
        "kind",
        "scale",
        "score",
        "text",
        "product",
        "tags",
        "status",
        "visibility",
        "external_ref",
        "created_at",
        "updated_at",
    }
)
DISTRIBUTOR_INTERACTION = sorted(
    {"id", "customer_id", "channel", "direction", "summary", "occurred_at", "created_at"}
)
SUPPLIER_FEEDBACK = sorted(
    {
        "id",
        "channel",
        "kind",
        "scale",
        "score",
        "text",
        "product",
        "tags",
        "created_at",
        "customer_ref",  # masked: a pseudonym, still a disclosure about the customer
    }
)

DISCLOSURES = """query($id: ID!) { customerDisclosures(customerId: $id) {
  organization client resource recordId fields policyVersion operationName eventSeq at } }"""
EVENTS = """query($filter: AuditEventFilter, $first: Int, $after: String) {
  auditEvents(filter: $filter, first: $first, after: $after) {
    totalCount pageInfo { hasNextPage endCursor }
    edges { node { seq at actor organization client action target details prevHash hash } }
  } }"""


@dataclass
class World:
    admin: Caller
    distributor: Caller
    supplier: Caller
    department: Caller
    ada: Customer  # assigned to the distributor, consenting
    bob: Customer  # assigned to the distributor, consenting; nobody reads him
    nia: Customer  # assigned to no one, consenting: the supplier sees her feedback
    ada_widget: Feedback  # shared with partners, on a widget
    nia_widget: Feedback
    ada_call: Interaction  # the distributor's own


@pytest.fixture
async def world(db: Database) -> World:
    admin = await make_caller(db, "operator", scopes=ADMIN_SCOPES, slug="operator")
    distributor = await make_caller(db, "distributor", slug="acme-distribution")
    supplier = await make_caller(
        db, "supplier", slug="widget-supply", attributes={"products": ["widget"]}
    )
    department = await make_caller(db, "department", slug="support-dept")
    ada = await make_customer(db, name="Ada", consent_share_with_partners=True)
    bob = await make_customer(db, name="Bob", consent_share_with_partners=True)
    nia = await make_customer(db, name="Nia", consent_share_with_partners=True)
    await assign(db, ada, distributor.org)
    await assign(db, bob, distributor.org)
    ada_widget = await make_feedback(
        db, ada, admin.org, visibility="partners", product="widget", text="ada-widget"
    )
    nia_widget = await make_feedback(
        db, nia, admin.org, visibility="partners", product="widget", text="nia-widget"
    )
    ada_call = await make_interaction(db, ada, distributor.org, summary="ada-call")
    return World(
        admin,
        distributor,
        supplier,
        department,
        ada,
        bob,
        nia,
        ada_widget,
        nia_widget,
        ada_call,
    )


async def disclosures(
    http: httpx.AsyncClient, admin: Caller, customer: Customer
) -> set[tuple[str, str, str, tuple[str, ...], str | None]]:
    body = await gql(http, admin, DISCLOSURES, {"id": gid(customer)})
    return {
        (d["organization"], d["resource"], d["recordId"], tuple(d["fields"]), d["operationName"])
        for d in body["data"]["customerDisclosures"]
    }


async def read_events(http: httpx.AsyncClient, admin: Caller) -> list[dict[str, Any]]:
    body = await gql(http, admin, EVENTS, {"filter": {"action": "read"}, "first": 100})
    return [edge["node"] for edge in body["data"]["auditEvents"]["edges"]]


ADA_PAGE = "query AdaPage($id: ID!) { customer(id: $id) { name email } }"
WIDGET_FEEDBACK = (
    "query WidgetFeedback { feedback(first: 10) { edges { node { text customerRef } } } }"
)


async def test_customer_disclosures_list_exactly_the_partner_reads(
    client: httpx.AsyncClient, world: World
) -> None:
    # The reads: a distributor reads one customer, a supplier its product's feedback.
    await gql(client, world.distributor, ADA_PAGE, {"id": gid(world.ada)})
    supplied = await gql(client, world.supplier, WIDGET_FEEDBACK)
    assert {e["node"]["text"] for e in supplied["data"]["feedback"]["edges"]} == {
        "ada-widget",
        "nia-widget",
    }
    # Staff reads (a department, the admin itself) are not disclosures to partners.
    await gql(client, world.department, "{ customers(first: 10) { edges { node { name } } } }")
    await gql(client, world.admin, "{ feedback(first: 10) { edges { node { text } } } }")

    # Right after the reads (no waiting for the background writer's interval).
    assert await disclosures(client, world.admin, world.ada) == {
        ("acme-distribution", "Customer", gid(world.ada), tuple(DISTRIBUTOR_CUSTOMER), "AdaPage"),
        (
            "widget-supply",
            "Feedback",
            gid(world.ada_widget),
            tuple(SUPPLIER_FEEDBACK),
            "WidgetFeedback",
        ),
    }
    assert await disclosures(client, world.admin, world.nia) == {
        (
            "widget-supply",
            "Feedback",
            gid(world.nia_widget),
            tuple(SUPPLIER_FEEDBACK),
            "WidgetFeedback",
        )
    }
    assert await disclosures(client, world.admin, world.bob) == set()

    # One `read` event per partner request, with what it disclosed.
    events = await read_events(client, world.admin)
    assert [(e["organization"], e["target"]) for e in events] == [
        ("widget-supply", "operation:WidgetFeedback"),
        ("acme-distribution", "operation:AdaPage"),
    ]
    supplier_event, distributor_event = events
    assert distributor_event["client"] == world.distributor.client_id
    assert distributor_event["details"] == {
        "operation": "AdaPage",
        "query_sha256": hashlib.sha256(ADA_PAGE.encode()).hexdigest(),
        "policy_version": access.rules.version,
        "customers": [str(world.ada.id)],
        "disclosed": {"Customer": [{"fields": DISTRIBUTOR_CUSTOMER, "ids": [str(world.ada.id)]}]},
    }
    assert supplier_event["details"]["customers"] == sorted([str(world.ada.id), str(world.nia.id)])
    # Each feedback id with the customer it is about (aligned lists), though the
    # supplier itself only received pseudonyms.
    pairs = sorted(
        [
            (str(world.ada_widget.id), str(world.ada.id)),
            (str(world.nia_widget.id), str(world.nia.id)),
        ]
    )
    assert supplier_event["details"]["disclosed"] == {
        "Feedback": [
            {
                "fields": SUPPLIER_FEEDBACK,
                "ids": [f for f, _ in pairs],
                "customers": [c for _, c in pairs],
            }
        ]
    }


async def test_a_customer_nobody_read_has_an_empty_report(
    client: httpx.AsyncClient, world: World
) -> None:
    await gql(client, world.distributor, ADA_PAGE, {"id": gid(world.ada)})
    assert await disclosures(client, world.admin, world.bob) == set()
    unknown = await gql(client, world.admin, DISCLOSURES, {"id": str(uuid.uuid4())})
    assert unknown["data"]["customerDisclosures"] == []


async def test_every_channel_is_recorded(client: httpx.AsyncClient, world: World) -> None:
    """``_entities``, ``node``, nested connections and a mutation's payload all project
    through the access module, so all of them are recorded."""
    d = world.distributor
    await gql(
        client,
        d,
        "query Entities($r: [_Any!]!) { _entities(representations: $r) "
        "{ ... on Customer { name } } }",
        {"r": [{"__typename": "Customer", "id": gid(world.bob)}]},
    )
    await gql(
        client,
        d,
        "query Node($id: ID!) { node(id: $id) { ... on Feedback { text } } }",
        {"id": gid(world.ada_widget)},
    )
    await gql(
        client,
        d,
        "query Nested($id: ID!) { customer(id: $id) { interactions(first: 5) "
        "{ edges { node { summary } } } } }",
        {"id": gid(world.ada)},
    )
    submitted = await gql(
        client,
        d,
        "mutation Submit($input: SubmitFeedbackInput!) { submitFeedback(input: $input) "
        "{ feedback { id text } userErrors { code } } }",
        {
            "input": {
                "customerId": gid(world.bob),
                "channel": "EMAIL",
                "kind": "PRAISE",
                "text": "bob is happy",
            }
        },
    )
    new_feedback = submitted["data"]["submitFeedback"]["feedback"]["id"]
    bob = await disclosures(client, world.admin, world.bob)
    ada = await disclosures(client, world.admin, world.ada)
    org = "acme-distribution"
    assert (org, "Customer", gid(world.bob), tuple(DISTRIBUTOR_CUSTOMER), "Entities") in bob
    assert (org, "Feedback", new_feedback, tuple(DISTRIBUTOR_FEEDBACK), "Submit") in bob
    assert (org, "Feedback", gid(world.ada_widget), tuple(DISTRIBUTOR_FEEDBACK), "Node") in ada
    assert (org, "Customer", gid(world.ada), tuple(DISTRIBUTOR_CUSTOMER), "Nested") in ada
    assert (
        org,
        "Interaction",
        gid(world.ada_call),
        tuple(DISTRIBUTOR_INTERACTION),
        "Nested",
    ) in ada
    assert len(bob) == 2 and len(ada) == 3


async def test_reads_are_not_recorded_when_read_auditing_is_off(
    db: Database, world: World, database_url: str
) -> None:
    from app import create_app
    from tests.conftest import make_settings

    application = create_app(make_settings(database_url, audit_reads=False))
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://hub.test") as http:
            await gql(http, world.distributor, ADA_PAGE, {"id": gid(world.ada)})
            assert await disclosures(http, world.admin, world.ada) == set()
            assert await read_events(http, world.admin) == []


async def test_reads_pending_at_shutdown_are_written(
    db: Database, world: World, database_url: str, client: httpx.AsyncClient
) -> None:
    """The lifespan's end flushes the writer: nothing is lost on a clean shutdown."""
    from app import create_app
    from tests.conftest import make_settings

    # A long interval: only the shutdown can write this read.
    application = create_app(make_settings(database_url, audit_flush_interval=60))
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://hub.test") as http:
            await gql(http, world.distributor, ADA_PAGE, {"id": gid(world.ada)})
            assert application.state.disclosures.pending == 1
    # Another app (the `client` fixture's) has nothing pending: the row is in the database.
    assert {d[1] for d in await disclosures(client, world.admin, world.ada)} == {"Customer"}


# --- auditEvents ------------------------------------------------------------------------


async def test_audit_events_is_a_filtered_cursor_connection(
    client: httpx.AsyncClient, world: World
) -> None:
    for n in range(3):
        await gql(
            client,
            world.admin,
            "mutation($i: CreateOrganizationInput!) { createOrganization(input: $i) "
            "{ userErrors { code } } }",
            {"i": {"slug": f"org-{n}", "name": f"Org {n}", "kind": "VENDOR"}},
        )
    await gql(client, world.distributor, ADA_PAGE, {"id": gid(world.ada)})
    flt = {"action": "organization.create"}
    first = await gql(client, world.admin, EVENTS, {"filter": flt, "first": 2})
    page = first["data"]["auditEvents"]
    assert page["totalCount"] == 3
    assert page["pageInfo"]["hasNextPage"] is True
    targets = [e["node"]["target"] for e in page["edges"]]
    rest = await gql(
        client,
        world.admin,
        EVENTS,
        {"filter": flt, "first": 2, "after": page["pageInfo"]["endCursor"]},
    )
    targets += [e["node"]["target"] for e in rest["data"]["auditEvents"]["edges"]]
    assert targets == ["organization:org-2", "organization:org-1", "organization:org-0"]
    node = page["edges"][0]["node"]
    assert node["actor"] == f"operator/{world.admin.client_id}"
    assert node["details"] == {
        "slug": "org-2",
        "name": "Org 2",
        "kind": "vendor",
        "attributes": {},
    }
    # Newest first, seq strictly decreasing, hashes chained.
    everything = await gql(client, world.admin, EVENTS, {"first": 100})
    nodes = [e["node"] for e in everything["data"]["auditEvents"]["edges"]]
    seqs = [n["seq"] for n in nodes]
    assert seqs == sorted(seqs, reverse=True)
    for newer, older in itertools.pairwise(nodes):
        assert newer["prevHash"] == older["hash"]
    by_org = await gql(
        client, world.admin, EVENTS, {"filter": {"organization": "acme-distribution"}}
    )
    assert [e["node"]["action"] for e in by_org["data"]["auditEvents"]["edges"]] == ["read"]
    future = await gql(client, world.admin, EVENTS, {"filter": {"since": "2999-01-01T00:00:00Z"}})
    assert future["data"]["auditEvents"]["totalCount"] == 0


@pytest.mark.parametrize("who", ["distributor", "department"])
@pytest.mark.parametrize("field", ["auditEvents", "customerDisclosures"])
async def test_audit_queries_are_for_administrators_only(
    client: httpx.AsyncClient, world: World, who: str, field: str
) -> None:
    caller: Caller = getattr(world, who)
    query = EVENTS if field == "auditEvents" else DISCLOSURES
    variables = {} if field == "auditEvents" else {"id": gid(world.ada)}
    body = await gql(client, caller, query, variables, expect_errors=True)
    # Absent from their schema: unknown exactly like a name that exists nowhere.
    assert body.get("data") is None
    assert any(field in error["message"] for error in body["errors"])


# --- the export route -------------------------------------------------------------------


async def test_disclosure_export_as_csv_and_json(client: httpx.AsyncClient, world: World) -> None:
    await gql(client, world.distributor, ADA_PAGE, {"id": gid(world.ada)})
    token = world.admin.token or await token_for(client, world.admin)
    headers = {"Authorization": f"Bearer {token}"}
    url = "/admin/exports/disclosures"
    as_json = await client.get(url, params={"customer": gid(world.ada)}, headers=headers)
    assert as_json.status_code == 200, as_json.text
    assert as_json.headers["content-type"].startswith("application/json")
    [row] = as_json.json()
    assert row["organization"] == "acme-distribution"
    assert row["customer_id"] == row["record_id"] == str(world.ada.id)
    assert row["fields"] == DISTRIBUTOR_CUSTOMER
    assert row["operation"] == "AdaPage"
    as_csv = await client.get(
        url, params={"customer": str(world.ada.id), "format": "csv"}, headers=headers
    )
    assert as_csv.status_code == 200
    assert as_csv.headers["content-type"].startswith("text/csv")
    assert "attachment" in as_csv.headers["content-disposition"]
    [csv_row] = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert csv_row["organization"] == "acme-distribution"
    assert csv_row["fields"].split() == DISTRIBUTOR_CUSTOMER


async def test_disclosure_export_needs_an_admin_token(
    client: httpx.AsyncClient, world: World
) -> None:
    url = "/admin/exports/disclosures"
    params = {"customer": gid(world.ada)}
    anonymous = await client.get(url, params=params)
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith("Bearer")
    bad = await client.get(url, params=params, headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401
    for caller in (world.distributor, world.department):
        token = await token_for(client, caller)
        refused = await client.get(url, params=params, headers={"Authorization": f"Bearer {token}"})
        assert refused.status_code == 403
        assert refused.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
        # Refused before the parameters are looked at.
        garbage = await client.get(
            url,
            params={"customer": "x", "format": "xml"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert garbage.status_code == 403
    admin = await token_for(client, world.admin)
    for params, message in (
        ({"customer": "not-an-id"}, "customerId"),
        ({"customer": gid(world.ada), "format": "xml"}, "format"),
    ):
        answer = await client.get(url, params=params, headers={"Authorization": f"Bearer {admin}"})
        assert answer.status_code == 400, params
        assert message in answer.json()["errors"][0]["message"]
