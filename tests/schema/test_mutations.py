"""Mutations: validated input with user errors naming the field, nothing half-written,
optimistic concurrency, write checks with presets, and projected payloads."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from hub.db import Database
from hub.models import Customer, Feedback, Interaction, Purchase
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


def errors_of(body: dict[str, Any], mutation: str) -> list[tuple[list[str], str]]:
    return [(e["field"], e["code"]) for e in body["data"][mutation]["userErrors"]]


def codes(body: dict[str, Any]) -> list[str]:
    return [e["extensions"]["code"] for e in body["errors"]]


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


@pytest.mark.parametrize("kind", ["operator", "department"])
async def test_staff_payload_shows_everything_partner_query_hides_it(
    client: httpx.AsyncClient, db: Database, partner: Caller, kind: str
) -> None:
    staff = await make_caller(db, kind)
    given = {
        "name": "Ada",
        "email": "ada@example.com",
        "phone": "+14155552671",
        "lifetimeValue": "10.00",
        "traits": {"vip": True},
    }
    body = await gql(client, staff, CREATE, {"input": given})
    created = body["data"]["createCustomer"]["customer"]
    assert (created["email"], created["phone"], created["lifetimeValue"], created["traits"]) == (
        "ada@example.com",
        "+14155552671",
        "10.00",
        {"vip": True},
    )
    customer = await load(db, Customer, _uuid(created["id"]))
    await assign(db, customer, partner.org)
    seen = await gql(
        client,
        partner,
        "query($id: ID!) { customer(id: $id) { name email phone lifetimeValue traits } }",
        {"id": created["id"]},
    )
    assert seen["data"]["customer"] == {
        "name": "Ada",
        "email": None,
        "phone": None,
        "lifetimeValue": None,
        "traits": None,
    }


async def test_partner_cannot_create_customers(
    client: httpx.AsyncClient, db: Database, partner: Caller
) -> None:
    body = await gql(client, partner, CREATE, {"input": {"name": "Eve"}}, expect_errors=True)
    assert codes(body) == ["FORBIDDEN"]
    assert body["data"] is None
    assert await count_rows(db, Customer) == 0


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


async def test_partner_update_customer_is_forbidden(
    client: httpx.AsyncClient, db: Database, partner: Caller
) -> None:
    customer = await make_customer(db, name="Ada")
    await assign(db, customer, partner.org)
    body = await gql(
        client,
        partner,
        UPDATE,
        {"id": gid(customer), "version": 1, "patch": {"name": "Hijacked"}},
        expect_errors=True,
    )
    assert codes(body) == ["FORBIDDEN"]
    stored = await load(db, Customer, customer.id)
    assert (stored.version, stored.name) == (1, "Ada")


async def test_update_of_an_invisible_customer_answers_like_a_missing_one(
    client: httpx.AsyncClient, db: Database, partner: Caller
) -> None:
    hidden = await make_customer(db, name="Ada")
    bodies = [
        await gql(client, partner, UPDATE, {"id": i, "version": 1, "patch": {"name": "X"}})
        for i in (gid(hidden), missing_gid(), "garbage")
    ]
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
    assert bodies == [expected] * 3
    assert (await load(db, Customer, hidden.id)).name == "Ada"


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
    unassigned = await make_customer(db)
    ids = [missing_gid(), "garbage", missing_gid("Feedback")]
    if who == "partner":
        ids.append(gid(unassigned))
    bodies = [await gql(client, caller, SUBMIT, {"input": feedback_input(i)}) for i in ids]
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
    customer = await make_customer(db, name="Ada")
    await assign(db, customer, partner.org)
    given = feedback_input(
        gid(customer), scale="NPS", score=9, visibility="PARTNERS", tags=[" Fast ", "fast", "KIND"]
    )
    body = await gql(client, partner, SUBMIT, {"input": given})
    feedback = body["data"]["submitFeedback"]["feedback"]
    assert feedback["organization"] == {"slug": "acme-distribution"}
    assert feedback["tags"] == ["fast", "kind"]
    assert feedback["visibility"] == "PARTNERS"
    # The payload is projected for the partner like any query.
    assert feedback["customer"] == {
        "name": "Ada",
        "email": None,
        "phone": None,
        "lifetimeValue": None,
        "traits": None,
    }
    stored = await load(db, Feedback, _uuid(feedback["id"]))
    assert stored.organization_id == partner.org.id
    assert stored.status == "new"
    # The operator sees it, attributed to the partner.
    seen = await gql(client, operator, "{ feedback { edges { node { organization { slug } } } } }")
    assert seen["data"]["feedback"]["edges"] == [
        {"node": {"organization": {"slug": "acme-distribution"}}}
    ]


async def test_submit_feedback_input_cannot_name_the_organization(
    client: httpx.AsyncClient, db: Database, partner: Caller, operator: Caller
) -> None:
    customer = await make_customer(db)
    await assign(db, customer, partner.org)
    for extra in ({"organization": "operator"}, {"organizationId": str(operator.org.id)}):
        given = {**feedback_input(gid(customer)), **extra}
        body = await gql(client, partner, SUBMIT, {"input": given}, expect_errors=True)
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
    assert codes(body) == ["FORBIDDEN"]
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


async def test_partner_logs_an_interaction_for_an_assigned_customer(
    client: httpx.AsyncClient, db: Database, partner: Caller
) -> None:
    customer = await make_customer(db)
    await assign(db, customer, partner.org)
    when = (datetime.now(UTC) - timedelta(days=2)).replace(microsecond=0)
    given = interaction_input(gid(customer), occurredAt=when.isoformat())
    body = await gql(client, partner, LOG, {"input": given})
    payload = body["data"]["logInteraction"]
    assert payload["userErrors"] == []
    assert payload["interaction"]["summary"] == "Asked about delivery"
    assert datetime.fromisoformat(payload["interaction"]["occurredAt"]) == when
    stored = await load(db, Interaction, _uuid(payload["interaction"]["id"]))
    assert stored.organization_id == partner.org.id
    nested = await gql(
        client,
        partner,
        "query($id: ID!) { customer(id: $id) { interactions { totalCount } } }",
        {"id": gid(customer)},
    )
    assert nested["data"]["customer"]["interactions"]["totalCount"] == 1


async def test_partner_log_interaction_for_unassigned_customer_is_not_found(
    client: httpx.AsyncClient, db: Database, partner: Caller
) -> None:
    customer = await make_customer(db)
    bodies = [
        await gql(client, partner, LOG, {"input": interaction_input(i)})
        for i in (gid(customer), missing_gid(), "garbage")
    ]
    assert [errors_of(b, "logInteraction") for b in bodies] == [
        [(["input", "customerId"], "NOT_FOUND")]
    ] * 3
    assert bodies[0] == bodies[1] == bodies[2]
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


async def test_partner_report_purchase_is_forbidden(
    client: httpx.AsyncClient, db: Database, partner: Caller
) -> None:
    customer = await make_customer(db)
    await assign(db, customer, partner.org)
    body = await gql(
        client, partner, REPORT, {"input": purchase_input(gid(customer))}, expect_errors=True
    )
    assert codes(body) == ["FORBIDDEN"]
    assert body["data"] is None
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
