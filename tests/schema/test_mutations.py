"""Mutations: validated input with user errors naming the field, nothing half-written,
optimistic concurrency, write checks with presets, and projected payloads.

Who may write what is the default sharing policy's (policies/defaults/default.yaml): the
operator everything; a sales department customers (not their value or traits) and
purchases; a support department feedback and interactions; every department its own
feedback and interactions; a distributor feedback about, and the lifecycle stage of, the
customers assigned to it that consented to partner sharing. Payloads are read back
through the writer's own scoped select."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from hub import activity, customers, sharing
from hub.access import access
from hub.db import Database
from hub.errors import ForbiddenError, NotFoundError
from hub.models import Customer, Feedback, Interaction, Purchase
from hub.settings import Settings
from schema.ids import to_global_id
from tests.conftest import Caller, gql, make_caller
from tests.hub.factories import assign, count_rows, gid, load, make_customer, missing_gid

PAYLOAD_CUSTOMER = """customer { id name email phone country company lifetimeValue traits version
    consent { shareWithPartners } }"""
CREATE = f"""mutation($input: CustomerInput!) {{
  createCustomer(input: $input) {{ {PAYLOAD_CUSTOMER} userErrors {{ field message code }} }}
}}"""
UPDATE = f"""mutation($id: ID!, $version: Int!, $patch: CustomerPatch!) {{
  updateCustomer(id: $id, expectedVersion: $version, patch: $patch) {{
    {PAYLOAD_CUSTOMER} userErrors {{ field message code }} }}
}}"""
SUBMIT = """mutation($input: SubmitFeedbackInput!) {
  submitFeedback(input: $input) {
    feedback { id text scale score visibility tags organization { slug }
      customer { name email phone lifetimeValue traits } }
    userErrors { field message code }
  }
}"""
# What a partner may ask of the payloads: fields in every audience's schema (DESIGN §5).
PARTNER_CREATE = """mutation($input: CustomerInput!) {
  createCustomer(input: $input) { customer { id } userErrors { field message code } } }"""
PARTNER_UPDATE = """mutation($id: ID!, $version: Int!, $patch: CustomerPatch!) {
  updateCustomer(id: $id, expectedVersion: $version, patch: $patch) {
    customer { id } userErrors { field message code } } }"""
PARTNER_SUBMIT = """mutation($input: SubmitFeedbackInput!) {
  submitFeedback(input: $input) { feedback { id } userErrors { field message code } } }"""
# A distributor's payloads: only fields of its schema (no Feedback.organization, no
# lifetimeValue or traits; email and phone masked).
DISTRIBUTOR_UPDATE = """mutation($id: ID!, $version: Int!, $patch: CustomerPatch!) {
  updateCustomer(id: $id, expectedVersion: $version, patch: $patch) {
    customer { id name email phone lifecycleStage version }
    userErrors { field message code } } }"""
DISTRIBUTOR_SUBMIT = """mutation($input: SubmitFeedbackInput!) {
  submitFeedback(input: $input) {
    feedback { id text scale score visibility tags status customer { name email phone } }
    userErrors { field message code } } }"""
LOG = """mutation($input: LogInteractionInput!) {
  logInteraction(input: $input) {
    interaction { id summary channel direction occurredAt }
    userErrors { field message code }
  }
}"""
REPORT = """mutation($input: ReportPurchaseInput!) {
  reportPurchase(input: $input) {
    purchase { id sku quantity amount currency purchasedAt }
    userErrors { field message code }
  }
}"""


@pytest.fixture
async def operator(db: Database) -> Caller:
    return await make_caller(db, "operator", slug="operator")


@pytest.fixture
async def partner(db: Database) -> Caller:
    return await make_caller(db, "distributor", slug="acme-distribution")


async def shared_customer(db: Database, partner: Caller, **overrides: Any) -> Customer:
    """A customer the distributor sees: assigned to it and consenting to partner sharing."""
    customer = await make_customer(db, consent_share_with_partners=True, **overrides)
    await assign(db, customer, partner.org)
    return customer


async def invisible_customers(db: Database, partner: Caller) -> list[Customer]:
    """Customers the distributor does not see: assigned without consent, consenting but
    not assigned, neither."""
    assigned = await make_customer(db, name="Assigned", consent_share_with_partners=False)
    await assign(db, assigned, partner.org)
    consenting = await make_customer(db, name="Consenting", consent_share_with_partners=True)
    neither = await make_customer(db, name="Neither")
    return [assigned, consenting, neither]


def errors_of(body: dict[str, Any], mutation: str) -> list[tuple[list[str], str]]:
    return [(e["field"], e["code"]) for e in body["data"][mutation]["userErrors"]]


def codes(body: dict[str, Any]) -> list[str]:
    return [e["extensions"]["code"] for e in body["errors"]]


def renamed(body: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    """``body`` with each key of ``names`` replaced by its value (same lengths, so error
    locations still match): what an unknown name's answer looks like for another name."""
    text = json.dumps(body)
    for old, new in names.items():
        assert len(old) == len(new)
        text = text.replace(old, new)
    result: dict[str, Any] = json.loads(text)
    return result


