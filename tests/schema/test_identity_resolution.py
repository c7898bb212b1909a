"""Identity resolution through the API (issue 5 §4): upsertCustomer matches by external
reference, then normalised email, then phone, and never makes a duplicate;
administrators see duplicate candidates and merge them."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text
from sqlmodel import col

from hub import identity, sharing
from hub.customers import CustomerFields
from hub.db import Database
from hub.errors import ForbiddenError
from hub.models import (
    AuditEvent,
    Customer,
    CustomerPartner,
    Disclosure,
    ExternalRef,
    Feedback,
)
from tests.conftest import ALL_SCOPES, Caller, gql, make_caller, make_org, token_for
from tests.hub.factories import assign, gid, make_customer, make_feedback

ADMIN_SCOPES = [*ALL_SCOPES, "hub:admin"]

UPSERT = """
mutation($input: CustomerInput!, $ref: ExternalRefInput, $matchBy: [MatchKey!]) {
  upsertCustomer(input: $input, externalRef: $ref, matchBy: $matchBy) {
    customer { id name email phone version }
    outcome
    matchedBy
    proposedChanges { field status }
    userErrors { field message code }
  }
}"""

MERGE = """
mutation($s: ID!, $d: ID!) {
  mergeCustomers(survivor: $s, duplicate: $d) {
    customer { id name email phone company version }
    moved
    filledFields
    userErrors { field message code }
  }
}"""

DUPLICATES = """
{ duplicateCandidates { reason customers { id name } } }"""


@pytest.fixture
async def admin(db: Database) -> Caller:
    return await make_caller(db, "operator", scopes=ADMIN_SCOPES, slug="operator")


@pytest.fixture
async def sales(db: Database) -> Caller:
    return await make_caller(db, "department", slug="sales", attributes={"roles": ["sales"]})


async def count(db: Database, model: Any) -> int:
    async with db.session() as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


async def upsert(
    client: httpx.AsyncClient, caller: Caller, values: dict[str, Any], **extra: Any
) -> dict[str, Any]:
    body = await gql(client, caller, UPSERT, {"input": values, **extra})
    result: dict[str, Any] = body["data"]["upsertCustomer"]
    return result


async def test_same_person_through_two_channels_is_one_customer_with_two_references(
    client: httpx.AsyncClient, db: Database, sales: Caller, admin: Caller
) -> None:
    first = await upsert(
        client,
        sales,
        {"name": "Ada Lovelace", "email": "Ada.Lovelace@Example.com", "phone": "+44 20 7946 0958"},
        ref={"system": "crm", "id": "C-1001"},
    )
    assert (first["outcome"], first["matchedBy"], first["userErrors"]) == ("CREATED", None, [])
    # The web shop knows her with other spacing and case, and a national phone format.
    second = await upsert(
        client,
        admin,
        {
            "name": "Ada Lovelace",
            "email": "  ada.lovelace@EXAMPLE.COM ",
            "phone": "020 7946 0958",
            "country": "GB",
        },
        ref={"system": "shop", "id": "web-77"},
    )
    assert second["userErrors"] == []
    assert second["matchedBy"] == "EMAIL"
    assert second["customer"]["id"] == first["customer"]["id"]
    assert await count(db, Customer) == 1
    async with db.session() as session:
        refs = (
            await session.execute(select(col(ExternalRef.source), col(ExternalRef.external_id)))
        ).all()
    assert sorted(refs) == [("operator/shop", "web-77"), ("sales/crm", "C-1001")]

    # Later contributions find her by a reference alone, or by phone alone.
    by_ref = await upsert(
        client, sales, {"name": "Ada Lovelace"}, ref={"system": "crm", "id": "C-1001"}
    )
    assert (by_ref["matchedBy"], by_ref["customer"]["id"]) == (
        "EXTERNAL_REF",
        first["customer"]["id"],
    )
    assert by_ref["outcome"] == "UNCHANGED"
    by_phone = await upsert(client, sales, {"name": "Ada Lovelace", "phone": "+442079460958"})
    assert (by_phone["matchedBy"], by_phone["customer"]["id"]) == ("PHONE", first["customer"]["id"])
    assert await count(db, Customer) == 1


async def test_match_keys_are_honoured_in_the_order_given(
    client: httpx.AsyncClient, db: Database, sales: Caller
) -> None:
    made = await upsert(client, sales, {"name": "Grace", "email": "grace@example.org"})
    # Matching by phone only ignores the equal email: a new customer.
    other = await upsert(
        client, sales, {"name": "Grace H", "email": "grace@example.org"}, matchBy=["PHONE"]
    )
    assert other["outcome"] == "CREATED"
    assert other["customer"]["id"] != made["customer"]["id"]
    refused = await upsert(client, sales, {"name": "X"}, matchBy=[])
    assert [(e["field"], e["code"]) for e in refused["userErrors"]] == [(["matchBy"], "REQUIRED")]


async def test_a_reference_lives_in_the_contributors_namespace(
    client: httpx.AsyncClient, db: Database, sales: Caller, admin: Caller
) -> None:
    """The operator's ``crm/C-1`` is not sales' ``crm/C-1``: nobody can claim another
    organization's references."""
    a = await upsert(client, sales, {"name": "A"}, ref={"system": "crm", "id": "C-1"})
    b = await upsert(client, admin, {"name": "B"}, ref={"system": "crm", "id": "C-1"})
    assert a["customer"]["id"] != b["customer"]["id"]
    bad = await upsert(client, sales, {"name": "C"}, ref={"system": "no/slash", "id": " "})
    assert sorted(tuple(e["field"]) for e in bad["userErrors"]) == [
        ("input", "externalRef", "id"),
        ("input", "externalRef", "system"),
    ]


