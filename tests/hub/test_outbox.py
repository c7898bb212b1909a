"""The transactional outbox (issue 10 §3, DESIGN §10), on SQLite and PostgreSQL.

Every committed change writes exactly one event per changed record in its transaction;
failed, rolled-back and replayed writes write none; positions come out in commit order
with no gap, so a reader never skips an event a slower writer commits late; events name
fields, never values; pruning keeps what the slowest reader has not read.
"""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update
from sqlmodel import col

from hub import customers, outbox, sharing
from hub.customers import CustomerFields
from hub.db import Database
from hub.errors import BadInputError, NotFoundError
from hub.models import Customer, CustomerPartner, OutboxEvent, ProposedChange
from hub.models._types import utcnow
from hub.outbox import Change, Operation
from hub.settings import Settings
from schema.ids import to_global_id
from tests.conftest import ALL_SCOPES, Caller, gql, make_caller, token_for
from tests.hub.factories import (
    assign,
    gid,
    load,
    make_customer,
    make_feedback,
)

ADMIN_SCOPES = [*ALL_SCOPES, "hub:admin"]
ERRORS = "userErrors { field message code }"
CREATE = f"""mutation($input: CustomerInput!) {{
  createCustomer(input: $input) {{ customer {{ id version }} {ERRORS} }} }}"""
UPSERT = f"""mutation($input: CustomerInput!) {{
  upsertCustomer(input: $input) {{ customer {{ id version }} outcome {ERRORS} }} }}"""
UPDATE = f"""mutation($id: ID!, $version: Int!, $patch: CustomerPatch!) {{
  updateCustomer(id: $id, expectedVersion: $version, patch: $patch) {{
    customer {{ id version }} outcome proposedChanges {{ id field }} {ERRORS} }} }}"""
CONSENT = f"""mutation($input: RecordConsentInput!) {{
  recordConsent(input: $input) {{ customer {{ id version }} {ERRORS} }} }}"""
SUBMIT = f"""mutation($input: SubmitFeedbackInput!) {{
  submitFeedback(input: $input) {{ feedback {{ id }} {ERRORS} }} }}"""
STATUS = f"""mutation($id: ID!, $status: FeedbackStatus!) {{
  updateFeedbackStatus(id: $id, status: $status) {{ feedback {{ id status }} {ERRORS} }} }}"""
LOG = f"""mutation($input: LogInteractionInput!) {{
  logInteraction(input: $input) {{ interaction {{ id }} {ERRORS} }} }}"""
REPORT = f"""mutation($input: ReportPurchaseInput!) {{
  reportPurchase(input: $input) {{ purchase {{ id }} {ERRORS} }} }}"""
ASSIGN = f"""mutation($customer: ID!, $partner: String!, $role: String!) {{
  assignPartner(customerId: $customer, partner: $partner, role: $role) {{
    assignment {{ role }} {ERRORS} }} }}"""
UNASSIGN = f"""mutation($customer: ID!, $partner: String!) {{
  unassignPartner(customerId: $customer, partner: $partner) {{ removed {ERRORS} }} }}"""
MERGE = f"""mutation($s: ID!, $d: ID!) {{
  mergeCustomers(survivor: $s, duplicate: $d) {{ customer {{ id version }} moved {ERRORS} }} }}"""
APPROVE = f"""mutation($id: ID!, $reason: String) {{
  approveChange(id: $id, reason: $reason) {{ change {{ id status }} {ERRORS} }} }}"""
REJECT = f"""mutation($id: ID!) {{
  rejectChange(id: $id) {{ change {{ id status }} {ERRORS} }} }}"""

C, FB, IN, PU, CP, PC = (
    "Customer",
    "Feedback",
    "Interaction",
    "Purchase",
    "CustomerPartner",
    "ProposedChange",
)
CUSTOMER_CREATED = (
    "city",
    "consent_marketing_opt_in",
    "consent_share_with_partners",
    "email",
    "kind",
    "lifecycle_stage",
    "name",
    "traits",
)


async def head(db: Database) -> int:
    async with db.session() as session:
        return await outbox.head(session)


async def events_after(db: Database, position: int) -> list[outbox.Event]:
    async with db.session() as session:
        return await outbox.changes_since(session, position, outbox.MAX_LIMIT)


def uuid_of(global_id: str) -> uuid.UUID:
    """The uuid inside a global id (``base64url("Type:uuid")``; proposed changes too)."""
    padded = global_id + "=" * (-len(global_id) % 4)
    return uuid.UUID(base64.urlsafe_b64decode(padded).decode().partition(":")[2])


