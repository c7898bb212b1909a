"""Acceptance: the raw database holds no email or phone in clear (issue 5, point 6).

Customers are created through the GraphQL API and by the demo seeding; the test then
reads the tables directly with SQL, past the ORM's decryption. Also here: masks still
work on the decrypted values, and a policy cannot compare encrypted fields in SQL.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text

from hub.access.catalog import CATALOG
from hub.db import Database
from hub.demo import seed_demo
from hub.models import Customer, metadata
from hub.sharing import check_source
from hub.vault import email_index, phone_index, vault
from policies import Catalog, CatalogError
from tests.conftest import Caller, gql, make_caller
from tests.hub.factories import assign, make_customer

SEALED = re.compile(r"^([0-9a-f]{16})\.[A-Za-z0-9_-]+={0,2}$")
INDEX = re.compile(r"^[0-9a-f]{64}$")

CREATE = """mutation($input: CustomerInput!) {
  createCustomer(input: $input) {
    customer { id email phone } userErrors { field message code } } }"""
READ = "query($id: ID!) { customer(id: $id) { id email phone } }"

PEOPLE = [
    # (input email, input phone, country, stored email, stored phone, digits to look for)
    ("Ada.Lovelace@Example.com", "+1 (415) 555-2671", None, "Ada.Lovelace@example.com",
     "+14155552671", "4155552671"),
    ("  grace.hopper@navy.example ", "030 12345678", "DE", "grace.hopper@navy.example",
     "+493012345678", "3012345678"),
    ("alan@turing.example", "06 12 34 56 78", "FR", "alan@turing.example",
     "+33612345678", "612345678"),
]  # fmt: skip


async def every_stored_text(db: Database) -> list[str]:
    """Every cell of every table, as text, read with plain SQL (no type decoding)."""
    cells: list[str] = []
    async with db.session() as session:
        for table in metadata.sorted_tables:
            statement = text(f"SELECT * FROM {table.name}")  # noqa: S608 — our own tables
            rows = (await session.execute(statement)).all()
            cells += [str(value) for row in rows for value in row if value is not None]
    return cells


def assert_not_in_clear(cells: list[str], email: str, phone_digits: str) -> None:
    local = email.split("@")[0].strip().casefold()
    for cell in cells:
        folded = cell.casefold()
        assert local not in folded, f"the email's local part {local!r} is stored in {cell!r}"
        digits = re.sub(r"\D", "", cell)
        assert phone_digits not in digits, f"the phone {phone_digits} is stored in {cell!r}"


async def raw_contacts(db: Database) -> list[tuple[Any, ...]]:
    async with db.session() as session:
        statement = text("SELECT email, phone, email_index, phone_index FROM customer")
        return [tuple(row) for row in (await session.execute(statement)).all()]


@pytest.fixture
async def operator(db: Database) -> Caller:
    return await make_caller(db, "operator", slug="operator")


async def test_customers_created_through_the_api_are_stored_sealed(
    client: httpx.AsyncClient, db: Database, operator: Caller
) -> None:
    ids = []
    for email, phone, country, stored_email, stored_phone, _ in PEOPLE:
        given: dict[str, Any] = {"name": "Someone", "email": email, "phone": phone}
        if country:
            given["country"] = country
        body = await gql(client, operator, CREATE, {"input": given})
        payload = body["data"]["createCustomer"]
        assert payload["userErrors"] == []
        assert (payload["customer"]["email"], payload["customer"]["phone"]) == (
            stored_email,
            stored_phone,
        )
        ids.append(payload["customer"]["id"])

    rows = await raw_contacts(db)
    assert len(rows) == len(PEOPLE)
    for raw_email, raw_phone, raw_email_index, raw_phone_index in rows:
        assert SEALED.match(raw_email) and SEALED.match(raw_phone)
        assert SEALED.match(raw_email)[1] == vault.active  # type: ignore[index]
        assert INDEX.match(raw_email_index) and INDEX.match(raw_phone_index)
    assert {r[2] for r in rows} == {email_index(p[3]) for p in PEOPLE}
    assert {r[3] for r in rows} == {phone_index(p[4]) for p in PEOPLE}

    cells = await every_stored_text(db)
    for _, _, _, stored_email, _, digits in PEOPLE:
        assert_not_in_clear(cells, stored_email, digits)

    # The operator still reads the clear values.
    for customer_id, (_, _, _, stored_email, stored_phone, _) in zip(ids, PEOPLE, strict=True):
        found = (await gql(client, operator, READ, {"id": customer_id}))["data"]["customer"]
        assert (found["email"], found["phone"]) == (stored_email, stored_phone)


async def test_demo_customers_are_stored_sealed(db: Database) -> None:
    async with db.transaction() as session:
        await seed_demo(session, customers=30)
    async with db.session() as session:
        clear = list((await session.execute(select(Customer))).scalars())
    contacts = [(c.email, c.phone) for c in clear if c.email and c.phone]
    assert len(contacts) >= 10

    rows = await raw_contacts(db)
    for raw in rows:
        for value in raw[:2]:
            assert value is None or SEALED.match(value), value
    by_index = {c.email_index: c for c in clear if c.email}
    for c in by_index.values():
        assert c.email_index == email_index(c.email)
        assert c.phone is None or c.phone_index == phone_index(c.phone)

    cells = await every_stored_text(db)
    for email, phone in contacts:
        assert_not_in_clear(cells, email, re.sub(r"\D", "", phone)[-9:])


async def test_masks_apply_to_the_decrypted_values(client: httpx.AsyncClient, db: Database) -> None:
    distributor = await make_caller(db, "distributor", slug="acme-distribution")
    customer = await make_customer(
        db,
        email="Ada.Lovelace@example.com",
        phone="+14155552671",
        consent_share_with_partners=True,
    )
    await assign(db, customer, distributor.org)
    body = await gql(client, distributor, "{ customers { edges { node { email phone } } } }")
    nodes = [edge["node"] for edge in body["data"]["customers"]["edges"]]
    assert nodes == [{"email": "A***@example.com", "phone": "****2671"}]


# --- policies cannot compare encrypted fields ---------------------------------------------

_CUSTOMER_RULE = """rules:
  - name: r
    subjects: [{{kind: distributor}}]
    resource: {resource}
    rows: {{{path}: {{{op}: {value}}}}}
    read: {{visible: [id]}}
