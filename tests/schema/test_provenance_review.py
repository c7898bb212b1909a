"""Provenance and source precedence (issue 5 §5): who set each field is recorded and
shown under the field's own policy; a lower-precedence contribution becomes a proposed
change that administrators approve or reject."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlmodel import col

from hub import sharing
from hub.db import Database
from hub.models import AuditEvent, Customer, ProposedChange
from tests.conftest import ALL_SCOPES, Caller, gql, make_caller
from tests.hub.factories import assign, gid, load, make_customer

ADMIN_SCOPES = [*ALL_SCOPES, "hub:admin"]

UPDATE = """
mutation($id: ID!, $v: Int!, $patch: CustomerPatch!) {
  updateCustomer(id: $id, expectedVersion: $v, patch: $patch) {
    customer { id lifecycleStage version }
    outcome
    proposedChanges { id field status }
    userErrors { field message code }
  }
}"""

QUEUE = """
query($customer: ID, $status: String) {
  proposedChanges(customerId: $customer, status: $status) {
    id customerId field value currentValue organization status decidedBy
  }
}"""

APPROVE = """
mutation($id: ID!) {
  approveChange(id: $id, reason: "confirmed by phone") {
    change { id status decidedBy }
    userErrors { field message code }
  }
}"""

REJECT = """
mutation($id: ID!) {
  rejectChange(id: $id, reason: "stale") {
    change { id status }
    userErrors { field message code }
  }
}"""

PROVENANCE = """
query($id: ID!) {
  customer(id: $id) { version lifecycleStage provenance { field organization at approvedBy } }
}"""


@pytest.fixture
async def admin(db: Database) -> Caller:
    return await make_caller(db, "operator", scopes=ADMIN_SCOPES, slug="operator")


@pytest.fixture
async def partner(db: Database) -> Caller:
    return await make_caller(db, "distributor", slug="acme-distribution")


async def partner_customer(db: Database, partner: Caller, **values: Any) -> Customer:
    customer = await make_customer(db, consent_share_with_partners=True, **values)
    await assign(db, customer, partner.org)
    return customer


def operator_stamp(*names: str) -> dict[str, Any]:
    stamp = {"organization": "operator", "kind": "operator", "at": "2026-01-01T00:00:00+00:00"}
    return {name: dict(stamp) for name in names}


async def test_a_partner_cannot_overwrite_what_the_operator_set_it_proposes_instead(
    client: httpx.AsyncClient, db: Database, admin: Caller, partner: Caller
) -> None:
    customer = await partner_customer(
        db, partner, lifecycle_stage="customer", provenance=operator_stamp("lifecycle_stage")
    )
    variables = {"id": gid(customer), "v": 1, "patch": {"lifecycleStage": "CHURNED"}}
    body = (await gql(client, partner, UPDATE, variables))["data"]["updateCustomer"]
    assert body["outcome"] == "QUEUED"
    assert [(p["field"], p["status"]) for p in body["proposedChanges"]] == [
        ("lifecycle_stage", "pending")
    ]
    assert body["customer"] == {"id": gid(customer), "lifecycleStage": "CUSTOMER", "version": 1}
    stored = await load(db, Customer, customer.id)
    assert (stored.lifecycle_stage, stored.version) == ("customer", 1)

    queue = (await gql(client, admin, QUEUE, {"customer": gid(customer)}))["data"]
    [proposal] = queue["proposedChanges"]
    assert proposal["field"] == "lifecycle_stage"
    assert (proposal["value"], proposal["currentValue"]) == ("churned", "customer")
    assert proposal["organization"] == "acme-distribution"

    approved = (await gql(client, admin, APPROVE, {"id": proposal["id"]}))["data"]
    assert approved["approveChange"]["userErrors"] == []
    assert approved["approveChange"]["change"]["status"] == "approved"
    stored = await load(db, Customer, customer.id)
    assert (stored.lifecycle_stage, stored.version) == ("churned", 2)
    shown = (await gql(client, admin, PROVENANCE, {"id": gid(customer)}))["data"]["customer"]
    entry = next(p for p in shown["provenance"] if p["field"] == "lifecycleStage")
    assert entry["organization"] == "acme-distribution"
    assert entry["approvedBy"].startswith("operator/")

    # A decided change cannot be decided again.
    again = await gql(client, admin, REJECT, {"id": proposal["id"]}, expect_errors=True)
    assert again["errors"][0]["extensions"]["code"] == "CONFLICT"
    async with db.session() as session:
        actions = (await session.execute(select(col(AuditEvent.action)))).scalars().all()
    assert "customer.propose" in actions and "customer.proposal.approve" in actions


async def test_a_partner_sets_a_field_nobody_higher_set_and_a_rejection_changes_nothing(
    client: httpx.AsyncClient, db: Database, admin: Caller, partner: Caller
) -> None:
    customer = await partner_customer(db, partner, lifecycle_stage="lead", provenance={})
    first = {"id": gid(customer), "v": 1, "patch": {"lifecycleStage": "PROSPECT"}}
    body = (await gql(client, partner, UPDATE, first))["data"]["updateCustomer"]
    assert (body["outcome"], body["proposedChanges"]) == ("UPDATED", [])
    # The same value again is a no-op, not a new version.
    again = {"id": gid(customer), "v": 2, "patch": {"lifecycleStage": "PROSPECT"}}
    body = (await gql(client, partner, UPDATE, again))["data"]["updateCustomer"]
    assert (body["outcome"], body["customer"]["version"]) == ("UNCHANGED", 2)

    # The operator sets it now; the partner's next word is only a proposal.
    await gql(
        client,
        admin,
        UPDATE,
        {"id": gid(customer), "v": 2, "patch": {"lifecycleStage": "CUSTOMER"}},
    )
    proposed = {"id": gid(customer), "v": 3, "patch": {"lifecycleStage": "CHURNED"}}
    body = (await gql(client, partner, UPDATE, proposed))["data"]["updateCustomer"]
    assert body["outcome"] == "QUEUED"
    # A newer proposal from the same partner supersedes its pending one.
    body = (await gql(client, partner, UPDATE, proposed))["data"]["updateCustomer"]
    [latest] = body["proposedChanges"]
    async with db.session() as session:
        statuses = sorted(
            (await session.execute(select(col(ProposedChange.status)))).scalars().all()
        )
    assert statuses == ["pending", "superseded"]

    rejected = (await gql(client, admin, REJECT, {"id": latest["id"]}))["data"]["rejectChange"]
    assert rejected["change"]["status"] == "rejected"
    stored = await load(db, Customer, customer.id)
    assert (stored.lifecycle_stage, stored.version) == ("customer", 3)
    assert stored.provenance["lifecycle_stage"]["organization"] == "operator"


async def test_a_department_overrides_a_partner_but_not_the_operator(
    client: httpx.AsyncClient, db: Database
) -> None:
    sales = await make_caller(db, "department", slug="sales", attributes={"roles": ["sales"]})
    customer = await make_customer(
        db,
        provenance={
            "segment": {"organization": "acme", "kind": "distributor"},
            "city": {"organization": "operator", "kind": "operator"},
        },
    )
    patch = {"segment": "ENTERPRISE", "city": "Paris"}
    body = await gql(client, sales, UPDATE, {"id": gid(customer), "v": 1, "patch": patch})
    result = body["data"]["updateCustomer"]
    assert result["outcome"] == "UPDATED"
    assert [p["field"] for p in result["proposedChanges"]] == ["city"]
    stored = await load(db, Customer, customer.id)
    assert (stored.segment, stored.city, stored.version) == ("enterprise", "Lyon", 2)
    assert stored.provenance["segment"]["organization"] == "sales"


async def test_review_queue_is_for_administrators_only(
    client: httpx.AsyncClient, db: Database, partner: Caller
) -> None:
    for query in (QUEUE, APPROVE):
        body = await gql(client, partner, query, {"id": "x"}, expect_errors=True)
        assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


PROVENANCE_POLICY = """
rules:
  - name: operator
    subjects: [{kind: operator}]
    resource: Customer
    read: {visible: [id, name, email, lifecycle_stage, version, provenance]}
  - name: a department sees names and where they came from, not emails
    subjects: [{kind: department}]
    resource: Customer
    read: {visible: [id, name, provenance]}