Expected = tuple[str, Operation, uuid.UUID, tuple[str, ...], int | None]


def summary(events: list[outbox.Event]) -> list[Expected]:
    return [(e.resource, e.operation, e.record_id, e.fields, e.version) for e in events]


def operator_stamp(*names: str) -> dict[str, Any]:
    stamp = {"organization": "operator", "kind": "operator", "at": "2026-01-01T00:00:00+00:00"}
    return {name: dict(stamp) for name in names}


@dataclass
class World:
    """Callers of every kind the mutations need, and the outbox position before the
    mutation under test (set by :meth:`mutate`)."""

    client: httpx.AsyncClient
    db: Database
    admin: Caller  # the operator's administrators
    sales: Caller
    support: Caller
    partner: Caller  # a distributor
    mark: int = 0
    caller: Caller | None = None

    async def mutate(
        self, caller: Caller, query: str, variables: dict[str, Any], *, expect_errors: bool = False
    ) -> dict[str, Any]:
        self.mark, self.caller = await head(self.db), caller
        return await gql(self.client, caller, query, variables, expect_errors=expect_errors)


@pytest.fixture
async def world(client: httpx.AsyncClient, db: Database) -> World:
    admin = await make_caller(db, "operator", slug="operator", scopes=ADMIN_SCOPES)
    sales = await make_caller(db, "department", slug="sales", attributes={"roles": ["sales"]})
    support = await make_caller(db, "department", slug="support", attributes={"roles": ["support"]})
    partner = await make_caller(db, "distributor", slug="acme-distribution")
    return World(client, db, admin, sales, support, partner)


def payload(body: dict[str, Any], name: str) -> dict[str, Any]:
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"][name]
    assert result.get("userErrors", []) == [], result
    return result


# --- one event per changed record, for every mutation ---------------------------------------

Scenario = Callable[[World], Awaitable[list[Expected]]]


async def create_customer(w: World) -> list[Expected]:
    body = await w.mutate(
        w.admin, CREATE, {"input": {"name": "Ada", "email": "ada@example.com", "city": "Lyon"}}
    )
    new = uuid_of(payload(body, "createCustomer")["customer"]["id"])
    return [(C, Operation.CREATE, new, CUSTOMER_CREATED, 1)]


async def upsert_created(w: World) -> list[Expected]:
    values = {"name": "Ada", "email": "ada@example.com", "city": "Lyon"}
    result = payload(await w.mutate(w.admin, UPSERT, {"input": values}), "upsertCustomer")
    assert result["outcome"] == "CREATED"
    return [(C, Operation.CREATE, uuid_of(result["customer"]["id"]), CUSTOMER_CREATED, 1)]


async def upsert_updated(w: World) -> list[Expected]:
    known = await make_customer(w.db, email="ada@example.com", city="Lyon")
    values = {"name": known.name, "email": "ada@example.com", "city": "Paris"}
    result = payload(await w.mutate(w.admin, UPSERT, {"input": values}), "upsertCustomer")
    assert result["outcome"] == "UPDATED"
    return [(C, Operation.UPDATE, known.id, ("city",), 2)]


async def upsert_queued(w: World) -> list[Expected]:
    # The operator set the name: sales' different name waits for review.
    known = await make_customer(
        w.db, name="Ada", email="ada@example.com", provenance=operator_stamp("name", "email")
    )
    values = {"name": "Ada L.", "email": "ada@example.com"}
    result = payload(await w.mutate(w.sales, UPSERT, {"input": values}), "upsertCustomer")
    assert result["outcome"] == "QUEUED"
    async with w.db.session() as session:
        proposals = (await session.execute(select(ProposedChange))).scalars().all()
    assert {p.customer_id for p in proposals} == {known.id}
    assert "name" in {p.field for p in proposals}
    return [(PC, Operation.CREATE, p.id, PROPOSAL_CREATED, None) for p in proposals]


PROPOSAL_CREATED = (
    "base_version",
    "client",
    "customer_id",
    "field",
    "organization",
    "organization_id",
    "status",
    "value",
)


async def upsert_unchanged(w: World) -> list[Expected]:
    known = await make_customer(w.db, email="ada@example.com", city="Lyon")
    values = {"name": known.name, "email": "ada@example.com", "city": "Lyon"}
    result = payload(await w.mutate(w.admin, UPSERT, {"input": values}), "upsertCustomer")
    assert result["outcome"] == "UNCHANGED"
    return []