# --- createCustomer -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ({"email": "  Ada.Lovelace@Example.COM "}, {"email": "Ada.Lovelace@example.com"}),
        ({"phone": "+1 (415) 555-2671"}, {"phone": "+14155552671"}),
        ({"phone": "(415) 555-2671", "country": "us"}, {"phone": "+14155552671", "country": "US"}),
        ({"phone": "030 12345678", "country": "DE"}, {"phone": "+493012345678", "country": "DE"}),
        ({"phone": "06 12 34 56 78", "country": "FR"}, {"phone": "+33612345678", "country": "FR"}),
        # An international number wins over the country of a national reading.
        ({"phone": "+44 20 7946 0958", "country": "FR"}, {"phone": "+442079460958"}),
        ({"name": "  Ada  ", "company": " Analytical Engines "}, {"name": "Ada"}),
        ({"company": " Analytical Engines "}, {"company": "Analytical Engines"}),
        ({"lifetimeValue": "1999.999"}, {"lifetimeValue": "2000.00"}),
        ({"traits": {"tier": "gold", "tags": ["a"]}}, {"traits": {"tier": "gold", "tags": ["a"]}}),
        ({"name": "x" * 200}, {"name": "x" * 200}),
        ({"email": "", "phone": "  "}, {"email": None, "phone": None}),
    ],
)
async def test_create_customer_normalises_input(
    client: httpx.AsyncClient,
    db: Database,
    operator: Caller,
    given: dict[str, Any],
    expected: dict[str, Any],
) -> None:
    body = await gql(client, operator, CREATE, {"input": {"name": "Ada", **given}})
    payload = body["data"]["createCustomer"]
    assert payload["userErrors"] == []
    customer = payload["customer"]
    assert {key: customer[key] for key in expected} == expected
    assert customer["version"] == 1
    stored = await load(db, Customer, _uuid(customer["id"]))
    for key, value in expected.items():
        column = {"lifetimeValue": "lifetime_value"}.get(key, key)
        got = getattr(stored, column)
        assert (str(got) if isinstance(got, Decimal) else got) == value


def _uuid(global_id: str) -> Any:
    from schema.ids import from_global_id

    parsed = from_global_id(global_id)
    assert parsed is not None
    return parsed[1]


@pytest.mark.parametrize(
    ("given", "field", "code"),
    [
        ({"email": "not-an-email"}, "email", "INVALID_EMAIL"),
        ({"email": "ada@@example.com"}, "email", "INVALID_EMAIL"),
        ({"email": "Ada <ada@example.com>"}, "email", "INVALID_EMAIL"),
        ({"email": "a" * 250 + "@example.com"}, "email", "INVALID_EMAIL"),
        ({"phone": "12345"}, "phone", "INVALID_PHONE"),
        ({"phone": "not a number"}, "phone", "INVALID_PHONE"),
        ({"phone": "(415) 555-2671"}, "phone", "INVALID_PHONE"),  # national, no country
        ({"phone": "+1 555 0100"}, "phone", "INVALID_PHONE"),  # parses, not a valid number
        ({"country": "XX"}, "country", "INVALID_COUNTRY"),
        ({"country": "DEU"}, "country", "INVALID_COUNTRY"),
        ({"country": "UK"}, "country", "INVALID_COUNTRY"),
        ({"name": ""}, "name", "REQUIRED"),
        ({"name": "   "}, "name", "REQUIRED"),
        ({"name": "x" * 201}, "name", "TOO_LONG"),
        ({"company": "c" * 201}, "company", "TOO_LONG"),
        ({"title": "t" * 201}, "title", "TOO_LONG"),
        ({"city": "c" * 121}, "city", "TOO_LONG"),
        ({"region": "r" * 65}, "region", "TOO_LONG"),
        ({"consentSource": "s" * 121}, "consentSource", "TOO_LONG"),
        ({"lifetimeValue": "-0.01"}, "lifetimeValue", "OUT_OF_RANGE"),
        ({"lifetimeValue": "1000000000000"}, "lifetimeValue", "OUT_OF_RANGE"),
        ({"traits": [1, 2]}, "traits", "INVALID"),
        ({"traits": "gold"}, "traits", "INVALID"),
        ({"traits": {"blob": "x" * 10_001}}, "traits", "TOO_LONG"),
    ],
)
async def test_create_customer_refuses_invalid_input_and_writes_nothing(
    client: httpx.AsyncClient,
    db: Database,
    operator: Caller,
    given: dict[str, Any],
    field: str,
    code: str,
) -> None:
    before = await count_rows(db, Customer)
    body = await gql(client, operator, CREATE, {"input": {"name": "Ada", **given}})
    assert body["data"]["createCustomer"]["customer"] is None
    assert errors_of(body, "createCustomer") == [(["input", field], code)]
    assert body["data"]["createCustomer"]["userErrors"][0]["message"]
    assert await count_rows(db, Customer) == before


async def test_create_customer_reports_every_problem_at_once(
    client: httpx.AsyncClient, db: Database, operator: Caller
) -> None:
    given = {
        "name": " ",
        "email": "nope",
        "phone": "12",
        "country": "ZZ",
        "region": "r" * 65,
        "lifetimeValue": "-5",
        "traits": [],
    }
    body = await gql(client, operator, CREATE, {"input": given})
    assert sorted(errors_of(body, "createCustomer")) == sorted(
        [
            (["input", "name"], "REQUIRED"),
            (["input", "email"], "INVALID_EMAIL"),
            (["input", "phone"], "INVALID_PHONE"),
            (["input", "country"], "INVALID_COUNTRY"),
            (["input", "region"], "TOO_LONG"),
            (["input", "lifetimeValue"], "OUT_OF_RANGE"),
            (["input", "traits"], "INVALID"),
        ]
    )
    assert await count_rows(db, Customer) == 0


async def test_create_customer_records_provenance_and_consent_time(
    client: httpx.AsyncClient, db: Database, operator: Caller
) -> None:
    given = {"name": "Ada", "email": "ada@example.com", "shareWithPartners": True}
    body = await gql(client, operator, CREATE, {"input": given})
    customer = body["data"]["createCustomer"]["customer"]
    assert customer["consent"] == {"shareWithPartners": True}
    stored = await load(db, Customer, _uuid(customer["id"]))
    assert stored.consent_given_at is not None
    assert set(stored.provenance) >= {"name", "email", "consent_share_with_partners"}
    assert stored.provenance["email"]["organization"] == "operator"