"""


async def test_provenance_is_shown_only_for_fields_the_reader_sees(
    client: httpx.AsyncClient, db: Database, admin: Caller
) -> None:
    support = await make_caller(db, "department", slug="support")
    customer = await make_customer(
        db, provenance=operator_stamp("name", "email", "lifecycle_stage", "traits")
    )
    async with db.transaction() as session:
        await sharing.publish(session, PROVENANCE_POLICY, author="tests", reason="provenance")
    await client.get("/healthz")
    query = "query($id: ID!) { customer(id: $id) { name provenance { field organization } } }"
    for caller, fields in (
        (admin, ["email", "lifecycleStage", "name"]),
        (support, ["name"]),
    ):
        for _ in range(50):  # the runtime picks the new version up within its interval
            body = await gql(client, caller, query, {"id": gid(customer)})
            shown = body["data"]["customer"]
            if (
                shown
                and shown["provenance"] is not None
                and len(shown["provenance"]) == len(fields)
            ):
                break
            await asyncio.sleep(0.1)
        assert sorted(p["field"] for p in shown["provenance"]) == fields


async def test_partners_never_see_provenance(
    client: httpx.AsyncClient, db: Database, partner: Caller
) -> None:
    customer = await partner_customer(db, partner, provenance=operator_stamp("name"))
    body = await gql(client, partner, PROVENANCE, {"id": gid(customer)}, expect_errors=True)
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert "provenance" in body["errors"][0]["message"]  # named by the caller, as unknown