async def update_customer(w: World) -> list[Expected]:
    known = await make_customer(w.db, city="Lyon")
    variables = {"id": gid(known), "version": 1, "patch": {"city": "Paris", "title": "CTO"}}
    result = payload(await w.mutate(w.admin, UPDATE, variables), "updateCustomer")
    assert result["outcome"] == "UPDATED"
    return [(C, Operation.UPDATE, known.id, ("city", "title"), 2)]


async def update_customer_queued(w: World) -> list[Expected]:
    known = await make_customer(
        w.db,
        consent_share_with_partners=True,
        lifecycle_stage="customer",
        provenance=operator_stamp("lifecycle_stage"),
    )
    await assign(w.db, known, w.partner.org)
    variables = {"id": gid(known), "version": 1, "patch": {"lifecycleStage": "CHURNED"}}
    result = payload(await w.mutate(w.partner, UPDATE, variables), "updateCustomer")
    assert result["outcome"] == "QUEUED"
    [proposal] = result["proposedChanges"]
    return [(PC, Operation.CREATE, uuid_of(proposal["id"]), PROPOSAL_CREATED, None)]


async def update_customer_superseding(w: World) -> list[Expected]:
    """A second proposal for the same field by the same organization supersedes the
    first: a ``status`` event for the old one, a ``create`` for the new one."""
    known = await make_customer(
        w.db,
        consent_share_with_partners=True,
        lifecycle_stage="customer",
        provenance=operator_stamp("lifecycle_stage"),
    )
    await assign(w.db, known, w.partner.org)
    first = await gql(
        w.client,
        w.partner,
        UPDATE,
        {"id": gid(known), "version": 1, "patch": {"lifecycleStage": "CHURNED"}},
    )
    [old] = payload(first, "updateCustomer")["proposedChanges"]
    variables = {"id": gid(known), "version": 1, "patch": {"lifecycleStage": "PROSPECT"}}
    result = payload(await w.mutate(w.partner, UPDATE, variables), "updateCustomer")
    [new] = result["proposedChanges"]
    decided = ("decided_at", "decided_by", "status")
    return [
        (PC, Operation.STATUS, uuid_of(old["id"]), decided, None),
        (PC, Operation.CREATE, uuid_of(new["id"]), PROPOSAL_CREATED, None),
    ]


async def record_consent(w: World) -> list[Expected]:
    known = await make_customer(w.db)
    variables = {
        "input": {"customerId": gid(known), "shareWithPartners": True, "source": "web form"}
    }
    payload(await w.mutate(w.admin, CONSENT, variables), "recordConsent")
    fields = ("consent_given_at", "consent_share_with_partners", "consent_source")
    return [(C, Operation.CONSENT, known.id, fields, 2)]


async def submit_feedback(w: World) -> list[Expected]:
    known = await make_customer(w.db)
    given = {"customerId": gid(known), "channel": "EMAIL", "kind": "PRAISE", "text": "Lovely"}
    result = payload(await w.mutate(w.support, SUBMIT, {"input": given}), "submitFeedback")
    fields = (
        "channel",
        "customer_id",
        "kind",
        "organization_id",
        "status",
        "tags",
        "text",
        "visibility",
    )
    return [(FB, Operation.CREATE, uuid_of(result["feedback"]["id"]), fields, None)]


async def update_feedback_status(w: World) -> list[Expected]:
    known = await make_customer(w.db)
    row = await make_feedback(w.db, known, w.support.org)
    variables = {"id": gid(row), "status": "TRIAGED"}
    payload(await w.mutate(w.support, STATUS, variables), "updateFeedbackStatus")
    return [(FB, Operation.STATUS, row.id, ("status",), None)]


async def feedback_status_unchanged(w: World) -> list[Expected]:
    known = await make_customer(w.db)
    row = await make_feedback(w.db, known, w.support.org)
    payload(
        await w.mutate(w.support, STATUS, {"id": gid(row), "status": "NEW"}), "updateFeedbackStatus"
    )
    return []


async def log_interaction(w: World) -> list[Expected]:
    known = await make_customer(w.db)
    given = {
        "customerId": gid(known),
        "channel": "PHONE",
        "direction": "INBOUND",
        "summary": "Asked about delivery",
    }
    result = payload(await w.mutate(w.support, LOG, {"input": given}), "logInteraction")
    fields = ("channel", "customer_id", "direction", "occurred_at", "organization_id", "summary")
    return [(IN, Operation.CREATE, uuid_of(result["interaction"]["id"]), fields, None)]