"""


@pytest.mark.parametrize(
    ("resource", "path", "op", "value"),
    [
        ("Customer", "email", "eq", '"ada@example.org"'),
        ("Customer", "email", "ne", '"ada@example.org"'),
        ("Customer", "phone", "in", '["+14155552671"]'),
        ("Customer", "phone", "nin", '["+14155552671"]'),
        ("Customer", "email", "gt", '"a"'),
        ("Customer", "email", "eq", "$subject.org"),
        ("Feedback", "customer.email", "eq", '"ada@example.org"'),
        ("CustomerPartner", "customer.phone", "lte", '"+1"'),
    ],
)
def test_a_condition_comparing_an_encrypted_field_is_refused(
    resource: str, path: str, op: str, value: str
) -> None:
    source = _CUSTOMER_RULE.format(resource=resource, path=path, op=op, value=value)
    document, problems = check_source(source)
    assert document is None
    assert [(p.line, p.message) for p in problems] == [
        (
            5,
            f"'{op}' on '{path}': the field is encrypted at rest; "
            "only is_null can be evaluated on it",
        )
    ]


def test_is_null_on_an_encrypted_field_is_allowed() -> None:
    source = _CUSTOMER_RULE.format(
        resource="Feedback", path="customer.email", op="is_null", value="false"
    )
    document, problems = check_source(source)
    assert problems == [] and document is not None


def test_write_checks_and_guardrails_are_held_to_the_same_rule() -> None:
    source = """rules:
  - name: w
    subjects: [{kind: distributor}]
    resource: Customer
    read: {visible: [id]}
    write: {fields: [name], check: {phone: {eq: "+1"}}}
guardrails:
  - name: g
    subjects: [{kind: distributor}]
    resource: Customer
    rows: {email: {ne: "x"}}
    hidden: [traits]
"""
    _, problems = check_source(source)
    assert [(p.line, "phone" in p.message or "email" in p.message) for p in problems] == [
        (6, True),
        (11, True),
    ]


def test_the_catalog_marks_exactly_the_encrypted_columns() -> None:
    assert dict(CATALOG.resources["Customer"].opaque) == {
        "email": "encrypted at rest",
        "phone": "encrypted at rest",
    }
    assert CATALOG.opaque_reason("Feedback", "customer.phone") == "encrypted at rest"
    assert CATALOG.opaque_reason("Customer", "name") is None
    assert CATALOG.opaque_reason("Customer", "assignments.customer.email") == "encrypted at rest"
    assert CATALOG.opaque_reason("Customer", "nosuch.email") is None


def test_an_opaque_field_must_be_a_field() -> None:
    with pytest.raises(CatalogError, match="opaque fields"):
        Catalog.from_dict({"Customer": {"fields": {"id": "uuid"}, "opaque": {"email": "x"}}})