@pytest.mark.parametrize("kind", ["operator", "sales department"])
async def test_staff_payload_shows_everything_partner_query_masks_it(
    client: httpx.AsyncClient, db: Database, partner: Caller, kind: str
) -> None:
    given: dict[str, Any] = {
        "name": "Ada",
        "email": "ada@example.com",
        "phone": "+14155552671",
        "shareWithPartners": True,
    }
    if kind == "operator":
        staff = await make_caller(db, "operator")
        given |= {"lifetimeValue": "10.00", "traits": {"vip": True}}
        value, traits = "10.00", {"vip": True}
    else:  # sales reads value and traits, but may not set them (see below)
        staff = await make_caller(db, "department", attributes={"roles": ["sales"]})
        value, traits = None, {}
    body = await gql(client, staff, CREATE, {"input": given})
    created = body["data"]["createCustomer"]["customer"]
    assert (
        created["email"],
        created["phone"],
        created["lifetimeValue"],
        created["traits"],
        created["consent"],
    ) == ("ada@example.com", "+14155552671", value, traits, {"shareWithPartners": True})
    customer = await load(db, Customer, _uuid(created["id"]))
    await assign(db, customer, partner.org)
    seen = await gql(
        client,
        partner,
        "query($id: ID!) { customer(id: $id) { name email phone } }",
        {"id": created["id"]},
    )
    assert seen["data"]["customer"] == {
        "name": "Ada",
        "email": "a***@example.com",
        "phone": "****2671",
    }
    # Value and traits are not in the distributor's schema: unknown, like a typo.
    for field in ("lifetimeValue", "traits"):
        query = f"query($id: ID!) {{ customer(id: $id) {{ name {field} }} }}"
        hidden = await gql(client, partner, query, {"id": created["id"]}, expect_errors=True)
        unknown = await gql(
            client,
            partner,
            query.replace(field, "q" * len(field)),
            {"id": created["id"]},
            expect_errors=True,
        )
        assert codes(hidden) == ["GRAPHQL_VALIDATION_FAILED"], hidden
        assert hidden == renamed(unknown, {"q" * len(field): field})


async def test_sales_may_not_set_value_or_traits(client: httpx.AsyncClient, db: Database) -> None:
    sales = await make_caller(db, "department", attributes={"roles": ["sales"]})
    given = {"name": "Ada", "lifetimeValue": "10.00", "traits": {"vip": True}}
    body = await gql(client, sales, CREATE, {"input": given})
    assert body["data"]["createCustomer"]["customer"] is None
    assert errors_of(body, "createCustomer") == [
        (["input", "lifetimeValue"], "FORBIDDEN"),
        (["input", "traits"], "FORBIDDEN"),
    ]
    assert await count_rows(db, Customer) == 0

    # No provenance: the write rules alone decide (an operator-stamped name would rank
    # above sales and its change be queued for review, tests/hub/test_provenance.py).
    customer = await make_customer(db, name="Ada", provenance={})
    refused = await gql(
        client, sales, UPDATE, {"id": gid(customer), "version": 1, "patch": {"traits": {}}}
    )
    assert errors_of(refused, "updateCustomer") == [(["patch", "traits"], "FORBIDDEN")]
    stored = await load(db, Customer, customer.id)
    assert (stored.version, stored.traits) == (1, customer.traits)
    # Everything else of the profile is sales' to change.
    patch = {"name": "Ada Lovelace", "marketingOptIn": True, "segment": "ENTERPRISE"}
    body = await gql(client, sales, UPDATE, {"id": gid(customer), "version": 1, "patch": patch})
    assert body["data"]["updateCustomer"]["userErrors"] == []
    assert body["data"]["updateCustomer"]["customer"]["lifetimeValue"] == "1234.50"
    stored = await load(db, Customer, customer.id)
    assert (stored.version, stored.name, stored.segment) == (2, "Ada Lovelace", "enterprise")


@pytest.mark.parametrize("roles", [["support"], ["marketing"], []])
async def test_other_departments_may_not_create_customers(
    client: httpx.AsyncClient, db: Database, roles: list[str]
) -> None:
    department = await make_caller(db, "department", attributes={"roles": roles})
    await assert_may_not_create_customers(client, db, department)


async def assert_may_not_create_customers(
    client: httpx.AsyncClient, db: Database, caller: Caller
) -> None:
    """createCustomer is not in the caller's schema (no rule grants it a Customer
    create), and the hub refuses it behind the schema too."""
    body = await gql(client, caller, PARTNER_CREATE, {"input": {"name": "Eve"}}, expect_errors=True)
    assert set(codes(body)) == {"GRAPHQL_VALIDATION_FAILED"}
    assert body.get("data") is None
    async with db.transaction() as session:
        with pytest.raises(ForbiddenError):
            await customers.create_customer(
                session, sharing.principal_for(caller.org), customers.CustomerFields(name="Eve")
            )
    assert await count_rows(db, Customer) == 0


async def test_partner_cannot_create_customers(
    client: httpx.AsyncClient, db: Database, partner: Caller
) -> None:
    await assert_may_not_create_customers(client, db, partner)


async def test_create_customer_input_is_an_allow_list(
    client: httpx.AsyncClient, db: Database, operator: Caller
) -> None:
    extras: list[dict[str, Any]] = [{"version": 7}, {"provenance": {}}, {"id": missing_gid()}]
    for extra in extras:
        body = await gql(
            client, operator, CREATE, {"input": {"name": "Ada", **extra}}, expect_errors=True
        )
        assert codes(body) == ["BAD_USER_INPUT"], extra
    assert await count_rows(db, Customer) == 0


# --- updateCustomer -------------------------------------------------------------------