async def report_purchase(w: World) -> list[Expected]:
    known = await make_customer(w.db)
    given = {
        "customerId": gid(known),
        "sku": "SKU-1",
        "quantity": 2,
        "amount": "49.90",
        "currency": "EUR",
    }
    result = payload(await w.mutate(w.admin, REPORT, {"input": given}), "reportPurchase")
    fields = (
        "amount",
        "currency",
        "customer_id",
        "organization_id",
        "purchased_at",
        "quantity",
        "sku",
    )
    return [(PU, Operation.CREATE, uuid_of(result["purchase"]["id"]), fields, None)]


async def _link_id(w: World, customer: Customer) -> uuid.UUID:
    async with w.db.session() as session:
        found = await session.execute(
            select(col(CustomerPartner.id)).where(
                col(CustomerPartner.customer_id) == customer.id,
                col(CustomerPartner.organization_id) == w.partner.org.id,
            )
        )
        return found.scalar_one()


async def assign_partner(w: World) -> list[Expected]:
    known = await make_customer(w.db)
    variables = {"customer": gid(known), "partner": w.partner.org.slug, "role": "reseller"}
    payload(await w.mutate(w.admin, ASSIGN, variables), "assignPartner")
    fields = ("customer_id", "organization_id", "role", "since")
    return [(CP, Operation.CREATE, await _link_id(w, known), fields, None)]


async def assign_partner_again(w: World) -> list[Expected]:
    known = await make_customer(w.db)
    await assign(w.db, known, w.partner.org, role="reseller")
    variables = {"customer": gid(known), "partner": w.partner.org.slug, "role": "reseller"}
    payload(await w.mutate(w.admin, ASSIGN, variables), "assignPartner")
    return []


async def assign_partner_new_role(w: World) -> list[Expected]:
    known = await make_customer(w.db)
    link = await assign(w.db, known, w.partner.org, role="reseller")
    variables = {"customer": gid(known), "partner": w.partner.org.slug, "role": "installer"}
    payload(await w.mutate(w.admin, ASSIGN, variables), "assignPartner")
    return [(CP, Operation.UPDATE, link.id, ("role",), None)]


async def unassign_partner(w: World) -> list[Expected]:
    known = await make_customer(w.db)
    link = await assign(w.db, known, w.partner.org)
    variables = {"customer": gid(known), "partner": w.partner.org.slug}
    result = payload(await w.mutate(w.admin, UNASSIGN, variables), "unassignPartner")
    assert result["removed"] is True
    return [(CP, Operation.DELETE, link.id, (), None)]


async def unassign_partner_again(w: World) -> list[Expected]:
    known = await make_customer(w.db)
    variables = {"customer": gid(known), "partner": w.partner.org.slug}
    result = payload(await w.mutate(w.admin, UNASSIGN, variables), "unassignPartner")
    assert result["removed"] is False
    return []


async def merge_customers(w: World) -> list[Expected]:
    survivor = await make_customer(w.db, name="Ada", company=None, provenance={})
    duplicate = await make_customer(w.db, name="Ada L.", company="Analytical Engines")
    feedback = await make_feedback(w.db, duplicate, w.support.org)
    shared = await assign(w.db, survivor, w.partner.org)
    dropped = await assign(w.db, duplicate, w.partner.org)  # the survivor's stays
    other = await make_caller(w.db, "supplier", slug="gears")
    moved_link = await assign(w.db, duplicate, other.org)
    body = await w.mutate(w.admin, MERGE, {"s": gid(survivor), "d": gid(duplicate)})
    result = payload(body, "mergeCustomers")
    assert result["customer"]["version"] == 2
    assert shared.id != dropped.id
    return [
        (C, Operation.MERGE, survivor.id, ("company",), 2),
        (CP, Operation.DELETE, dropped.id, (), None),
        (FB, Operation.MERGE, feedback.id, ("customer_id",), None),
        (CP, Operation.MERGE, moved_link.id, ("customer_id",), None),
        (C, Operation.DELETE, duplicate.id, (), None),
    ]


async def _proposal(w: World) -> tuple[Customer, uuid.UUID]:
    known = await make_customer(
        w.db,
        consent_share_with_partners=True,
        lifecycle_stage="customer",
        provenance=operator_stamp("lifecycle_stage"),
    )
    await assign(w.db, known, w.partner.org)
    body = await gql(
        w.client,
        w.partner,
        UPDATE,
        {"id": gid(known), "version": 1, "patch": {"lifecycleStage": "CHURNED"}},
    )
    [proposal] = payload(body, "updateCustomer")["proposedChanges"]
    return known, uuid_of(proposal["id"])


