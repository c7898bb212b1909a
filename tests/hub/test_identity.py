"""Identity resolution and contributions at the hub level, under policies that give a
caller more write than read: no contribution may become an oracle for what it cannot see."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from types import MappingProxyType

import pytest

from hub import audit, disclosures, identity, sharing
from hub.access import PolicyRules, access
from hub.customers import CustomerFields, update_customer
from hub.db import Database
from hub.errors import ForbiddenError
from hub.idempotency import owner_of
from hub.models import Customer, Organization, OrgKind
from policies import parse
from tests.conftest import SECRET, make_org
from tests.hub.factories import assign, make_customer

POLICY = """
rules:
  - name: operator
    subjects: [{kind: operator}]
    resource: Customer
    read: {visible: [id, name, email, phone, lifecycle_stage, version, provenance]}
    create: {fields: [name, email, phone, lifecycle_stage]}
    write: {fields: [name, email, phone, lifecycle_stage]}
  - name: distributors create customers but see only their own
    subjects: [{kind: distributor}]
    resource: Customer
    rows: {assignments.organization: {eq: $subject.org}}
    read:
      visible: [id, name, lifecycle_stage, version]
      masked: {phone: last4}
    create: {fields: [name, email, phone]}
    write: {fields: [name, phone]}
"""


@pytest.fixture
def policy() -> Iterator[None]:
    saved = access.rules
    access.rules = PolicyRules(97, parse(POLICY), [], pseudonym_secret=SECRET.encode())
    yield
    access.rules = saved


async def test_a_match_is_sought_only_among_customers_the_caller_sees(
    db: Database, policy: None
) -> None:
    org = await make_org(db, "distributor", slug="acme")
    hidden = await make_customer(db, name="Hidden", email="hidden@example.com")
    mine = await make_customer(db, name="Mine", email="mine@example.com", provenance={})
    await assign(db, mine, org)
    principal = sharing.principal_for(org)

    async with db.transaction() as session:
        guess = await identity.upsert_customer(
            session, principal, CustomerFields(name="Guess", email="HIDDEN@example.com")
        )
    # Exactly what a person nobody knows would get: a new record, no match named.
    assert (guess.write.outcome, guess.matched_by) == ("created", None)
    assert guess.write.customer_id != hidden.id
    async with db.transaction() as session:
        known = await identity.upsert_customer(
            session, principal, CustomerFields(name="Mine", email="mine@example.com")
        )
    assert (known.write.customer_id, known.matched_by) == (mine.id, identity.MatchKey.EMAIL)
    # The hidden customer is untouched; administrators see the pair as candidates.
    async with db.session() as session:
        stored = await session.get(Customer, hidden.id)
        assert stored is not None and (stored.name, stored.version) == ("Hidden", 1)
    admin = dataclasses.replace(
        sharing.principal_for(await make_org(db, "operator", slug="op")),
        scopes=frozenset({*sharing.principal_for(org).scopes, "hub:admin"}),
    )
    async with db.session() as session:
        groups = await identity.duplicate_candidates(session, admin)
    assert {hidden.id, guess.write.customer_id} in [set(g.customer_ids) for g in groups]


async def test_an_equal_masked_value_is_not_confirmed_as_unchanged(
    db: Database, policy: None
) -> None:
    """The distributor sees the phone as ****2671 and may set it: sending the stored
    number must not answer differently from sending another one."""
    org = await make_org(db, "distributor", slug="acme")
    customer = await make_customer(db, phone="+14155552671", name="Ada", provenance={})
    await assign(db, customer, org)
    principal = sharing.principal_for(org)
    outcomes = []
    for version, phone in ((1, "+14155552671"), (2, "+14155550000")):
        async with db.transaction() as session:
            write = await update_customer(
                session, principal, customer.id, version, CustomerFields(phone=phone)
            )
        outcomes.append(write.outcome)
    assert outcomes == ["updated", "updated"]
    # The name is read in clear: an equal name is a plain no-op.
    async with db.transaction() as session:
        same = await update_customer(session, principal, customer.id, 3, CustomerFields(name="Ada"))
    assert same.outcome == "unchanged"


async def test_only_the_operators_administrators_merge(db: Database) -> None:
    department = await make_org(db, "department", slug="sales")
    admin = dataclasses.replace(
        sharing.principal_for(department), scopes=frozenset({"hub:admin", "customers:write"})
    )
    a, b = await make_customer(db), await make_customer(db)
    with pytest.raises(ForbiddenError, match="operator"):
        async with db.transaction() as session:
            await identity.merge_customers(session, admin, a.id, b.id)


async def test_reads_of_a_merged_duplicate_stay_in_the_survivors_report(db: Database) -> None:
    operator = await make_org(db, "operator", slug="op")
    admin = dataclasses.replace(
        sharing.principal_for(operator),
        scopes=frozenset({*sharing.principal_for(operator).scopes, "hub:admin"}),
    )
    survivor, duplicate = await make_customer(db), await make_customer(db)
    partner = sharing.principal_for(await make_org(db, "distributor", slug="acme"))

    def read(customer: Customer) -> disclosures.ReadCollector:
        reads = disclosures.ReadCollector(partner, "Page", "h")
        row = {"id": customer.id, "name": customer.name}
        reads.note("Customer", 1, row, MappingProxyType(row))
        return reads

    async with db.transaction() as session:  # read before the merge, indexed before it
        await disclosures.write_reads(session, [read(duplicate)])
        await disclosures.index_pending(session)
    async with db.transaction() as session:
        await identity.merge_customers(session, admin, survivor.id, duplicate.id)
    # A read of the duplicate recorded after the merge (it was pending in a writer).
    async with db.transaction() as session:
        await disclosures.write_reads(session, [read(duplicate)])
    async with db.session() as session:
        report = await disclosures.disclosures_of(session, survivor.id)
    assert [v.record_id for v in report] == [duplicate.id, duplicate.id]


def test_staff_of_one_console_client_have_their_own_keys_and_names() -> None:
    base = sharing.principal_for(Organization(slug="ops", name="Ops", kind=OrgKind.OPERATOR))
    ada = dataclasses.replace(base, client_id="console", subject=str(uuid.uuid4()))
    bob = dataclasses.replace(ada, subject=str(uuid.uuid4()))
    assert owner_of(ada) != owner_of(bob)
    assert owner_of(dataclasses.replace(ada, subject=None)) == "console"
    assert audit.actor_of(ada).endswith(f"/console/{ada.subject}")


async def test_mixed_contributions_racing_plain_updates_let_one_win(
    db: Database, policy: None
) -> None:
    """Contributions that both apply (phone) and propose (name, set by the operator) race
    operator updates of one version: one write wins per version, the others end in
    CONFLICT or a proposal, and nothing fails otherwise. (The contribution takes the row
    lock before the audit log's, like every other write, so on PostgreSQL two writers
    cannot wait on each other; this race did not reproduce the deadlock with the old
    order, so it guards the outcome, not the lock order.)"""
    import asyncio

    from hub.errors import ConflictError

    org = await make_org(db, "distributor", slug="acme")
    operator = sharing.principal_for(await make_org(db, "operator", slug="op"))
    customer = await make_customer(
        db, name="Ada", provenance={"name": {"organization": "op", "kind": "operator"}}
    )
    await assign(db, customer, org)
    partner = sharing.principal_for(org)

    async def write(n: int, version: int) -> str:
        phone = f"+1415555{2000 + version * 16 + n:04d}"
        who, fields = (
            (partner, CustomerFields(name=f"P{n}", phone=phone))
            if n % 2
            else (operator, CustomerFields(phone=phone))
        )
        try:
            async with db.transaction() as session:
                return (await update_customer(session, who, customer.id, version, fields)).outcome
        except ConflictError:
            return "conflict"

    for round_ in range(8):
        outcomes = await asyncio.gather(*(write(n, round_ + 1) for n in range(16)))
        assert set(outcomes) <= {"updated", "queued", "conflict"}
        assert outcomes.count("updated") == 1