async def test_update_customer_bumps_the_version(
    client: httpx.AsyncClient, db: Database, operator: Caller
) -> None:
    customer = await make_customer(db, name="Ada", email="ada@example.com")
    patch = {"name": "Ada Lovelace", "email": "ADA@EXAMPLE.ORG", "phone": "+33 6 12 34 56 78"}
    body = await gql(client, operator, UPDATE, {"id": gid(customer), "version": 1, "patch": patch})
    payload = body["data"]["updateCustomer"]
    assert payload["userErrors"] == []
    assert payload["customer"]["version"] == 2
    assert payload["customer"]["name"] == "Ada Lovelace"
    assert payload["customer"]["email"] == "ADA@example.org"
    assert payload["customer"]["phone"] == "+33612345678"
    assert payload["customer"]["company"] == customer.company  # untouched
    stored = await load(db, Customer, customer.id)
    assert (stored.version, stored.name, stored.email) == (2, "Ada Lovelace", "ADA@example.org")
    assert stored.updated_at > customer.updated_at
    # The next write must name the new version.
    again = await gql(
        client, operator, UPDATE, {"id": gid(customer), "version": 2, "patch": {"city": "Paris"}}
    )
    assert again["data"]["updateCustomer"]["customer"]["version"] == 3


async def test_update_customer_with_a_stale_version_conflicts_and_changes_nothing(
    client: httpx.AsyncClient, db: Database, operator: Caller
) -> None:
    customer = await make_customer(db, name="Ada")
    await gql(client, operator, UPDATE, {"id": gid(customer), "version": 1, "patch": {"name": "B"}})
    body = await gql(
        client,
        operator,
        UPDATE,
        {"id": gid(customer), "version": 1, "patch": {"name": "Stale"}},
        expect_errors=True,
    )
    assert body["data"] is None
    [error] = body["errors"]
    assert error["extensions"] == {"code": "CONFLICT", "currentVersion": 2}
    assert error["path"] == ["updateCustomer"]
    stored = await load(db, Customer, customer.id)
    assert (stored.version, stored.name) == (2, "B")


async def test_concurrent_updates_with_one_version_let_exactly_one_win(
    client: httpx.AsyncClient, db: Database, operator: Caller
) -> None:
    customer = await make_customer(db, name="Ada")
    bodies = await asyncio.gather(
        *(
            gql(
                client,
                operator,
                UPDATE,
                {"id": gid(customer), "version": 1, "patch": {"name": f"Writer {i}"}},
                expect_errors=True,
            )
            for i in range(4)
        )
    )
    winners = [b for b in bodies if "errors" not in b]
    losers = [b for b in bodies if "errors" in b]
    assert len(winners) == 1
    assert all(codes(b) == ["CONFLICT"] for b in losers)
    stored = await load(db, Customer, customer.id)
    assert stored.version == 2
    assert stored.name == winners[0]["data"]["updateCustomer"]["customer"]["name"]


@pytest.mark.parametrize(
    ("patch", "field", "code"),
    [
        ({"email": "nope"}, "email", "INVALID_EMAIL"),
        ({"phone": "12"}, "phone", "INVALID_PHONE"),
        ({"country": "XX"}, "country", "INVALID_COUNTRY"),
        ({"name": ""}, "name", "REQUIRED"),
        ({"name": "n" * 201}, "name", "TOO_LONG"),
        ({"lifetimeValue": "-1"}, "lifetimeValue", "OUT_OF_RANGE"),
    ],
)
async def test_update_customer_refuses_invalid_patch_and_changes_nothing(
    client: httpx.AsyncClient,
    db: Database,
    operator: Caller,
    patch: dict[str, Any],
    field: str,
    code: str,
) -> None:
    customer = await make_customer(db, name="Ada")
    body = await gql(client, operator, UPDATE, {"id": gid(customer), "version": 1, "patch": patch})
    assert body["data"]["updateCustomer"]["customer"] is None
    assert errors_of(body, "updateCustomer") == [(["patch", field], code)]
    stored = await load(db, Customer, customer.id)
    assert (stored.version, stored.name, stored.email) == (1, "Ada", customer.email)


async def test_partner_updates_the_lifecycle_stage_and_gets_a_masked_payload(
    client: httpx.AsyncClient, db: Database, partner: Caller
) -> None:
    customer = await shared_customer(
        db, partner, name="Ada", email="ada@example.com", lifecycle_stage="customer"
    )
    variables = {"id": gid(customer), "version": 1, "patch": {"lifecycleStage": "CHURNED"}}
    body = await gql(client, partner, DISTRIBUTOR_UPDATE, variables)
    # The payload is the partner's projection: email and phone masked, as in a query.
    assert body["data"]["updateCustomer"] == {
        "customer": {
            "id": gid(customer),
            "name": "Ada",
            "email": "a***@example.com",
            "phone": "****2671",
            "lifecycleStage": "CHURNED",
            "version": 2,
        },
        "userErrors": [],
    }
    stored = await load(db, Customer, customer.id)
    assert (stored.version, stored.lifecycle_stage) == (2, "churned")
    assert (stored.name, stored.email, stored.phone) == ("Ada", "ada@example.com", customer.phone)
    assert stored.provenance["lifecycle_stage"]["organization"] == "acme-distribution"


@pytest.mark.parametrize(
    ("patch", "refused"),
    [
        ({"name": "Hijacked"}, ["name"]),
        ({"email": "eve@example.com", "lifecycleStage": "CHURNED"}, ["email"]),
        ({"shareWithPartners": False}, ["shareWithPartners"]),
        (
            {"phone": "+33612345678", "city": "Paris", "segment": "ENTERPRISE"},
            ["city", "phone", "segment"],
        ),
    ],
)
async def test_partner_may_set_no_field_but_the_lifecycle_stage(
    client: httpx.AsyncClient,
    db: Database,
    partner: Caller,
    patch: dict[str, Any],
    refused: list[str],
) -> None:
    customer = await shared_customer(db, partner, name="Ada", lifecycle_stage="customer")
    body = await gql(
        client, partner, DISTRIBUTOR_UPDATE, {"id": gid(customer), "version": 1, "patch": patch}
    )
    assert body["data"]["updateCustomer"]["customer"] is None
    assert sorted(errors_of(body, "updateCustomer")) == [
        (["patch", field], "FORBIDDEN") for field in refused
    ]
    stored = await load(db, Customer, customer.id)
    assert (stored.version, stored.name, stored.email, stored.phone, stored.city) == (
        1,
        "Ada",
        customer.email,
        customer.phone,
        customer.city,
    )
    assert (stored.lifecycle_stage, stored.segment, stored.consent_share_with_partners) == (
        "customer",
        customer.segment,
        True,
    )