async def approve_change(w: World) -> list[Expected]:
    known, proposal = await _proposal(w)
    body = await w.mutate(
        w.admin, APPROVE, {"id": _proposal_gid(proposal), "reason": "confirmed by phone"}
    )
    payload(body, "approveChange")
    decided = ("decided_at", "decided_by", "decision_reason", "status")
    return [
        (C, Operation.APPROVE, known.id, ("lifecycle_stage",), 2),
        (PC, Operation.APPROVE, proposal, decided, None),
    ]


async def reject_change(w: World) -> list[Expected]:
    _, proposal = await _proposal(w)
    payload(await w.mutate(w.admin, REJECT, {"id": _proposal_gid(proposal)}), "rejectChange")
    return [(PC, Operation.REJECT, proposal, ("decided_at", "decided_by", "status"), None)]


def _proposal_gid(proposal: uuid.UUID) -> str:
    return to_global_id("ProposedChange", proposal)


SCENARIOS: list[Scenario] = [
    create_customer,
    upsert_created,
    upsert_updated,
    upsert_queued,
    upsert_unchanged,
    update_customer,
    update_customer_queued,
    update_customer_superseding,
    record_consent,
    submit_feedback,
    update_feedback_status,
    feedback_status_unchanged,
    log_interaction,
    report_purchase,
    assign_partner,
    assign_partner_again,
    assign_partner_new_role,
    unassign_partner,
    unassign_partner_again,
    merge_customers,
    approve_change,
    reject_change,
]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__)
async def test_every_mutation_writes_one_event_per_changed_record(
    world: World, scenario: Scenario
) -> None:
    expected = await scenario(world)
    events = await events_after(world.db, world.mark)
    assert sorted(summary(events), key=repr) == sorted(expected, key=repr)
    # One transaction's events: the caller's (as the audit log names it), at consecutive
    # positions.
    assert world.caller is not None
    assert {e.actor for e in events} <= {f"{world.caller.org.slug}/{world.caller.client_id}"}
    assert [e.position for e in events] == list(range(world.mark + 1, world.mark + len(events) + 1))


# --- ordering: concurrent and slow writers ---------------------------------------------------

WRITERS = 20


async def test_concurrent_writers_get_consecutive_positions_a_polling_reader_sees_in_order(
    client: httpx.AsyncClient, db: Database
) -> None:
    writers = [
        await make_caller(db, "department", slug=f"sales-{i:02d}", attributes={"roles": ["sales"]})
        for i in range(WRITERS)
    ]
    for caller in writers:  # tokens first: the race is between the writes
        await token_for(client, caller)
    mark = await head(db)
    seen: list[outbox.Event] = []
    done = asyncio.Event()

    async def read_along() -> None:
        # A reader polling while the writers commit: its cursor is the last position it
        # saw, so an event committed late below that cursor would be skipped for good.
        while True:
            finished = done.is_set()
            cursor = seen[-1].position if seen else mark
            seen.extend(await events_after(db, cursor))
            if finished:
                return
            await asyncio.sleep(0.005)

    reader = asyncio.create_task(read_along())
    bodies = await asyncio.gather(
        *(
            gql(client, caller, CREATE, {"input": {"name": f"Writer {i:02d}"}})
            for i, caller in enumerate(writers)
        )
    )
    done.set()
    await reader
    created = {uuid_of(payload(b, "createCustomer")["customer"]["id"]) for b in bodies}
    assert len(created) == WRITERS
    assert [e.position for e in seen] == list(range(mark + 1, mark + WRITERS + 1))
    assert {e.record_id for e in seen} == created
    assert {e.actor.split("/")[0] for e in seen} == {c.org.slug for c in writers}
    assert summary(await events_after(db, mark)) == summary(seen)


