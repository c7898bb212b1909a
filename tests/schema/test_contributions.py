"""``assignPartner`` / ``unassignPartner`` (operator administrators only, idempotent,
audited) and ``recordConsent`` (under the Customer write rule, version bump, provenance,
audited, idempotent with a key)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlmodel import col

from hub import consent, sharing
from hub.assignments import assign_partner
from hub.db import Database
from hub.errors import ForbiddenError, InvalidInputError, NotFoundError
from hub.models import AuditEvent, Customer, CustomerPartner, IdempotencyKey, OrgKind
from hub.principal import Principal
from tests.conftest import ALL_SCOPES, Caller, gql, make_caller, make_org, token_for
from tests.hub.factories import assign, count_rows, gid, load, make_customer, missing_gid

ADMIN_SCOPES = [*ALL_SCOPES, "hub:admin"]
ERRORS = "userErrors { field message code }"
ASSIGN = f"""mutation($customer: ID!, $partner: String!, $role: String!) {{
  assignPartner(customerId: $customer, partner: $partner, role: $role) {{
    assignment {{ role since organization {{ slug }} }} {ERRORS} }} }}"""
UNASSIGN = f"""mutation($customer: ID!, $partner: String!) {{
  unassignPartner(customerId: $customer, partner: $partner) {{ removed {ERRORS} }} }}"""
CONSENT = f"""mutation($input: RecordConsentInput!) {{
  recordConsent(input: $input) {{
    customer {{ id version consent {{ shareWithPartners marketingOptIn givenAt source }} }}
    {ERRORS} }} }}"""
PARTNER_CUSTOMERS = "{ customers { edges { node { id name } } } }"


@pytest.fixture
async def admin(db: Database) -> Caller:
    return await make_caller(db, "operator", slug="operator", scopes=ADMIN_SCOPES)


@pytest.fixture
async def partner(db: Database) -> Caller:
    return await make_caller(db, "distributor", slug="acme-distribution")


def codes(body: dict[str, Any]) -> list[str]:
    return [e["extensions"]["code"] for e in body["errors"]]


def errors_of(body: dict[str, Any], mutation: str) -> list[tuple[list[str], str]]:
    return [(e["field"], e["code"]) for e in body["data"][mutation]["userErrors"]]


async def audit_actions(db: Database) -> list[tuple[str, dict[str, Any]]]:
    """The data-write events of the audit log (partners' reads and the policy install
    at start-up are logged too)."""
    async with db.session() as session:
        rows = (await session.execute(select(AuditEvent).order_by(col(AuditEvent.seq)))).scalars()
        return [(row.action, row.details) for row in rows if _is_data_write(row.action)]


def _is_data_write(action: str) -> bool:
    return action != "read" and not action.startswith("policy.")


async def links(db: Database) -> list[CustomerPartner]:
    async with db.session() as session:
        return list((await session.execute(select(CustomerPartner))).scalars())


# --- assignPartner / unassignPartner ----------------------------------------------------


async def test_operator_assigns_a_partner_who_then_sees_the_customer(
    client: httpx.AsyncClient, db: Database, admin: Caller, partner: Caller
) -> None:
    customer = await make_customer(db, name="Ada", consent_share_with_partners=True)
    assert (await gql(client, partner, PARTNER_CUSTOMERS))["data"]["customers"]["edges"] == []
    variables = {"customer": gid(customer), "partner": "acme-distribution", "role": "reseller"}
    body = await gql(client, admin, ASSIGN, variables)
    payload = body["data"]["assignPartner"]
    assert payload["userErrors"] == []
    assert payload["assignment"]["role"] == "reseller"
    assert payload["assignment"]["organization"] == {"slug": "acme-distribution"}
    [link] = await links(db)
    assert (link.customer_id, link.organization_id) == (customer.id, partner.org.id)
    seen = await gql(client, partner, PARTNER_CUSTOMERS)
    assert seen["data"]["customers"]["edges"] == [{"node": {"id": gid(customer), "name": "Ada"}}]
    [(action, details)] = await audit_actions(db)
    assert action == "assignment.create"
    assert details["changes"]["role"] == {"before": None, "after": "reseller"}
    assert details["partner"] == "acme-distribution"


async def test_assigning_twice_returns_the_existing_assignment(
    client: httpx.AsyncClient, db: Database, admin: Caller, partner: Caller
) -> None:
    customer = await make_customer(db)
    by_slug = {"customer": gid(customer), "partner": "acme-distribution", "role": "reseller"}
    by_id = {**by_slug, "partner": str(partner.org.id)}
    first = await gql(client, admin, ASSIGN, by_slug)
    again = await gql(client, admin, ASSIGN, by_id)
    assert again == first  # same since: the same assignment
    assert len(await links(db)) == 1
    assert [a for a, _ in await audit_actions(db)] == ["assignment.create"]
    # Another role changes the role of the same assignment.
    changed = await gql(client, admin, ASSIGN, {**by_slug, "role": "installer"})
    assignment = changed["data"]["assignPartner"]["assignment"]
    assert assignment["role"] == "installer"
    assert assignment["since"] == first["data"]["assignPartner"]["assignment"]["since"]
    assert [a for a, _ in await audit_actions(db)] == ["assignment.create", "assignment.update"]


async def test_concurrent_assignments_of_one_pair_make_one(
    client: httpx.AsyncClient, db: Database, admin: Caller, partner: Caller
) -> None:
    customer = await make_customer(db)
    await token_for(client, admin)
    variables = {"customer": gid(customer), "partner": partner.org.slug, "role": "reseller"}
    bodies = await asyncio.gather(*(gql(client, admin, ASSIGN, variables) for _ in range(6)))
    assert all(b["data"]["assignPartner"]["userErrors"] == [] for b in bodies)
    assert len({b["data"]["assignPartner"]["assignment"]["since"] for b in bodies}) == 1
    assert len(await links(db)) == 1
    assert [a for a, _ in await audit_actions(db)] == ["assignment.create"]


async def test_assignment_input_errors(
    client: httpx.AsyncClient, db: Database, admin: Caller, partner: Caller
) -> None:
    customer = await make_customer(db)
    department = await make_org(db, "department", slug="sales")
    await make_org(db, "vendor", slug="old-vendor", active=False)
    cases = [
        ({"partner": "nobody"}, (["partner"], "NOT_FOUND")),
        ({"partner": department.slug}, (["partner"], "NOT_A_PARTNER")),
        ({"partner": "operator"}, (["partner"], "NOT_A_PARTNER")),
        ({"partner": "old-vendor"}, (["partner"], "INACTIVE")),
        ({"role": "  "}, (["role"], "REQUIRED")),
        ({"role": "r" * 33}, (["role"], "TOO_LONG")),
        ({"customer": missing_gid()}, (["customerId"], "NOT_FOUND")),
        ({"customer": "garbage"}, (["customerId"], "NOT_FOUND")),
    ]
    for override, expected in cases:
        variables = {"customer": gid(customer), "partner": partner.org.slug, "role": "reseller"}
        body = await gql(client, admin, ASSIGN, {**variables, **override})
        assert errors_of(body, "assignPartner") == [expected], override
        assert body["data"]["assignPartner"]["assignment"] is None
    assert await links(db) == []
    assert await audit_actions(db) == []


async def test_unassign_removes_once_and_is_audited(
    client: httpx.AsyncClient, db: Database, admin: Caller, partner: Caller
) -> None:
    customer = await make_customer(db, consent_share_with_partners=True)
    await assign(db, customer, partner.org)
    variables = {"customer": gid(customer), "partner": partner.org.slug}
    body = await gql(client, admin, UNASSIGN, variables)
    assert body["data"]["unassignPartner"] == {"removed": True, "userErrors": []}
    assert await links(db) == []
    assert (await gql(client, partner, PARTNER_CUSTOMERS))["data"]["customers"]["edges"] == []
    again = await gql(client, admin, UNASSIGN, variables)
    assert again["data"]["unassignPartner"] == {"removed": False, "userErrors": []}
    [(action, details)] = await audit_actions(db)
    assert action == "assignment.delete"
    assert details["changes"]["role"] == {"before": "reseller", "after": None}


@pytest.mark.parametrize("who", ["department admin", "operator without hub:admin", "partner"])
async def test_only_operator_administrators_assign(
    client: httpx.AsyncClient, db: Database, partner: Caller, who: str
) -> None:
    if who == "department admin":
        caller = await make_caller(db, "department", scopes=ADMIN_SCOPES)
    elif who == "operator without hub:admin":
        caller = await make_caller(db, "operator")
    else:
        caller = partner
    customer = await make_customer(db, consent_share_with_partners=True)
    await assign(db, customer, partner.org)
    other = await make_caller(db, "distributor")
    assign_vars = {"customer": gid(customer), "partner": other.org.slug, "role": "reseller"}
    unassign_vars = {"customer": gid(customer), "partner": partner.org.slug}
    for query, variables in ((ASSIGN, assign_vars), (UNASSIGN, unassign_vars)):
        body = await gql(client, caller, query, variables, expect_errors=True)
        # A department's administrators see the full schema and are refused at run time;
        # for everyone else the mutations are not in their schema at all.
        expected = "FORBIDDEN" if who == "department admin" else "GRAPHQL_VALIDATION_FAILED"
        assert set(codes(body)) == {expected}, body
    assert [link.organization_id for link in await links(db)] == [partner.org.id]
    assert await audit_actions(db) == []


async def test_a_partner_is_refused_by_the_hub_even_with_the_admin_scope(
    client: httpx.AsyncClient, db: Database, partner: Caller
) -> None:
    del client
    customer = await make_customer(db)
    principal = Principal(
        client_id=partner.client_id,
        organization_id=partner.org.id,
        organization_slug=partner.org.slug,
        organization_kind=OrgKind.DISTRIBUTOR,
        scopes=frozenset(ADMIN_SCOPES),
    )
    async with db.transaction() as session:
        with pytest.raises(ForbiddenError):
            await assign_partner(session, principal, customer.id, partner.org.slug, "reseller")
    assert await links(db) == []


# --- recordConsent ----------------------------------------------------------------------


def consent_input(customer: Customer, **overrides: Any) -> dict[str, Any]:
    return {"customerId": gid(customer), "source": "preference-centre", **overrides}


async def test_operator_records_consent_with_provenance_version_and_audit(
    client: httpx.AsyncClient, db: Database, admin: Caller
) -> None:
    customer = await make_customer(db, consent_marketing_opt_in=True)
    given_at = (datetime.now(UTC) - timedelta(days=2)).replace(microsecond=0)
    body = await gql(
        client,
        admin,
        CONSENT,
        {"input": consent_input(customer, shareWithPartners=True, givenAt=given_at.isoformat())},
    )
    payload = body["data"]["recordConsent"]
    assert payload["userErrors"] == []
    assert payload["customer"]["version"] == 2
    assert payload["customer"]["consent"] == {
        "shareWithPartners": True,
        "marketingOptIn": True,  # not given: unchanged
        "givenAt": given_at.isoformat(),
        "source": "preference-centre",
    }
    stored = await load(db, Customer, customer.id)
    assert (stored.version, stored.consent_share_with_partners) == (2, True)
    assert stored.updated_at > customer.updated_at
    for name in ("consent_share_with_partners", "consent_source", "consent_given_at"):
        assert stored.provenance[name]["organization"] == "operator"
        assert stored.provenance[name]["client"] == admin.client_id
    assert "consent_marketing_opt_in" not in stored.provenance
    assert stored.provenance["name"] == customer.provenance["name"]  # others kept
    [(action, details)] = await audit_actions(db)
    assert action == "consent.record"
    assert details["changes"]["consent_share_with_partners"] == {"before": False, "after": True}
    assert details["changes"]["version"] == {"before": 1, "after": 2}
    assert "consent_marketing_opt_in" not in details["changes"]


async def test_withdrawn_consent_hides_the_customer_from_partners(
    client: httpx.AsyncClient, db: Database, partner: Caller
) -> None:
    sales = await make_caller(db, "department", attributes={"roles": ["sales"]})
    customer = await make_customer(db, consent_share_with_partners=True)
    await assign(db, customer, partner.org)
    assert len((await gql(client, partner, PARTNER_CUSTOMERS))["data"]["customers"]["edges"]) == 1
    body = await gql(
        client, sales, CONSENT, {"input": consent_input(customer, shareWithPartners=False)}
    )
    assert body["data"]["recordConsent"]["userErrors"] == []
    assert (await gql(client, partner, PARTNER_CUSTOMERS))["data"]["customers"]["edges"] == []


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ({}, (["input", "shareWithPartners"], "REQUIRED")),
        ({"marketingOptIn": True, "source": " "}, (["input", "source"], "REQUIRED")),
        ({"marketingOptIn": True, "source": "s" * 121}, (["input", "source"], "TOO_LONG")),
        (
            {"marketingOptIn": True, "givenAt": "2999-01-01T00:00:00+00:00"},
            (["input", "givenAt"], "OUT_OF_RANGE"),
        ),
        ({"marketingOptIn": True, "customerId": "garbage"}, (["input", "customerId"], "NOT_FOUND")),
    ],
)
async def test_record_consent_input_errors_change_nothing(
    client: httpx.AsyncClient,
    db: Database,
    admin: Caller,
    override: dict[str, Any],
    expected: tuple[list[str], str],
) -> None:
    customer = await make_customer(db)
    body = await gql(client, admin, CONSENT, {"input": {**consent_input(customer), **override}})
    assert errors_of(body, "recordConsent") == [expected]
    assert (await load(db, Customer, customer.id)).version == 1
    assert await audit_actions(db) == []


async def test_consent_outside_the_write_rule_is_refused_and_nothing_changes(
    client: httpx.AsyncClient, db: Database, partner: Caller
) -> None:
    # Marketing reads consent but has no Customer write rule: the mutation is not in its
    # schema, and the hub says FORBIDDEN behind it.
    marketing = await make_caller(db, "department", attributes={"roles": ["marketing"]})
    customer = await make_customer(db, consent_share_with_partners=True)
    await assign(db, customer, partner.org)
    body = await gql(
        client,
        marketing,
        CONSENT,
        {"input": consent_input(customer, marketingOptIn=True)},
        expect_errors=True,
    )
    assert set(codes(body)) == {"GRAPHQL_VALIDATION_FAILED"}
    data = consent.ConsentInput(customer.id, "preference-centre", marketing_opt_in=True)
    async with db.transaction() as session:
        with pytest.raises(ForbiddenError):
            await consent.record_consent(session, sharing.principal_for(marketing.org), data)
    # The distributor may write (its lifecycle stage) but not consent: the mutation is not
    # in its schema (it neither sees nor sets the source), and the hub says FORBIDDEN.
    body = await gql(
        client,
        partner,
        CONSENT,
        {"input": consent_input(customer, shareWithPartners=False)},
        expect_errors=True,
    )
    assert set(codes(body)) == {"GRAPHQL_VALIDATION_FAILED"}
    principal = sharing.principal_for(partner.org)
    data = consent.ConsentInput(customer.id, "partner-portal", share_with_partners=False)
    async with db.transaction() as session:
        with pytest.raises(InvalidInputError) as refused:
            await consent.record_consent(session, principal, data)
    assert {(p.path, p.code) for p in refused.value.problems} == {
        (("input", "shareWithPartners"), "FORBIDDEN"),
        (("input", "source"), "FORBIDDEN"),
    }
    stored = await load(db, Customer, customer.id)
    assert (stored.version, stored.consent_share_with_partners) == (1, True)
    assert await audit_actions(db) == []


async def test_missing_or_invisible_customer_is_not_found(
    client: httpx.AsyncClient, db: Database, partner: Caller
) -> None:
    sales = await make_caller(db, "department", attributes={"roles": ["sales"]})
    body = await gql(
        client,
        sales,
        CONSENT,
        {"input": {"customerId": missing_gid(), "source": "s", "marketingOptIn": True}},
    )
    assert errors_of(body, "recordConsent") == [(["input", "customerId"], "NOT_FOUND")]
    # A customer the writer cannot read is answered the same, before its write rights.
    hidden = await make_customer(db, consent_share_with_partners=True)  # not assigned
    data = consent.ConsentInput(hidden.id, "portal", share_with_partners=False)
    async with db.transaction() as session:
        with pytest.raises(NotFoundError):
            await consent.record_consent(session, sharing.principal_for(partner.org), data)
    assert (await load(db, Customer, hidden.id)).version == 1


async def test_record_consent_retried_with_a_key_records_once(
    client: httpx.AsyncClient, db: Database, admin: Caller
) -> None:
    customer = await make_customer(db)
    given = consent_input(customer, marketingOptIn=True, idempotencyKey="pc-1")
    first = await gql(client, admin, CONSENT, {"input": given})
    again = await gql(client, admin, CONSENT, {"input": given})
    assert again == first
    assert (await load(db, Customer, customer.id)).version == 2
    refused = await gql(client, admin, CONSENT, {"input": {**given, "marketingOptIn": False}})
    assert errors_of(refused, "recordConsent") == [
        (["input", "idempotencyKey"], "IDEMPOTENCY_KEY_REUSED")
    ]
    stored = await load(db, Customer, customer.id)
    assert (stored.version, stored.consent_marketing_opt_in) == (2, True)
    assert await count_rows(db, IdempotencyKey) == 1
