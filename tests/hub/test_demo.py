"""The demo seeder: realistic, valid, related and deterministic data (hub/demo.py)."""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import phonenumbers
import pytest
from email_validator import validate_email
from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlmodel import col, select

from hub.db import Database, make_engine, make_sessionmaker
from hub.demo import NOW, DemoAlreadySeededError, DemoCredential, seed_demo
from hub.migrate import upgrade_sync
from hub.models import (
    Client,
    Customer,
    CustomerPartner,
    ExternalRef,
    Feedback,
    Interaction,
    Organization,
    ProposedChange,
    Purchase,
)
from hub.models.activity import CHANNELS, DIRECTIONS, FEEDBACK_KINDS, FEEDBACK_STATUSES, SCALES
from hub.models.customer import LIFECYCLE_STAGES, SEGMENTS
from hub.oauth.clients import hash_secret
from hub.provenance import Precedence
from hub.vault import ensure_data_key, load_data_keys
from tests.conftest import Caller, gql

pytestmark = pytest.mark.db

CUSTOMERS = 200
MASTER_KEY = b"demo-test-master-key-" + b"k" * 16


@dataclass
class Seeded:
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    credentials: list[DemoCredential]
    messages: list[str]


async def make_database(path: Path) -> tuple[AsyncEngine, async_sessionmaker[AsyncSession]]:
    url = f"sqlite+aiosqlite:///{path}"
    # Alembic's env.py runs its own event loop: keep it off ours.
    await asyncio.to_thread(upgrade_sync, url)
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    async with sessions() as session, session.begin():
        await ensure_data_key(session, MASTER_KEY)
    return engine, sessions


async def use_keys(sessions: async_sessionmaker[AsyncSession]) -> None:
    """Put this database's data keys in force: the vault is one per process, and other
    tests load their own databases' keys into it."""
    async with sessions() as session:
        await load_data_keys(session, MASTER_KEY)


async def seed(path: Path, *, customers: int = CUSTOMERS, seed: int = 7) -> Seeded:
    engine, sessions = await make_database(path)
    await use_keys(sessions)
    messages: list[str] = []
    async with sessions() as session, session.begin():
        credentials = await seed_demo(
            session, customers=customers, seed=seed, progress=messages.append
        )
    return Seeded(engine, sessions, credentials, messages)


async def all_rows(seeded: Seeded, model: type[Any]) -> list[Any]:
    await use_keys(seeded.sessions)
    async with seeded.sessions() as session:
        return list((await session.execute(select(model))).scalars())


@pytest.fixture(scope="module")
async def demo(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Seeded]:
    seeded = await seed(tmp_path_factory.mktemp("demo") / "demo.db")
    yield seeded
    await seeded.engine.dispose()


async def test_organizations_of_every_kind(demo: Seeded) -> None:
    orgs = await all_rows(demo, Organization)
    kinds = Counter(org.kind for org in orgs)

    assert kinds["operator"] == 1
    assert kinds["department"] == 4
    assert kinds["supplier"] >= 2
    assert kinds["vendor"] == 1
    assert kinds["distributor"] >= 3
    slugs = {org.slug for org in orgs}
    # The operator's slug is hub init's, so the README's `--org operator` works on the demo.
    assert {"operator", "sales", "marketing", "support", "technical-support"} <= slugs
    for org in orgs:
        if org.kind in {"supplier", "vendor", "distributor"}:
            assert org.attributes["regions"], org.slug