async def test_a_slow_writer_is_not_skipped_by_a_reader_polling_meanwhile(
    client: httpx.AsyncClient, db: Database, world: World
) -> None:
    await token_for(client, world.sales)
    mark = await head(db)
    seen: list[outbox.Event] = []

    async def poll() -> None:
        seen.extend(await events_after(db, seen[-1].position if seen else mark))

    async with db.transaction() as slow:
        principal = sharing.principal_for(world.admin.org)
        write = await customers.create_customer(slow, principal, CustomerFields(name="Slow"))
        async with db.session() as elsewhere:  # another connection: nothing committed yet
            assert await outbox.changes_since(elsewhere, mark) == []
        # Emitted, not committed: a faster writer starts and must wait for this commit
        # to number its event (the audit lock), so it cannot commit a later position first.
        fast = asyncio.create_task(gql(client, world.sales, CREATE, {"input": {"name": "Fast"}}))
        await asyncio.sleep(0.5)
        await poll()
        assert seen == []
        assert not fast.done()
    body = await asyncio.wait_for(fast, timeout=30)
    await poll()
    fast_id = uuid_of(payload(body, "createCustomer")["customer"]["id"])
    assert [(e.position, e.record_id) for e in seen] == [
        (mark + 1, write.customer_id),
        (mark + 2, fast_id),
    ]


async def test_emitting_waits_for_an_open_emitter_and_numbers_after_it(db: Database) -> None:
    mark = await head(db)
    change = Change("Customer", uuid.uuid4(), Operation.UPDATE, ("name",), 2)
    async with db.transaction() as first:
        assert await outbox.emit(first, change, actor="first") == mark + 1
        second = asyncio.create_task(_emit_in_own_transaction(db, change))
        await asyncio.sleep(0.3)
        assert not second.done()  # held until the first commits
    assert await asyncio.wait_for(second, timeout=30) == mark + 2
    # A rolled-back emitter leaves neither an event nor a hole.

    async def emit_and_fail() -> None:
        async with db.transaction() as session:
            assert await outbox.emit(session, change, actor="rolled back") == mark + 3
            raise RuntimeError("before commit")

    with pytest.raises(RuntimeError):
        await emit_and_fail()
    assert await _emit_in_own_transaction(db, change) == mark + 3
    assert [e.actor for e in await events_after(db, mark)] == ["first", "second", "second"]


async def _emit_in_own_transaction(db: Database, change: Change) -> int:
    async with db.transaction() as session:
        return await outbox.emit(session, change, actor="second")


# --- failed, rolled-back and replayed writes write nothing ------------------------------------


async def test_failed_writes_write_no_event(
    client: httpx.AsyncClient, db: Database, world: World
) -> None:
    known = await make_customer(db, provenance={})
    mark = await head(db)
    # Bad input: a user error, nothing written.
    bad = await gql(client, world.admin, CREATE, {"input": {"name": "Ada", "email": "nope"}})
    assert bad["data"]["createCustomer"]["userErrors"][0]["field"] == ["input", "email"]
    # A field the policy does not let sales set: FORBIDDEN, nothing written.
    variables = {"id": gid(known), "version": 1, "patch": {"traits": {"vip": True}}}
    refused = await gql(client, world.sales, UPDATE, variables)
    assert refused["data"]["updateCustomer"]["userErrors"][0]["code"] == "FORBIDDEN"
    # A stale expected version: CONFLICT.
    stale = {"id": gid(known), "version": 7, "patch": {"city": "Paris"}}
    conflict = await gql(client, world.admin, UPDATE, stale, expect_errors=True)
    assert [e["extensions"]["code"] for e in conflict["errors"]] == ["CONFLICT"]
    assert await events_after(db, mark) == []
    assert (await load(db, Customer, known.id)).version == 1
    # A proposed change decided twice: CONFLICT the second time.
    _, proposal = await _proposal(world)
    payload(await gql(client, world.admin, REJECT, {"id": _proposal_gid(proposal)}), "rejectChange")
    mark = await head(db)
    again = await gql(
        client, world.admin, APPROVE, {"id": _proposal_gid(proposal)}, expect_errors=True
    )
    assert [e["extensions"]["code"] for e in again["errors"]] == ["CONFLICT"]
    assert await events_after(db, mark) == []


async def test_a_forbidden_write_after_its_checks_writes_no_event(
    client: httpx.AsyncClient, db: Database, world: World
) -> None:
    """``mergeCustomers`` by a department's administrator: the hub refuses (FORBIDDEN)."""
    department_admin = await make_caller(
        db, "department", slug="support-admins", scopes=ADMIN_SCOPES
    )
    survivor, duplicate = await make_customer(db), await make_customer(db)
    mark = await head(db)
    body = await gql(
        client,
        department_admin,
        MERGE,
        {"s": gid(survivor), "d": gid(duplicate)},
        expect_errors=True,
    )
    assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"], body
    assert await events_after(db, mark) == []