@pytest.mark.parametrize("hidden", ["lifetimeValue", "traits"])
async def test_partner_patch_of_a_hidden_field_is_refused_like_an_unknown_field(
    client: httpx.AsyncClient, db: Database, partner: Caller, hidden: str
) -> None:
    customer = await shared_customer(db, partner)
    unknown = "q" * len(hidden)
    bodies = [
        await gql(
            client,
            partner,
            DISTRIBUTOR_UPDATE,
            {"id": gid(customer), "version": 1, "patch": {name: "1"}},
            expect_errors=True,
        )
        for name in (hidden, unknown)
    ]
    assert codes(bodies[0]) == ["BAD_USER_INPUT"]
    assert bodies[0] == renamed(bodies[1], {unknown: hidden})
    stored = await load(db, Customer, customer.id)
    assert (stored.version, stored.lifetime_value, stored.traits) == (
        1,
        customer.lifetime_value,
        customer.traits,
    )


async def test_update_of_an_invisible_customer_answers_like_a_missing_one(
    client: httpx.AsyncClient, db: Database, partner: Caller
) -> None:
    hidden = await invisible_customers(db, partner)
    expected = {
        "data": {
            "updateCustomer": {
                "customer": None,
                "userErrors": [
                    {"field": ["id"], "message": "no such customer", "code": "NOT_FOUND"}
                ],
            }
        }
    }
    ids = [*(gid(c) for c in hidden), missing_gid(), "garbage"]
    # Whether the patch is one the partner may write or not: the customer comes first.
    for patch in ({"name": "X"}, {"lifecycleStage": "CHURNED"}):
        bodies = [
            await gql(client, partner, PARTNER_UPDATE, {"id": i, "version": 1, "patch": patch})
            for i in ids
        ]
        assert bodies == [expected] * len(ids)
    for customer in hidden:
        stored = await load(db, Customer, customer.id)
        assert (stored.version, stored.name, stored.lifecycle_stage) == (
            1,
            customer.name,
            customer.lifecycle_stage,
        )


# --- submitFeedback -------------------------------------------------------------------


def feedback_input(customer_id: str, **overrides: Any) -> dict[str, Any]:
    return {
        "customerId": customer_id,
        "channel": "EMAIL",
        "kind": "PRAISE",
        "text": "Lovely service",
        **overrides,
    }


@pytest.mark.parametrize(
    ("scale", "score", "problem"),
    [
        ("CSAT", 1, None),
        ("CSAT", 5, None),
        ("CSAT", 6, (["input", "score"], "OUT_OF_RANGE")),
        ("CSAT", 0, (["input", "score"], "OUT_OF_RANGE")),
        ("NPS", 0, None),
        ("NPS", 10, None),
        ("NPS", 11, (["input", "score"], "OUT_OF_RANGE")),
        ("NPS", -1, (["input", "score"], "OUT_OF_RANGE")),
        (None, 3, (["input", "scale"], "REQUIRED")),
        ("CSAT", None, (["input", "score"], "REQUIRED")),
        (None, None, None),
    ],
)
async def test_submit_feedback_rating_within_its_scale(
    client: httpx.AsyncClient,
    db: Database,
    operator: Caller,
    scale: str | None,
    score: int | None,
    problem: tuple[list[str], str] | None,
) -> None:
    customer = await make_customer(db)
    given = feedback_input(gid(customer), scale=scale, score=score)
    body = await gql(client, operator, SUBMIT, {"input": given})
    payload = body["data"]["submitFeedback"]
    if problem is None:
        assert payload["userErrors"] == []
        assert (payload["feedback"]["scale"], payload["feedback"]["score"]) == (scale, score)
        assert await count_rows(db, Feedback) == 1
    else:
        assert payload["feedback"] is None
        assert errors_of(body, "submitFeedback") == [problem]
        assert await count_rows(db, Feedback) == 0


@pytest.mark.parametrize(
    ("overrides", "field", "code"),
    [
        ({"text": "  "}, "text", "REQUIRED"),
        ({"text": "t" * 5001}, "text", "TOO_LONG"),
        ({"product": "p" * 121}, "product", "TOO_LONG"),
        ({"tags": [f"t{i}" for i in range(21)]}, "tags", "TOO_LONG"),
        ({"tags": ["x" * 41]}, "tags", "TOO_LONG"),
        ({"externalRef": "r" * 201}, "externalRef", "TOO_LONG"),
    ],
)
async def test_submit_feedback_refuses_invalid_input(
    client: httpx.AsyncClient,
    db: Database,
    operator: Caller,
    overrides: dict[str, Any],
    field: str,
    code: str,
) -> None:
    customer = await make_customer(db)
    body = await gql(
        client, operator, SUBMIT, {"input": feedback_input(gid(customer), **overrides)}
    )
    assert errors_of(body, "submitFeedback") == [(["input", field], code)]
    assert await count_rows(db, Feedback) == 0