async def test_concurrent_contributions_of_one_new_person_make_one_customer(
    client: httpx.AsyncClient, db: Database, sales: Caller
) -> None:
    await token_for(client, sales)
    values = {"name": "Mary Somerville", "email": "mary@example.net"}
    results = await asyncio.gather(
        *(upsert(client, sales, values, ref={"id": f"R-{n}"}) for n in range(8))
    )
    ids = {r["customer"]["id"] for r in results if r["customer"]}
    assert len(ids) == 1, results
    assert sorted(r["outcome"] for r in results).count("CREATED") == 1
    assert await count(db, Customer) == 1
    assert await count(db, ExternalRef) == 8


async def test_partners_cannot_upsert_and_learn_nothing_about_who_exists(
    client: httpx.AsyncClient, db: Database
) -> None:
    partner = await make_caller(db, "distributor")
    known = await make_customer(db, email="known@example.com")
    bodies = [
        await gql(
            client, partner, UPSERT, {"input": {"name": "Z", "email": email}}, expect_errors=True
        )
        for email in ("known@example.com", "unknown@example.com")
    ]
    # Distributors may not create customers: upsertCustomer is not in their schema, one
    # refusal whoever exists; behind the schema the hub refuses before any lookup too.
    assert bodies[0] == bodies[1]
    assert {e["extensions"]["code"] for e in bodies[0]["errors"]} == {"GRAPHQL_VALIDATION_FAILED"}
    principal = sharing.principal_for(partner.org)
    refusals = []
    for email in ("known@example.com", "unknown@example.com"):
        async with db.transaction() as session:
            with pytest.raises(ForbiddenError) as refused:
                await identity.upsert_customer(
                    session, principal, CustomerFields(name="Z", email=email)
                )
        refusals.append(str(refused.value))
    assert refusals[0] == refusals[1]
    async with db.session() as session:
        assert (await session.get(Customer, known.id)) is not None
    assert await count(db, Customer) == 1


async def test_duplicate_candidates_and_merge(
    client: httpx.AsyncClient, db: Database, admin: Caller, sales: Caller
) -> None:
    partner = await make_org(db, "distributor", slug="acme")
    rival = await make_org(db, "distributor", slug="rival")
    survivor = await make_customer(
        db, name="Ada Lovelace", email="ada@example.com", phone="+14155550001", company=None
    )
    duplicate = await make_customer(
        db, name="A. Lovelace", email="ADA@example.com ", phone="+14155550002",
        company="Analytical Engines", consent_share_with_partners=True,
    )  # fmt: skip
    unrelated = await make_customer(db, name="Other", phone="+14155550002")
    await make_feedback(db, duplicate, sales.org)
    await make_feedback(db, survivor, sales.org)
    await assign(db, survivor, partner)
    await assign(db, duplicate, partner)
    await assign(db, duplicate, rival)
    async with db.transaction() as session:
        session.add(ExternalRef(source="sales/crm", external_id="D-1", customer_id=duplicate.id))
        # Someone read the duplicate: after the merge, the survivor's report shows it.
        session.add(
            Disclosure(
                id=1 << 24,
                event_seq=1,
                customer_ids=[duplicate.id],
                organization="acme",
                client="c",
            )
        )

    groups = (await gql(client, admin, DUPLICATES))["data"]["duplicateCandidates"]
    found = {(g["reason"], tuple(c["id"] for c in g["customers"])) for g in groups}
    assert ("email", (gid(survivor), gid(duplicate))) in found
    assert ("phone", (gid(duplicate), gid(unrelated))) in found

    body = await gql(client, admin, MERGE, {"s": gid(survivor), "d": gid(duplicate)})
    merged = body["data"]["mergeCustomers"]
    assert merged["userErrors"] == []
    assert merged["customer"]["id"] == gid(survivor)
    assert merged["customer"]["company"] == "Analytical Engines"  # filled from the duplicate
    assert merged["customer"]["name"] == "Ada Lovelace"  # the survivor's own value stays
    assert merged["customer"]["version"] == 2
    assert "company" in merged["filledFields"]
    assert merged["moved"]["feedback"] == 1
    assert merged["moved"]["external_ref"] == 1
    assert merged["moved"]["disclosure"] == 1
    async with db.session() as session:
        assert await session.get(Customer, duplicate.id) is None
        feedback = (await session.execute(select(col(Feedback.customer_id)))).scalars().all()
        assert set(feedback) == {survivor.id}
        partners = (
            (
                await session.execute(
                    select(col(CustomerPartner.organization_id)).where(
                        col(CustomerPartner.customer_id) == survivor.id
                    )
                )
            )
            .scalars()
            .all()
        )
        assert sorted(map(str, partners)) == sorted([str(partner.id), str(rival.id)])
        ref = (await session.execute(select(ExternalRef))).scalar_one()
        assert ref.customer_id == survivor.id
        stored = await session.get(Customer, survivor.id)
        assert stored is not None
        # Consent is kept only where both records gave it: the survivor never had it.
        assert stored.consent_share_with_partners is False
        event = (
            await session.execute(
                select(AuditEvent).where(col(AuditEvent.action) == "customer.merge")
            )
        ).scalar_one()
    assert event.details["duplicate"] == str(duplicate.id)
    assert event.details["changes"]["company"]["after"] == "Analytical Engines"
    # The duplicate's email is in the trail as a keyed hash, never in clear.
    assert "ada@example.com" not in str(event.details).lower()

    # The duplicate's id now answers like any unknown customer.
    again = await gql(client, admin, MERGE, {"s": gid(survivor), "d": gid(duplicate)})
    assert [(e["field"], e["code"]) for e in again["data"]["mergeCustomers"]["userErrors"]] == [
        (["duplicate"], "NOT_FOUND")
    ]
    same = await gql(client, admin, MERGE, {"s": gid(survivor), "d": gid(survivor)})
    assert same["data"]["mergeCustomers"]["userErrors"][0]["code"] == "INVALID"