async def test_an_exception_before_commit_leaves_no_event(db: Database, world: World) -> None:
    mark = await head(db)
    principal = sharing.principal_for(world.admin.org)
    written: list[uuid.UUID] = []

    async def write_and_fail() -> None:
        async with db.transaction() as session:
            write = await customers.create_customer(session, principal, CustomerFields(name="X"))
            # Written in the transaction...
            [event] = await outbox.changes_since(session, mark)
            assert event.record_id == write.customer_id
            written.append(write.customer_id)
            raise RuntimeError("the connection dropped before commit")

    with pytest.raises(RuntimeError, match="before commit"):
        await write_and_fail()
    # ...and rolled back with it.
    assert await events_after(db, mark) == []
    assert await load(db, Customer, written[0]) is None


async def test_an_idempotent_replay_writes_no_event(
    client: httpx.AsyncClient, db: Database, world: World
) -> None:
    mark = await head(db)
    variables = {"input": {"name": "Ada", "idempotencyKey": "create-ada-1"}}
    first = await gql(client, world.admin, CREATE, variables)
    again = await gql(client, world.admin, CREATE, variables)
    assert again == first
    [event] = await events_after(db, mark)
    assert event.record_id == uuid_of(first["data"]["createCustomer"]["customer"]["id"])
    # Concurrent first uses of one key: the losers roll back (their events with them)
    # and replay the winner's record.
    mark = await head(db)
    variables = {"input": {"name": "Grace", "idempotencyKey": "create-grace-1"}}
    bodies = await asyncio.gather(*(gql(client, world.admin, CREATE, variables) for _ in range(5)))
    assert all(body == bodies[0] for body in bodies)
    [event] = await events_after(db, mark)
    assert event.record_id == uuid_of(bodies[0]["data"]["createCustomer"]["customer"]["id"])


# --- names, never values ---------------------------------------------------------------------


async def test_no_event_holds_a_customer_value(
    client: httpx.AsyncClient, db: Database, world: World
) -> None:
    """Every value written below contains "quux" (the phone its digits): the outbox rows,
    every column of them, contain neither."""
    values = {
        "name": "Zelda Quux",
        "email": "zelda.quux@example.org",
        "phone": "+33 6 12 34 56 78",
        "company": "Quuxcorp",
        "title": "Chief Quux",
        "city": "Quuxville",
        "region": "QUUX",
        "traits": {"hobby": "quuxing"},
        "consentSource": "quux-form",
    }
    created = payload(await gql(client, world.admin, CREATE, {"input": values}), "createCustomer")
    customer_id = created["customer"]["id"]
    patch = {"city": "Quuxburg", "company": "Quux Holdings"}
    update_vars = {"id": customer_id, "version": 1, "patch": patch}
    payload(await gql(client, world.admin, UPDATE, update_vars), "updateCustomer")
    consent = {"customerId": customer_id, "marketingOptIn": True, "source": "quux-call"}
    payload(await gql(client, world.admin, CONSENT, {"input": consent}), "recordConsent")
    feedback = {"customerId": customer_id, "channel": "EMAIL", "kind": "BUG", "text": "quux!"}
    payload(await gql(client, world.support, SUBMIT, {"input": feedback}), "submitFeedback")
    note = {"customerId": customer_id, "channel": "PHONE", "direction": "INBOUND"}
    logged = {**note, "summary": "quux call"}
    payload(await gql(client, world.support, LOG, {"input": logged}), "logInteraction")
    sale = {"customerId": customer_id, "sku": "QUUX-1", "quantity": 1, "amount": "1.00"}
    report = {**sale, "currency": "EUR"}
    payload(await gql(client, world.admin, REPORT, {"input": report}), "reportPurchase")
    assignment = {"customer": customer_id, "partner": world.partner.org.slug, "role": "quuxer"}
    payload(await gql(client, world.admin, ASSIGN, assignment), "assignPartner")
    async with db.session() as session:
        rows = (await session.execute(select(OutboxEvent))).scalars().all()
    assert len(rows) == 7
    dumped = json.dumps([r.model_dump(mode="json") for r in rows]).lower()
    assert "quux" not in dumped
    assert "612345678" not in dumped


# --- retention and readers -------------------------------------------------------------------


async def _emit(db: Database, count: int, *, age: timedelta = timedelta(0)) -> list[int]:
    changes = [Change("Customer", uuid.uuid4(), Operation.CREATE, ("name",), 1)] * count
    async with db.transaction() as session:
        positions = await outbox.emit_all(session, changes, actor="test")
        if age:
            await session.execute(
                update(OutboxEvent)
                .where(col(OutboxEvent.position).in_(positions))
                .values(at=utcnow() - age)
            )
    return positions