async def test_credentials_for_every_org_match_the_stored_clients(demo: Seeded) -> None:
    orgs = {org.id: org for org in await all_rows(demo, Organization)}
    clients = {client.client_id: client for client in await all_rows(demo, Client)}

    assert {c.org for c in demo.credentials} == {org.slug for org in orgs.values()}
    # One client per organization, and the operator's administration client.
    assert len(clients) == len(orgs) + 1 == len(demo.credentials)
    data_scopes = {"customers:read", "customers:write", "feedback:read", "feedback:write"}
    for credential in demo.credentials:
        client = clients[credential.client_id]
        org = orgs[client.organization_id]
        assert (org.slug, org.kind) == (credential.org, credential.kind)
        assert client.secret_hash == hash_secret(credential.client_secret)
        assert client.scopes == credential.scopes
        expected = data_scopes | {"hub:admin"} if credential.role == "admin" else data_scopes
        assert set(credential.scopes) == expected
    *members, admin = demo.credentials
    assert [c.role for c in members] == [None] * len(orgs)
    assert (admin.org, admin.kind, admin.role) == ("operator", "operator", "admin")
    # The admin entry is marked in the credentials file; the others carry no role.
    assert admin.as_json()["role"] == "admin"
    assert all("role" not in c.as_json() for c in members)


async def test_customers_are_valid_and_varied(demo: Seeded) -> None:
    customers = await all_rows(demo, Customer)

    assert len(customers) == CUSTOMERS
    assert {c.kind for c in customers} == {"person", "company"}
    assert len({c.country for c in customers}) >= 10
    assert {c.region for c in customers} == {"NA", "EMEA", "LATAM", "APAC"}
    assert len({c.name.split()[-1] for c in customers if c.kind == "person"}) >= 50
    for c in customers:
        if c.email is not None:
            validate_email(c.email, check_deliverability=False)
            assert c.email == c.email.lower()
            assert c.email.rsplit("@", 1)[1] in {"example.com", "example.org", "example.net"}
        if c.phone is not None:
            number = phonenumbers.parse(c.phone)
            assert phonenumbers.is_valid_number(number), c.phone
            assert phonenumbers.region_code_for_number(number) == c.country, c.phone
            assert phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164) == (
                c.phone
            )
        assert c.segment in SEGMENTS
        assert c.lifecycle_stage in LIFECYCLE_STAGES
        assert c.lifetime_value is not None
        assert c.lifetime_value == c.lifetime_value.quantize(Decimal("0.01"))
        assert c.version == 1
        assert NOW.replace(year=NOW.year - 2) <= c.created_at <= c.updated_at <= NOW
        assert (c.consent_given_at is not None) == (
            c.consent_share_with_partners or c.consent_marketing_opt_in
        )
        assert c.traits["preferred_language"]
    emails = [c.email for c in customers if c.email]
    assert len(emails) == len(set(emails))
    shared = sum(c.consent_share_with_partners for c in customers) / len(customers)
    opted_in = sum(c.consent_marketing_opt_in for c in customers) / len(customers)
    assert 0.55 < shared < 0.85
    assert 0.35 < opted_in < 0.65


async def test_relations_are_present_and_plausible(demo: Seeded) -> None:
    orgs = {org.id: org for org in await all_rows(demo, Organization)}
    customers = {c.id: c for c in await all_rows(demo, Customer)}
    links = await all_rows(demo, CustomerPartner)
    interactions = await all_rows(demo, Interaction)
    purchases = await all_rows(demo, Purchase)
    refs = await all_rows(demo, ExternalRef)

    assigned: defaultdict[Any, set[Any]] = defaultdict(set)
    for link in links:
        assigned[link.customer_id].add(link.organization_id)
        org = orgs[link.organization_id]
        assert org.kind in {"supplier", "vendor", "distributor"}
        if org.kind == "distributor":
            assert link.role == "reseller"
            assert customers[link.customer_id].region in org.attributes["regions"]
    assert all(len(partners) <= 2 for partners in assigned.values())
    assert len(assigned) > CUSTOMERS / 2
    assert Counter(orgs[link.organization_id].kind for link in links).most_common(1)[0][0] == (
        "distributor"
    )
    assert 2.0 <= len(interactions) / CUSTOMERS <= 4.0
    assert 1.4 <= len(purchases) / CUSTOMERS <= 2.6
    assert refs
    assert all(ref.source == "legacy-crm" and ref.external_id.startswith("LC-") for ref in refs)

    departments = {oid for oid, org in orgs.items() if org.kind == "department"}
    for row in interactions:
        assert row.channel in CHANNELS
        assert row.direction in DIRECTIONS
        assert row.organization_id in departments | assigned[row.customer_id]
        assert customers[row.customer_id].created_at <= row.occurred_at <= NOW
    currencies: defaultdict[Any, set[str]] = defaultdict(set)
    for row in purchases:
        org = orgs[row.organization_id]
        assert org.kind == "operator" or row.organization_id in assigned[row.customer_id]
        assert row.quantity >= 1
        assert row.amount > 0
        currencies[row.customer_id].add(row.currency)
    assert all(len(codes) == 1 for codes in currencies.values())
    for customer_id, codes in currencies.items():
        if customers[customer_id].country == "US":
            assert codes == {"USD"}