@pytest.mark.parametrize("who", ["partner", "operator"])
async def test_submit_feedback_for_unknown_invisible_or_garbage_customer(
    client: httpx.AsyncClient, db: Database, partner: Caller, operator: Caller, who: str
) -> None:
    caller = partner if who == "partner" else operator
    ids = [missing_gid(), "garbage", missing_gid("Feedback")]
    if who == "partner":
        ids.extend(gid(c) for c in await invisible_customers(db, partner))
    query = PARTNER_SUBMIT if who == "partner" else SUBMIT
    bodies = [await gql(client, caller, query, {"input": feedback_input(i)}) for i in ids]
    expected = {
        "data": {
            "submitFeedback": {
                "feedback": None,
                "userErrors": [
                    {
                        "field": ["input", "customerId"],
                        "message": "no such customer",
                        "code": "NOT_FOUND",
                    }
                ],
            }
        }
    }
    assert bodies == [expected] * len(ids)
    assert await count_rows(db, Feedback) == 0


async def test_partner_submits_feedback_as_its_own_organization(
    client: httpx.AsyncClient, db: Database, partner: Caller, operator: Caller
) -> None:
    customer = await shared_customer(db, partner, name="Ada", email="ada@example.com")
    given = feedback_input(gid(customer), scale="NPS", score=9, tags=[" Fast ", "fast", "KIND"])
    body = await gql(client, partner, DISTRIBUTOR_SUBMIT, {"input": given})
    payload = body["data"]["submitFeedback"]
    assert payload["userErrors"] == []
    feedback = payload["feedback"]
    assert (feedback["scale"], feedback["score"]) == ("NPS", 9)
    assert feedback["tags"] == ["fast", "kind"]
    assert (feedback["visibility"], feedback["status"]) == ("INTERNAL", "NEW")
    # The payload is projected for the partner like any query: contact details masked.
    assert feedback["customer"] == {"name": "Ada", "email": "a***@example.com", "phone": "****2671"}
    stored = await load(db, Feedback, _uuid(feedback["id"]))
    assert stored.organization_id == partner.org.id
    assert stored.status == "new"
    # The partner reads its own feedback back (the policy's "contributed by" rows).
    listed = await gql(client, partner, "{ feedback { edges { node { id text } } } }")
    assert listed["data"]["feedback"]["edges"] == [
        {"node": {"id": feedback["id"], "text": "Lovely service"}}
    ]
    # The operator sees it, attributed to the partner.
    seen = await gql(client, operator, "{ feedback { edges { node { organization { slug } } } } }")
    assert seen["data"]["feedback"]["edges"] == [
        {"node": {"organization": {"slug": "acme-distribution"}}}
    ]


async def test_partner_may_not_choose_who_else_sees_its_feedback(
    client: httpx.AsyncClient, db: Database, partner: Caller
) -> None:
    # `visibility` is not among the distributor's create fields (default.yaml): it is in
    # its input because it reads the field, so setting it is a user error, as for
    # updateCustomer (schema/audience.py, WRITE_INPUTS).
    customer = await shared_customer(db, partner)
    other = await make_caller(db, "distributor")  # another partner of the same customer
    await assign(db, customer, other.org)
    given = feedback_input(gid(customer), visibility="PARTNERS")
    body = await gql(client, partner, DISTRIBUTOR_SUBMIT, {"input": given})
    seen = await gql(client, other, "{ feedback { totalCount } }")
    shared = seen["data"]["feedback"]["totalCount"]
    assert errors_of(body, "submitFeedback") == [(["input", "visibility"], "FORBIDDEN")], (
        f"accepted: {body}; the other distributor now reads {shared} feedback"
    )
    assert body["data"]["submitFeedback"]["feedback"] is None
    assert await count_rows(db, Feedback) == 0
    assert shared == 0


async def test_submit_feedback_input_cannot_name_the_organization(
    client: httpx.AsyncClient, db: Database, partner: Caller, operator: Caller
) -> None:
    customer = await shared_customer(db, partner)
    for extra in ({"organization": "operator"}, {"organizationId": str(operator.org.id)}):
        given = {**feedback_input(gid(customer)), **extra}
        body = await gql(client, partner, PARTNER_SUBMIT, {"input": given}, expect_errors=True)
        assert codes(body) == ["BAD_USER_INPUT"]
    assert await count_rows(db, Feedback) == 0


async def test_submit_feedback_needs_the_feedback_write_scope(
    client: httpx.AsyncClient, db: Database
) -> None:
    caller = await make_caller(db, "operator", scopes=["customers:read", "feedback:read"])
    customer = await make_customer(db)
    body = await gql(
        client, caller, SUBMIT, {"input": feedback_input(gid(customer))}, expect_errors=True
    )
    # Without the scope, the mutation (and its input type) is not in the caller's schema.
    assert set(codes(body)) == {"GRAPHQL_VALIDATION_FAILED"}
    assert await count_rows(db, Feedback) == 0


# --- logInteraction -------------------------------------------------------------------


def interaction_input(customer_id: str, **overrides: Any) -> dict[str, Any]:
    return {
        "customerId": customer_id,
        "channel": "PHONE",
        "direction": "INBOUND",
        "summary": "Asked about delivery",
        **overrides,
    }


INTERACTIONS = "query($id: ID!) { customer(id: $id) { interactions { totalCount } } }"


async def test_support_logs_an_interaction_as_its_own_organization(
    client: httpx.AsyncClient, db: Database, operator: Caller
) -> None:
    support = await make_caller(db, "department", attributes={"roles": ["support"]})
    sales = await make_caller(db, "department", attributes={"roles": ["sales"]})
    customer = await make_customer(db)
    when = (datetime.now(UTC) - timedelta(days=2)).replace(microsecond=0)
    given = interaction_input(gid(customer), occurredAt=when.isoformat())
    body = await gql(client, support, LOG, {"input": given})
    payload = body["data"]["logInteraction"]
    assert payload["userErrors"] == []
    assert payload["interaction"]["summary"] == "Asked about delivery"
    assert datetime.fromisoformat(payload["interaction"]["occurredAt"]) == when
    stored = await load(db, Interaction, _uuid(payload["interaction"]["id"]))
    assert stored.organization_id == support.org.id
    # The writer and the operator read it back; another department sees its own only.
    for caller, expected in ((support, 1), (operator, 1), (sales, 0)):
        nested = await gql(client, caller, INTERACTIONS, {"id": gid(customer)})
        assert nested["data"]["customer"]["interactions"]["totalCount"] == expected