async def _kept(db: Database) -> list[int]:
    return [e.position for e in await events_after(db, 0)]


async def _prune(db: Database, retention: timedelta = timedelta(days=7)) -> int:
    async with db.transaction() as session:
        return await outbox.prune(session, retention)


async def test_prune_deletes_only_events_older_than_the_retention_and_keeps_the_newest(
    db: Database,
) -> None:
    old = await _emit(db, 3, age=timedelta(days=8))
    young = await _emit(db, 3, age=timedelta(days=6))
    assert await _prune(db) == 3
    assert await _kept(db) == young
    # Everything old: all but the newest go, so the next position still follows it.
    assert await _prune(db, timedelta(days=1)) == 2
    assert await _kept(db) == young[-1:]
    [following] = await _emit(db, 1)
    assert following == young[-1] + 1
    assert old[-1] < young[0]


async def test_prune_takes_a_prefix_when_clocks_disagree(db: Database) -> None:
    # An event stamped later than the one after it (a replica's clock behind): whatever
    # is before an expired event goes with it, nothing after it does.
    first, second, third, newest = await _emit(db, 4)
    async with db.transaction() as session:
        await session.execute(
            update(OutboxEvent)
            .where(col(OutboxEvent.position) == second)
            .values(at=utcnow() - timedelta(days=9))
        )
    assert await _prune(db) == 2
    assert await _kept(db) == [third, newest]
    assert first < second


async def test_prune_never_passes_the_slowest_reader(db: Database) -> None:
    p = await _emit(db, 6, age=timedelta(days=30))
    async with db.transaction() as session:
        assert await outbox.register_reader(session, "webhooks", 0) == 0
        assert await outbox.register_reader(session, "sync", p[2]) == p[2]
    assert await _prune(db) == 0  # webhooks has read nothing yet
    async with db.transaction() as session:
        await outbox.advance_reader(session, "webhooks", p[1])
    assert await _prune(db) == 2
    assert await _kept(db) == p[2:]
    async with db.transaction() as session:
        await outbox.advance_reader(session, "webhooks", p[4])
        assert await outbox.readers(session) == [("sync", p[2]), ("webhooks", p[4])]
    assert await _prune(db) == 1  # sync is the slowest now
    assert await _kept(db) == p[3:]
    async with db.transaction() as session:
        assert await outbox.drop_reader(session, "sync") is True
        assert await outbox.drop_reader(session, "sync") is False
    assert await _prune(db) == 2
    assert await _kept(db) == p[5:]


async def test_readers_register_once_and_only_move_forward(db: Database) -> None:
    p = await _emit(db, 3)
    async with db.transaction() as session:
        # A new reader starts at the newest event: it reads what happens from now on.
        assert await outbox.register_reader(session, "subscriptions") == p[-1]
        assert await outbox.register_reader(session, "subscriptions", 0) == p[-1]  # kept
        assert await outbox.register_reader(session, "backfill", 0) == 0
        assert await outbox.advance_reader(session, "backfill", p[1]) == p[1]
        # A late acknowledgement does not move it back.
        assert await outbox.advance_reader(session, "backfill", p[0]) == p[1]
        with pytest.raises(BadInputError, match="past the newest event"):
            await outbox.advance_reader(session, "backfill", p[-1] + 1)
        with pytest.raises(NotFoundError, match="register it first"):
            await outbox.advance_reader(session, "nobody", p[0])
        with pytest.raises(BadInputError, match="reader name"):
            await outbox.register_reader(session, "")
        with pytest.raises(BadInputError, match="0 or more"):
            await outbox.register_reader(session, "negative", -1)
        with pytest.raises(BadInputError, match="limit"):
            await outbox.changes_since(session, 0, 0)
        assert [e.position for e in await outbox.changes_since(session, p[0], 1)] == [p[1]]


async def test_the_runtime_prunes_the_outbox(database_url: str, db: Database) -> None:
    from app import create_app
    from tests.conftest import make_settings

    await _emit(db, 3, age=timedelta(hours=2))
    young = await _emit(db, 1)
    settings = make_settings(database_url, outbox_retention=3600)
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        for _ in range(200):  # the first prune runs as the app starts
            if await _kept(db) == young:
                break
            await asyncio.sleep(0.05)
    assert await _kept(db) == young


def test_the_retention_is_a_setting_of_seven_days_by_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert Settings().outbox_retention == 7 * 86_400
    monkeypatch.setenv("HUB_OUTBOX_RETENTION", "3600")
    assert Settings().outbox_retention == 3600