async def test_feedback_scores_fit_their_scales(demo: Seeded) -> None:
    orgs = {org.id: org for org in await all_rows(demo, Organization)}
    links = await all_rows(demo, CustomerPartner)
    feedback = await all_rows(demo, Feedback)
    assigned = {(link.customer_id, link.organization_id) for link in links}

    assert 1.4 <= len(feedback) / CUSTOMERS <= 2.6
    assert len({row.text for row in feedback}) > len(feedback) / 2
    assert {row.scale for row in feedback} == {"csat", "nps", None}
    for row in feedback:
        assert row.kind in FEEDBACK_KINDS
        assert row.status in FEEDBACK_STATUSES
        assert row.visibility in {"internal", "partners"}
        assert row.channel in CHANNELS
        assert row.tags
        assert row.product
        assert row.text
        if row.scale is None:
            assert row.score is None
        else:
            low, high = SCALES[row.scale]
            assert low <= row.score <= high
        org = orgs[row.organization_id]
        assert org.kind == "department" or (row.customer_id, org.id) in assigned


async def test_progress_is_reported(demo: Seeded) -> None:
    assert demo.messages[-1] == f"customers: {CUSTOMERS}/{CUSTOMERS}"
    assert len(demo.messages) >= 3


async def test_the_same_seed_gives_the_same_data(tmp_path: Path) -> None:
    first = await seed(tmp_path / "one.db", customers=50, seed=11)
    second = await seed(tmp_path / "two.db", customers=50, seed=11)
    other = await seed(tmp_path / "three.db", customers=50, seed=12)

    async def snapshot(seeded: Seeded) -> list[tuple[Any, ...]]:
        await use_keys(seeded.sessions)
        async with seeded.sessions() as session:
            customers = await session.execute(
                select(Customer.id, Customer.name, Customer.email, Customer.phone).order_by(
                    col(Customer.id)
                )
            )
            feedback = await session.execute(
                select(Feedback.id, Feedback.text, Feedback.score).order_by(col(Feedback.id))
            )
            return [tuple(row) for row in [*customers, *feedback]]

    try:
        assert await snapshot(first) == await snapshot(second)
        assert await snapshot(first) != await snapshot(other)
        secrets = {c.client_secret for c in first.credentials + second.credentials}
        assert len(secrets) == 2 * len(first.credentials)
    finally:
        for seeded in (first, second, other):
            await seeded.engine.dispose()


class AbortError(Exception):
    pass


async def test_seeding_commits_nothing_itself(tmp_path: Path) -> None:
    engine, sessions = await make_database(tmp_path / "rollback.db")
    try:

        async def seed_then_fail() -> None:
            async with sessions() as session, session.begin():
                await seed_demo(session, customers=5)
                raise AbortError

        with pytest.raises(AbortError):
            await seed_then_fail()
        async with sessions() as session:
            for model in (Organization, Client, Customer):
                count = await session.execute(select(func.count()).select_from(model))
                assert count.scalar_one() == 0, model.__name__
    finally:
        await engine.dispose()


async def test_a_seeded_database_is_refused(tmp_path: Path) -> None:
    seeded = await seed(tmp_path / "twice.db", customers=1)
    try:
        async with seeded.sessions() as session, session.begin():
            with pytest.raises(DemoAlreadySeededError, match="empty database"):
                await seed_demo(session, customers=1)
    finally:
        await seeded.engine.dispose()