async def test_distributor_may_not_log_interactions(
    client: httpx.AsyncClient, db: Database, partner: Caller
) -> None:
    customer = await shared_customer(db, partner)
    log = """mutation($input: LogInteractionInput!) {
      logInteraction(input: $input) { userErrors { field message code } } }"""
    body = await gql(
        client, partner, log, {"input": interaction_input(gid(customer))}, expect_errors=True
    )
    assert body.get("data") is None, body
    # No rule grants it an Interaction create: logInteraction and its input are not in its
    # schema (though it reads interactions), and the access module refuses behind it.
    messages = {(e["extensions"]["code"], e["message"]) for e in body["errors"]}
    assert messages == {
        ("GRAPHQL_VALIDATION_FAILED", "Unknown type 'LogInteractionInput'."),
        ("GRAPHQL_VALIDATION_FAILED", "Cannot query field 'logInteraction' on type 'Mutation'."),
    }, body
    data = activity.InteractionInput(customer.id, "phone", "inbound", "Asked about delivery")
    async with db.transaction() as session:
        with pytest.raises(ForbiddenError) as refused:
            await activity.log_interaction(session, sharing.principal_for(partner.org), data)
    assert str(refused.value) == "your organization may not create Interaction records"
    assert await count_rows(db, Interaction) == 0


async def test_partner_log_interaction_for_an_invisible_customer_is_not_found(
    client: httpx.AsyncClient, db: Database, partner: Caller
) -> None:
    # logInteraction is not in a distributor's schema: one answer whatever the customer.
    hidden = await invisible_customers(db, partner)
    ids = [*(gid(c) for c in hidden), missing_gid(), "garbage"]
    log = """mutation($input: LogInteractionInput!) {
      logInteraction(input: $input) { userErrors { field message code } } }"""
    bodies = [
        await gql(client, partner, log, {"input": interaction_input(i)}, expect_errors=True)
        for i in ids
    ]
    assert all(b == bodies[0] for b in bodies)
    assert set(codes(bodies[0])) == {"GRAPHQL_VALIDATION_FAILED"}
    # Behind the schema the customer is checked first: a partner learns nothing about the
    # write rule (or whether a customer exists) from a customer it does not see.
    principal = sharing.principal_for(partner.org)
    for customer_id in [*(c.id for c in hidden), uuid.uuid4()]:
        data = activity.InteractionInput(customer_id, "phone", "inbound", "Asked about delivery")
        async with db.transaction() as session:
            with pytest.raises(NotFoundError):
                await activity.log_interaction(session, principal, data)
    assert await count_rows(db, Interaction) == 0


@pytest.mark.parametrize(
    ("overrides", "field", "code"),
    [
        (
            {"occurredAt": (datetime.now(UTC) + timedelta(days=1)).isoformat()},
            "occurredAt",
            "OUT_OF_RANGE",
        ),
        ({"occurredAt": "2024-01-01T10:00:00"}, "occurredAt", "INVALID"),
        ({"summary": ""}, "summary", "REQUIRED"),
        ({"summary": "s" * 2001}, "summary", "TOO_LONG"),
    ],
)
async def test_log_interaction_refuses_invalid_input(
    client: httpx.AsyncClient,
    db: Database,
    operator: Caller,
    overrides: dict[str, Any],
    field: str,
    code: str,
) -> None:
    customer = await make_customer(db)
    body = await gql(
        client, operator, LOG, {"input": interaction_input(gid(customer), **overrides)}
    )
    assert errors_of(body, "logInteraction") == [(["input", field], code)]
    assert await count_rows(db, Interaction) == 0


# --- reportPurchase -------------------------------------------------------------------


def purchase_input(customer_id: str, **overrides: Any) -> dict[str, Any]:
    return {
        "customerId": customer_id,
        "sku": "SKU-1",
        "quantity": 2,
        "amount": "49.90",
        "currency": "EUR",
        **overrides,
    }


async def test_operator_reports_a_purchase(
    client: httpx.AsyncClient, db: Database, operator: Caller
) -> None:
    customer = await make_customer(db)
    given = purchase_input(gid(customer), amount="19.999", currency=" eur ")
    body = await gql(client, operator, REPORT, {"input": given})
    purchase = body["data"]["reportPurchase"]["purchase"]
    assert (purchase["amount"], purchase["currency"], purchase["quantity"]) == ("20.00", "EUR", 2)
    stored = await load(db, Purchase, _uuid(purchase["id"]))
    assert (stored.amount, stored.organization_id) == (Decimal("20.00"), operator.org.id)


async def test_partner_report_purchase_is_not_in_its_schema(
    client: httpx.AsyncClient, db: Database, partner: Caller
) -> None:
    customer = await shared_customer(db, partner)
    # No rule lets a distributor see or set a purchase: reportPurchase and its input type
    # are unknown to it, exactly like names that exist nowhere (DESIGN §5).
    report = """mutation($input: ReportPurchaseInput!) {
      reportPurchase(input: $input) { userErrors { field message code } } }"""
    names = {"reportPurchase": "z" * 14, "ReportPurchaseInput": "Q" + "q" * 18}
    unknown = report
    for name, stand_in in names.items():
        unknown = unknown.replace(name, stand_in)
    variables = {"input": purchase_input(gid(customer))}
    body = await gql(client, partner, report, variables, expect_errors=True)
    assert set(codes(body)) == {"GRAPHQL_VALIDATION_FAILED"}, body
    assert "data" not in body
    nowhere = await gql(client, partner, unknown, variables, expect_errors=True)
    assert body == renamed(nowhere, {v: k for k, v in names.items()})
    assert await count_rows(db, Purchase) == 0