async def test_merge_and_duplicates_are_for_administrators_only(
    client: httpx.AsyncClient, db: Database, sales: Caller
) -> None:
    a, b = await make_customer(db), await make_customer(db)
    for query, variables in ((MERGE, {"s": gid(a), "d": gid(b)}), (DUPLICATES, {})):
        body = await gql(client, sales, query, variables, expect_errors=True)
        assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    async with db.session() as session:
        assert (await session.execute(text("SELECT count(*) FROM customer"))).scalar_one() == 2


CREATE = """
mutation($input: CustomerInput!) {
  createCustomer(input: $input) {
    customer { id name }
    outcome
    userErrors { field message code }
  }
}"""


async def test_a_retried_create_with_its_key_makes_one_customer(
    client: httpx.AsyncClient, db: Database, sales: Caller
) -> None:
    values = {"name": "Hedy Lamarr", "email": "hedy@example.com", "idempotencyKey": "k-1"}
    first = (await gql(client, sales, CREATE, {"input": values}))["data"]["createCustomer"]
    retry = (await gql(client, sales, CREATE, {"input": values}))["data"]["createCustomer"]
    assert first == retry
    assert first["outcome"] == "CREATED"
    assert await count(db, Customer) == 1
    other = {**values, "name": "Hedy K. Lamarr"}
    refused = (await gql(client, sales, CREATE, {"input": other}))["data"]["createCustomer"]
    assert [(e["field"], e["code"]) for e in refused["userErrors"]] == [
        (["input", "idempotencyKey"], "IDEMPOTENCY_KEY_REUSED")
    ]
    assert refused["customer"] is None
    assert await count(db, Customer) == 1


async def test_a_retried_upsert_replays_its_first_answer(
    client: httpx.AsyncClient, db: Database, sales: Caller
) -> None:
    await make_customer(db, name="Hedy", email="hedy@example.com")
    values = {"name": "Hedy", "email": "HEDY@example.com", "segment": "ENTERPRISE"}
    headers_key = {"input": values, "ref": {"id": "H-1"}}
    token = await token_for(client, sales)

    async def send() -> dict[str, Any]:
        response = await client.post(
            "/graphql",
            json={"query": UPSERT, "variables": headers_key},
            headers={"Authorization": f"Bearer {token}", "Idempotency-Key": "upsert-1"},
        )
        body: dict[str, Any] = response.json()["data"]["upsertCustomer"]
        return body

    first, retry = await send(), await send()
    assert first == retry
    assert (first["outcome"], first["matchedBy"], first["customer"]["version"]) == (
        "UPDATED",
        "EMAIL",
        2,
    )
    async with db.session() as session:
        versions = (await session.execute(select(col(Customer.version)))).scalars().all()
        events = (
            await session.execute(
                select(func.count())
                .select_from(AuditEvent)
                .where(col(AuditEvent.action) == "customer.update")
            )
        ).scalar_one()
    assert (versions, events) == ([2], 1)