async def test_seeded_fields_are_the_operators(demo: Seeded) -> None:
    customers = await all_rows(demo, Customer)
    stamped = {"name", "email", "phone", "country", "city", "lifecycle_stage", "traits"}

    for customer in customers:
        assert stamped - {n for n in stamped if getattr(customer, n) is None} <= set(
            customer.provenance
        )
        for name, stamp in customer.provenance.items():
            assert getattr(customer, name) is not None, name
            assert (stamp["organization"], stamp["kind"], stamp["client"]) == (
                "operator",
                "operator",
                None,
            )
            migrated = customer.created_at <= NOW - timedelta(days=365)
            assert stamp["source"] == ("legacy-crm" if migrated else None)
            assert datetime.fromisoformat(stamp["at"]) == customer.created_at
        # Operator-tier: a department's or a partner's word does not overwrite it.
        seeded = customer.provenance["name"]
        order = Precedence()
        assert order.rank("name", seeded) == order.rank("name", {"kind": "operator"}) == 0
        assert not order.overrides("name", {"organization": "sales", "kind": "department"}, seeded)
        assert order.overrides("name", {"organization": "operator", "kind": "operator"}, seeded)
    assert {c.provenance["name"]["source"] for c in customers} == {"legacy-crm", None}


UPSERT = """
mutation($input: CustomerInput!) {
  upsertCustomer(input: $input) {
    customer { id name version }
    outcome
    matchedBy
    proposedChanges { field status }
    userErrors { field message code }
  }
}"""
QUEUE = """
query($customer: ID) {
  proposedChanges(customerId: $customer, status: "pending") {
    field value currentValue organization status
  }
}"""


async def test_a_departments_upsert_of_a_seeded_name_is_queued(
    db: Database, client: httpx.AsyncClient
) -> None:
    async with db.transaction() as session:
        credentials = await seed_demo(session, customers=20, seed=3)
    async with db.session() as session:
        customers = (await session.execute(select(Customer))).scalars().all()
        orgs = {o.slug: o for o in (await session.execute(select(Organization))).scalars()}
    target = next(c for c in customers if c.kind == "person" and c.email)
    sales = next(c for c in credentials if c.org == "sales")
    caller = Caller(orgs["sales"], sales.client_id, sales.client_secret)
    admin = next(c for c in credentials if c.role == "admin")
    administrator = Caller(orgs["operator"], admin.client_id, admin.client_secret)

    variables = {"input": {"name": "Renamed By Sales", "email": target.email}}
    body = (await gql(client, caller, UPSERT, variables))["data"]["upsertCustomer"]

    assert body["userErrors"] == []
    assert (body["outcome"], body["matchedBy"]) == ("QUEUED", "EMAIL")
    assert body["customer"]["name"] == target.name
    # The email sent to match (not read in clear by sales, so never taken as "unchanged")
    # is the operator's too: it waits for review beside the name.
    proposed = {p["field"]: p["status"] for p in body["proposedChanges"]}
    assert proposed["name"] == "pending"
    assert set(proposed) <= {"name", "email"}
    async with db.session() as session:
        stored = (await session.execute(select(Customer).where(Customer.id == target.id))).one()[0]
        pending = (await session.execute(select(ProposedChange))).scalars().all()
    assert (stored.name, stored.version) == (target.name, target.version)
    assert stored.provenance == target.provenance
    assert {(p.field, p.status) for p in pending} == {(f, "pending") for f in proposed}
    # The demo's admin client sees it in the review queue.
    queue = await gql(client, administrator, QUEUE, {"customer": body["customer"]["id"]})
    names = [change for change in queue["data"]["proposedChanges"] if change["field"] == "name"]
    assert names == [
        {
            "field": "name",
            "value": "Renamed By Sales",
            "currentValue": target.name,
            "organization": "sales",
            "status": "pending",
        }
    ]