@pytest.mark.parametrize(
    ("overrides", "problems"),
    [
        ({"amount": "-1"}, [("amount", "OUT_OF_RANGE")]),
        ({"amount": "1000000000000"}, [("amount", "OUT_OF_RANGE")]),
        ({"currency": "EURO"}, [("currency", "INVALID_CURRENCY")]),
        ({"currency": "E1R"}, [("currency", "INVALID_CURRENCY")]),
        ({"quantity": 0}, [("quantity", "OUT_OF_RANGE")]),
        ({"quantity": -3}, [("quantity", "OUT_OF_RANGE")]),
        ({"quantity": 1_000_001}, [("quantity", "OUT_OF_RANGE")]),
        ({"sku": " "}, [("sku", "REQUIRED")]),
        ({"sku": "s" * 65}, [("sku", "TOO_LONG")]),
        (
            {"purchasedAt": (datetime.now(UTC) + timedelta(hours=1)).isoformat()},
            [("purchasedAt", "OUT_OF_RANGE")],
        ),
        (
            {"amount": "-1", "currency": "EURO", "quantity": 0},
            [
                ("quantity", "OUT_OF_RANGE"),
                ("amount", "OUT_OF_RANGE"),
                ("currency", "INVALID_CURRENCY"),
            ],
        ),
    ],
)
async def test_report_purchase_refuses_invalid_input(
    client: httpx.AsyncClient,
    db: Database,
    operator: Caller,
    overrides: dict[str, Any],
    problems: list[tuple[str, str]],
) -> None:
    customer = await make_customer(db)
    body = await gql(
        client, operator, REPORT, {"input": purchase_input(gid(customer), **overrides)}
    )
    assert body["data"]["reportPurchase"]["purchase"] is None
    assert sorted(errors_of(body, "reportPurchase")) == sorted(
        (["input", field], code) for field, code in problems
    )
    assert await count_rows(db, Purchase) == 0


async def test_purchase_slightly_in_the_future_is_tolerated(
    client: httpx.AsyncClient, db: Database, operator: Caller
) -> None:
    customer = await make_customer(db)
    soon = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
    body = await gql(
        client, operator, REPORT, {"input": purchase_input(gid(customer), purchasedAt=soon)}
    )
    assert body["data"]["reportPurchase"]["userErrors"] == []
    assert await count_rows(db, Purchase) == 1


# --- payloads read back through the writer's scoped select ----------------------------

# The default policy with distributors reading only the feedback shared with partners (not
# what they contributed themselves): a distributor then writes feedback it cannot read.
SHARED_FEEDBACK_ONLY = """        - or:
            - visibility: {eq: partners}
            - organization: {eq: $subject.org}
"""


async def all_rows(db: Database, model: type[Any]) -> list[Any]:
    async with db.session() as session:
        return list((await session.execute(select(model))).scalars())


async def test_payload_of_a_row_the_writer_may_not_read_is_its_id_only(
    client: httpx.AsyncClient,
    db: Database,
    partner: Caller,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    source = sharing.default_source()
    assert source.count(SHARED_FEEDBACK_ONLY) == 1
    source = source.replace(SHARED_FEEDBACK_ONLY, "        - visibility: {eq: partners}\n")
    monkeypatch.setattr(access, "rules", access.rules)  # restored after the test
    async with db.transaction() as session:
        version = await sharing.publish(session, source, author="tests", reason="write-only")
    access.rules = sharing.rules_for(version, settings.master_key)

    customer = await shared_customer(db, partner, name="Ada")
    body = await gql(client, partner, DISTRIBUTOR_SUBMIT, {"input": feedback_input(gid(customer))})
    [stored] = await all_rows(db, Feedback)
    assert stored.organization_id == partner.org.id
    assert body["data"]["submitFeedback"] == {
        "feedback": {
            "id": to_global_id("Feedback", stored.id),
            "text": None,
            "scale": None,
            "score": None,
            "visibility": None,
            "tags": None,
            "status": None,
            "customer": None,
        },
        "userErrors": [],
    }
    # ...exactly as much as a query shows it: nothing.
    listed = await gql(client, partner, "{ feedback { totalCount } }")
    assert listed["data"]["feedback"]["totalCount"] == 0


async def test_a_write_only_token_is_not_offered_a_write_it_cannot_make(
    client: httpx.AsyncClient, db: Database
) -> None:
    # customers:write without customers:read: createCustomer is in the caller's schema
    # (the Customer type is not, so its payload offers userErrors only). Either the write
    # succeeds and its payload shows what the writer may read (read_back: "a row the writer
    # may not read shows its id only"), or the mutation is not offered at all; never a
    # mutation that validates, does the work, and is then refused for a missing read scope.
    writer = await make_caller(db, "operator", scopes=["customers:write"])
    create = """mutation($input: CustomerInput!) {
      createCustomer(input: $input) { userErrors { field message code } } }"""
    body = await gql(client, writer, create, {"input": {"name": "Ada"}}, expect_errors=True)
    written = [c.name for c in await all_rows(db, Customer)]
    absent = {
        "errors": [
            {
                "message": "Cannot query field 'createCustomer' on type 'Mutation'.",
                "locations": [{"line": 2, "column": 7}],
                "extensions": {"code": "GRAPHQL_VALIDATION_FAILED"},
            }
        ]
    }
    assert (body, written) in (
        ({"data": {"createCustomer": {"userErrors": []}}}, ["Ada"]),
        (absent, []),
    ), (body, written)
