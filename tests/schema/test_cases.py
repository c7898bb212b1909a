"""Support cases (issue 10 §4) under the default policy, over HTTP with real tokens, on
both backends: support opens, updates, reassigns and annotates every case and escalates
feedback; a supplier sees only the cases assigned to it about its products (the customer
as its pseudonym), may add notes and resolve them, and may not reassign them (FORBIDDEN,
nothing written); distributors and vendors have no cases in their schema. Every change
is audited and published in the outbox once; refusals leave neither."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlmodel import col

from hub import cases
from hub.db import Database, count_statements
from hub.errors import BadInputError
from hub.models import AuditEvent, Customer, Organization, OrgKind, OutboxEvent
from hub.models.case import Case, CaseNote
from hub.principal import Principal
from schema.ids import to_global_id
from tests.conftest import ALL_SCOPES, Caller, gql, make_caller, token_for
from tests.hub.factories import assign, gid, load, make_customer, make_feedback, missing_gid

PRODUCT = "Trailhead 2P Tent"
ADMIN_SCOPES = [*ALL_SCOPES, "hub:admin"]
CASE_FIELDS = """id subject description product priority status version customerRef
  customer { id name } assignedTo { slug } openedBy { slug } feedback { id }"""
OPEN = f"""mutation($input: OpenCaseInput!) {{
  openCase(input: $input) {{ case {{ {CASE_FIELDS} }} userErrors {{ field message code }} }} }}"""
ESCALATE = f"""mutation($id: ID!, $assignee: String, $priority: CasePriority) {{
  escalateFeedback(feedbackId: $id, assignedTo: $assignee, priority: $priority) {{
    case {{ {CASE_FIELDS} }} userErrors {{ field message code }} }} }}"""
UPDATE = """mutation($id: ID!, $patch: CasePatch!, $expected: Int) {
  updateCase(id: $id, patch: $patch, expectedVersion: $expected) {
    case { id status priority version assignedTo { slug } }
    userErrors { field message code } } }"""
NOTE = """mutation($id: ID!, $text: String!) {
  addCaseNote(caseId: $id, text: $text) {
    note { id text author { slug } } userErrors { field message code } } }"""
CASES = """query($first: Int, $filter: CaseFilter) {
  cases(first: $first, filter: $filter) {
    totalCount edges { node { id subject status customerRef
      notes { totalCount edges { node { text author { slug } } } } } } } }"""
ONE = """query($id: ID!) { case(id: $id) { id subject }
  node(id: $id) { id ... on Case { status customerRef } } }"""
FEEDBACK_REFS = "{ feedback { edges { node { customerRef } } } }"
EXPLAIN = """query($org: String!, $resource: PolicyResource!, $id: String!) {
  explainAccess(organization: $org, resource: $resource, id: $id) {
    row { visible rules } fields { field outcome mask rule } } }"""


@pytest.fixture
async def support(db: Database) -> Caller:
    return await make_caller(db, "department", slug="support", attributes={"roles": ["support"]})


@pytest.fixture
async def supplier(db: Database) -> Caller:
    return await make_caller(db, "supplier", slug="alpine", attributes={"products": [PRODUCT]})


@pytest.fixture
async def rival(db: Database) -> Caller:
    """Another supplier making the same product."""
    return await make_caller(db, "supplier", slug="rival", attributes={"products": [PRODUCT]})


async def make_case(
    db: Database, customer: Customer, assignee: Organization, opener: Organization, **extra: Any
) -> Case:
    values: dict[str, Any] = {
        "subject": "Zip broken",
        "description": "The tent's zip broke on the first night.",
        "product": PRODUCT,
    }
    values.update(extra)
    case = Case(
        customer_id=customer.id, organization_id=assignee.id, opened_by_id=opener.id, **values
    )
    async with db.transaction() as session:
        session.add(case)
    return case


def cid(case: Case) -> str:
    return to_global_id("Case", case.id)


def data(body: dict[str, Any], name: str) -> dict[str, Any]:
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"][name]
    return result


async def events(db: Database) -> list[tuple[str, str, str]]:
    """The outbox so far: (resource, operation, record id)."""
    async with db.session() as session:
        rows = (
            await session.execute(select(OutboxEvent).order_by(col(OutboxEvent.position)))
        ).scalars()
        return [(row.resource, row.operation, str(row.record_id)) for row in rows]


async def audits(db: Database) -> list[tuple[str, str]]:
    """The case audit events so far: (action, record id)."""
    async with db.session() as session:
        statement = (
            select(AuditEvent)
            .where(col(AuditEvent.action).startswith("case."))
            .order_by(col(AuditEvent.seq))
        )
        rows = (await session.execute(statement)).scalars()
        return [(row.action, str(row.details["id"])) for row in rows]


async def test_support_opens_updates_reassigns_and_annotates(
    client: httpx.AsyncClient, db: Database, support: Caller, supplier: Caller
) -> None:
    customer = await make_customer(db, consent_share_with_partners=True)
    opened = data(
        await gql(
            client,
            support,
            OPEN,
            {
                "input": {
                    "customerId": gid(customer),
                    "subject": " Zip broken ",
                    "description": "Broke on the first night.",
                    "product": PRODUCT,
                    "priority": "HIGH",
                }
            },
        ),
        "openCase",
    )
    assert opened["userErrors"] == []
    case = opened["case"]
    assert case["subject"] == "Zip broken"
    assert (case["status"], case["priority"], case["version"]) == ("OPEN", "HIGH", 1)
    assert case["customer"]["id"] == case["customerRef"] == gid(customer)
    assert case["assignedTo"] == case["openedBy"] == {"slug": "support"}
    case_id = str((await load_case_ids(db))[0])  # the one case there is: events name its uuid

    moved = data(
        await gql(
            client,
            support,
            UPDATE,
            {"id": case["id"], "patch": {"assignedTo": "alpine", "status": "WAITING_ON_PARTNER"}},
        ),
        "updateCase",
    )
    assert moved == {
        "case": {
            "id": case["id"],
            "status": "WAITING_ON_PARTNER",
            "priority": "HIGH",
            "version": 2,
            "assignedTo": {"slug": "alpine"},
        },
        "userErrors": [],
    }
    # The same again changes nothing: no version, no audit, no event.
    again = data(
        await gql(
            client, support, UPDATE, {"id": case["id"], "patch": {"status": "WAITING_ON_PARTNER"}}
        ),
        "updateCase",
    )
    assert again["case"]["version"] == 2
    noted = data(
        await gql(client, support, NOTE, {"id": case["id"], "text": "Photos requested."}),
        "addCaseNote",
    )
    assert noted["userErrors"] == []
    assert noted["note"]["text"] == "Photos requested."
    assert noted["note"]["author"] == {"slug": "support"}

    note_id = str((await load_note_ids(db))[0])
    assert await events(db) == [
        ("Case", "create", case_id),
        ("Case", "update", case_id),
        ("CaseNote", "create", note_id),
    ]
    assert await audits(db) == [
        ("case.open", case_id),
        ("case.update", case_id),
        ("case.note", note_id),
    ]
    stored = await load(db, Case, uuid.UUID(case_id))
    assert (stored.organization_id, stored.status, stored.version) == (
        supplier.org.id,
        "waiting_on_partner",
        2,
    )


async def load_case_ids(db: Database) -> list[uuid.UUID]:
    async with db.session() as session:
        return list((await session.execute(select(col(Case.id)))).scalars())


async def load_note_ids(db: Database) -> list[uuid.UUID]:
    async with db.session() as session:
        return list((await session.execute(select(col(CaseNote.id)))).scalars())


async def test_invalid_input_and_unknown_assignees_write_nothing(
    client: httpx.AsyncClient, db: Database, support: Caller
) -> None:
    customer = await make_customer(db)
    base = {"customerId": gid(customer), "subject": "S", "description": "D"}
    attempts = [
        ({**base, "subject": "  "}, ["input", "subject"], "REQUIRED"),
        ({**base, "assignedTo": "nobody"}, ["input", "assignedTo"], "NOT_ALLOWED"),
        ({**base, "customerId": missing_gid()}, ["input", "customerId"], "NOT_FOUND"),
    ]
    for given, path, code in attempts:
        result = data(await gql(client, support, OPEN, {"input": given}), "openCase")
        assert result["case"] is None
        assert [(e["field"], e["code"]) for e in result["userErrors"]] == [(path, code)]
    assert await load_case_ids(db) == []
    assert await events(db) == []


async def test_escalating_feedback_opens_a_linked_case(
    client: httpx.AsyncClient, db: Database, support: Caller, supplier: Caller
) -> None:
    customer = await make_customer(db, consent_share_with_partners=True)
    item = await make_feedback(
        db,
        customer,
        support.org,
        kind="complaint",
        text="Pole snapped.\nSecond line.",
        product=PRODUCT,
    )
    result = data(
        await gql(
            client, support, ESCALATE, {"id": gid(item), "assignee": "alpine", "priority": "URGENT"}
        ),
        "escalateFeedback",
    )
    assert result["userErrors"] == []
    case = result["case"]
    assert case["feedback"] == {"id": gid(item)}
    assert case["customer"]["id"] == gid(customer)
    assert (case["subject"], case["description"]) == ("Complaint: Pole snapped.", item.text)
    assert (case["product"], case["priority"], case["assignedTo"]) == (
        PRODUCT,
        "URGENT",
        {"slug": "alpine"},
    )
    (case_id,) = await load_case_ids(db)
    assert await events(db) == [("Case", "create", str(case_id))]
    async with db.session() as session:
        event = (
            await session.execute(select(AuditEvent).where(col(AuditEvent.action) == "case.open"))
        ).scalar_one()
    assert event.details["feedback"] == str(item.id)

    # Feedback nobody may see (or that does not exist) is answered alike.
    for missing in (missing_gid("Feedback"), gid(customer)):
        refused = data(await gql(client, support, ESCALATE, {"id": missing}), "escalateFeedback")
        assert [(e["field"], e["code"]) for e in refused["userErrors"]] == [
            (["feedbackId"], "NOT_FOUND")
        ]


async def test_escalating_without_an_assignee_assigns_the_callers_organization(
    client: httpx.AsyncClient, db: Database, support: Caller
) -> None:
    customer = await make_customer(db, consent_share_with_partners=True)
    item = await make_feedback(db, customer, support.org, text="Zip stuck.", product=PRODUCT)
    query = """mutation($id: ID!) { escalateFeedback(feedbackId: $id) {
      case { assignedTo { slug } openedBy { slug } } userErrors { field code } } }"""
    result = data(await gql(client, support, query, {"id": gid(item)}), "escalateFeedback")
    assert result == {
        "case": {"assignedTo": {"slug": "support"}, "openedBy": {"slug": "support"}},
        "userErrors": [],
    }


async def test_a_supplier_sees_only_its_cases_with_a_pseudonymous_customer(
    client: httpx.AsyncClient, db: Database, support: Caller, supplier: Caller, rival: Caller
) -> None:
    customer = await make_customer(db, consent_share_with_partners=True)
    private = await make_customer(db, consent_share_with_partners=False)
    mine = await make_case(db, customer, supplier.org, support.org)
    theirs = await make_case(db, customer, rival.org, support.org)
    other_product = await make_case(db, customer, supplier.org, support.org, product="Stove")
    no_consent = await make_case(db, private, supplier.org, support.org)
    in_house = await make_case(db, customer, support.org, support.org)
    await make_feedback(db, customer, support.org, product=PRODUCT)

    seen = data(await gql(client, supplier, CASES), "cases")
    assert seen["totalCount"] == 1
    (node,) = [edge["node"] for edge in seen["edges"]]
    assert node["id"] == cid(mine)
    # A pseudonym: not the customer's global ID, and the one its feedback shows it.
    assert node["customerRef"] not in (None, gid(customer))
    refs = await gql(client, supplier, "query " + FEEDBACK_REFS)
    assert refs["data"]["feedback"]["edges"][0]["node"]["customerRef"] == node["customerRef"]
    rival_view = data(await gql(client, rival, CASES), "cases")
    assert [e["node"]["id"] for e in rival_view["edges"]] == [cid(theirs)]
    assert rival_view["edges"][0]["node"]["customerRef"] != node["customerRef"]

    # Another's case answers exactly like one that does not exist.
    for hidden in (theirs, other_product, no_consent, in_house):
        body = await gql(client, supplier, ONE, {"id": cid(hidden)})
        assert body["data"] == {"case": None, "node": None}
    assert (await gql(client, supplier, ONE, {"id": missing_gid("Case")}))["data"] == {
        "case": None,
        "node": None,
    }
    found = await gql(client, supplier, ONE, {"id": cid(mine)})
    assert found["data"]["node"] == {
        "id": cid(mine),
        "status": "OPEN",
        "customerRef": node["customerRef"],
    }
    # Support sees every case, the customer in clear.
    everything = data(await gql(client, support, CASES, {"first": 10}), "cases")
    assert everything["totalCount"] == 5


async def test_a_supplier_adds_notes_and_resolves_but_cannot_reassign(
    client: httpx.AsyncClient, db: Database, support: Caller, supplier: Caller, rival: Caller
) -> None:
    customer = await make_customer(db, consent_share_with_partners=True)
    mine = await make_case(db, customer, supplier.org, support.org)
    theirs = await make_case(db, customer, rival.org, support.org)

    noted = data(
        await gql(client, supplier, NOTE, {"id": cid(mine), "text": "Checking the batch."}),
        "addCaseNote",
    )
    assert noted["userErrors"] == []
    assert noted["note"]["author"] == {"slug": "alpine"}
    (note_id,) = await load_note_ids(db)
    before = await events(db)
    assert before == [("CaseNote", "create", str(note_id))]

    # Reassigning: FORBIDDEN at the field, nothing written, audited or published.
    reassign = data(
        await gql(client, supplier, UPDATE, {"id": cid(mine), "patch": {"assignedTo": "support"}}),
        "updateCase",
    )
    assert reassign["case"] is None
    assert [(e["field"], e["code"]) for e in reassign["userErrors"]] == [
        (["patch", "assignedTo"], "FORBIDDEN")
    ]
    # Any status but resolved: the rule's check refuses it, nothing written.
    closing = await gql(
        client,
        supplier,
        UPDATE,
        {"id": cid(mine), "patch": {"status": "CLOSED"}},
        expect_errors=True,
    )
    assert [e["extensions"]["code"] for e in closing["errors"]] == ["FORBIDDEN"]
    stored = await load(db, Case, mine.id)
    assert (stored.organization_id, stored.status, stored.version) == (supplier.org.id, "open", 1)
    assert await events(db) == before
    assert [a for a, _ in await audits(db)] == ["case.note"]

    resolved = data(
        await gql(client, supplier, UPDATE, {"id": cid(mine), "patch": {"status": "RESOLVED"}}),
        "updateCase",
    )
    assert resolved["userErrors"] == []
    assert (resolved["case"]["status"], resolved["case"]["version"]) == ("RESOLVED", 2)
    assert await events(db) == [*before, ("Case", "update", str(mine.id))]

    # Another supplier's case: the same answer as a case that does not exist.
    for target in (cid(theirs), missing_gid("Case")):
        note = data(await gql(client, supplier, NOTE, {"id": target, "text": "x"}), "addCaseNote")
        update = data(
            await gql(client, supplier, UPDATE, {"id": target, "patch": {"status": "RESOLVED"}}),
            "updateCase",
        )
        assert [(e["field"], e["code"], e["message"]) for e in note["userErrors"]] == [
            (["caseId"], "NOT_FOUND", "no such case")
        ]
        assert [(e["field"], e["code"], e["message"]) for e in update["userErrors"]] == [
            (["id"], "NOT_FOUND", "no such case")
        ]
    assert (await load(db, Case, theirs.id)).status == "open"
    assert len(await load_note_ids(db)) == 1

    # The thread as the supplier reads it.
    thread = data(await gql(client, supplier, CASES), "cases")["edges"][0]["node"]["notes"]
    assert thread["totalCount"] == 1
    assert thread["edges"][0]["node"] == {
        "text": "Checking the batch.",
        "author": {"slug": "alpine"},
    }


async def test_a_stale_expected_version_is_a_conflict(
    client: httpx.AsyncClient, db: Database, support: Caller
) -> None:
    customer = await make_customer(db)
    case = await make_case(db, customer, support.org, support.org)
    body = await gql(
        client,
        support,
        UPDATE,
        {"id": cid(case), "patch": {"priority": "LOW"}, "expected": 7},
        expect_errors=True,
    )
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "CONFLICT"
    assert error["extensions"].get("currentVersion") == 1
    ok = data(
        await gql(
            client, support, UPDATE, {"id": cid(case), "patch": {"priority": "LOW"}, "expected": 1}
        ),
        "updateCase",
    )
    assert (ok["case"]["priority"], ok["case"]["version"]) == ("LOW", 2)
    assert await events(db) == [("Case", "update", str(case.id))]


async def test_customer_cases_page_and_node(
    client: httpx.AsyncClient, db: Database, support: Caller
) -> None:
    customer = await make_customer(db)
    other = await make_customer(db)
    made = [
        await make_case(db, customer, support.org, support.org, subject=f"S{i}") for i in range(3)
    ]
    await make_case(db, other, support.org, support.org)
    query = """query($id: ID!, $after: String) { customer(id: $id) {
      cases(first: 2, after: $after) { totalCount
        pageInfo { hasNextPage endCursor } edges { node { id subject } } } } }"""
    first = (await gql(client, support, query, {"id": gid(customer)}))["data"]["customer"]["cases"]
    assert first["totalCount"] == 3
    assert first["pageInfo"]["hasNextPage"] is True
    rest = (
        await gql(
            client, support, query, {"id": gid(customer), "after": first["pageInfo"]["endCursor"]}
        )
    )["data"]["customer"]["cases"]
    assert rest["pageInfo"]["hasNextPage"] is False
    paged = [e["node"]["id"] for e in first["edges"] + rest["edges"]]
    assert sorted(paged) == sorted(cid(c) for c in made)
    node = await gql(client, support, ONE, {"id": cid(made[0])})
    assert node["data"]["case"] == {"id": cid(made[0]), "subject": "S0"}
    assert node["data"]["node"]["id"] == cid(made[0])


async def test_a_merge_moves_cases_and_notes_to_the_survivor(
    client: httpx.AsyncClient, db: Database, support: Caller
) -> None:
    admin = await make_caller(db, "operator", slug="operator", scopes=ADMIN_SCOPES)
    survivor = await make_customer(db)
    duplicate = await make_customer(db)
    case = await make_case(db, duplicate, support.org, support.org)
    note = CaseNote(
        case_id=case.id, customer_id=duplicate.id, organization_id=support.org.id, text="Hi."
    )
    async with db.transaction() as session:
        session.add(note)
    merge = """mutation($s: ID!, $d: ID!) { mergeCustomers(survivor: $s, duplicate: $d) {
      customer { id } userErrors { code } } }"""
    result = data(
        await gql(client, admin, merge, {"s": gid(survivor), "d": gid(duplicate)}),
        "mergeCustomers",
    )
    assert result["userErrors"] == []
    assert (await load(db, Case, case.id)).customer_id == survivor.id
    assert (await load(db, CaseNote, note.id)).customer_id == survivor.id
    moved = [e for e in await events(db) if e[0] in ("Case", "CaseNote")]
    assert moved == [("Case", "merge", str(case.id)), ("CaseNote", "merge", str(note.id))]


@pytest.mark.parametrize("kind", ["distributor", "vendor"])
async def test_distributors_and_vendors_have_no_cases(
    client: httpx.AsyncClient, db: Database, support: Caller, kind: str
) -> None:
    partner = await make_caller(db, kind)
    customer = await make_customer(db, consent_share_with_partners=True)
    await assign(db, customer, partner.org)
    case = await make_case(db, customer, partner.org, support.org)  # even if assigned to it
    introspection = """{ case: __type(name: "Case") { name }
      note: __type(name: "CaseNote") { name }
      query: __type(name: "Query") { fields { name } } }"""
    body = (await gql(client, partner, introspection))["data"]
    assert body["case"] is None and body["note"] is None
    assert not {"cases", "case"} & {f["name"] for f in body["query"]["fields"]}
    refused = await gql(client, partner, "{ cases { totalCount } }", expect_errors=True)
    assert refused["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert (
        await gql(client, partner, "query($id: ID!) { node(id: $id) { id } }", {"id": cid(case)})
    )["data"] == {"node": None}


async def test_explain_access_covers_cases_and_notes(
    client: httpx.AsyncClient, db: Database, support: Caller, supplier: Caller
) -> None:
    admin = await make_caller(db, "operator", slug="operator", scopes=ADMIN_SCOPES)
    customer = await make_customer(db, consent_share_with_partners=True)
    mine = await make_case(db, customer, supplier.org, support.org)
    note = CaseNote(
        case_id=mine.id,
        customer_id=customer.id,
        organization_id=support.org.id,
        text="Called back.",
    )
    async with db.transaction() as session:
        session.add(note)

    variables = {"org": "alpine", "resource": "CASE", "id": cid(mine)}
    explained = (await gql(client, admin, EXPLAIN, variables))["data"]["explainAccess"]
    assert explained["row"] == {"visible": True, "rules": ["suppliers-assigned-cases"]}
    fields = {f["field"]: f for f in explained["fields"]}
    assert fields["customer_ref"] == {
        "field": "customer_ref",
        "outcome": "masked",
        "mask": "pseudonym",
        "rule": "suppliers-assigned-cases",
    }
    assert fields["customer_id"]["outcome"] == "hidden"
    assert fields["status"]["outcome"] == "visible"

    by_note = {"org": "alpine", "resource": "CASE_NOTE", "id": str(note.id)}
    explained = (await gql(client, admin, EXPLAIN, by_note))["data"]["explainAccess"]
    assert explained["row"] == {"visible": True, "rules": ["suppliers-case-notes"]}
    by_note["org"] = "support"
    support_view = (await gql(client, admin, EXPLAIN, by_note))["data"]["explainAccess"]
    assert support_view["row"] == {"visible": True, "rules": ["support-case-notes"]}


async def test_statement_count_does_not_grow_with_the_cases_page(
    client: httpx.AsyncClient, db: Database, support: Caller, supplier: Caller
) -> None:
    customer = await make_customer(db, consent_share_with_partners=True)
    for i in range(8):
        case = await make_case(db, customer, supplier.org, support.org, subject=f"S{i}")
        notes = [
            CaseNote(case_id=case.id, customer_id=customer.id, organization_id=o.id, text=f"{j}")
            for j, o in enumerate((support.org, supplier.org))
        ]
        async with db.transaction() as session:
            session.add_all(notes)
    for caller in (support, supplier):
        await token_for(client, caller)
        counts = {}
        for first in (2, 8):
            with count_statements() as n:
                body = await gql(client, caller, CASES, {"first": first})
            edges = data(body, "cases")["edges"]
            assert len(edges) == first
            assert all(e["node"]["notes"]["totalCount"] == 2 for e in edges)
            counts[first] = n[0]
        assert counts[2] == counts[8], counts


async def test_filters_match_and_refuse_what_is_not_read_in_clear(
    client: httpx.AsyncClient, db: Database, support: Caller, supplier: Caller
) -> None:
    customer = await make_customer(db, consent_share_with_partners=True)
    urgent = await make_case(db, customer, supplier.org, support.org, priority="urgent")
    await make_case(db, customer, supplier.org, support.org)
    await make_case(db, customer, support.org, support.org, priority="urgent")
    query = """query($filter: CaseFilter) { cases(filter: $filter) {
      totalCount edges { node { id } } } }"""
    mine = {"priority": "URGENT", "assignedTo": "alpine"}
    found = data(await gql(client, support, query, {"filter": mine}), "cases")
    assert [e["node"]["id"] for e in found["edges"]] == [cid(urgent)]
    by_customer = {"customerId": gid(customer)}
    assert (
        data(await gql(client, support, query, {"filter": by_customer}), "cases")["totalCount"] == 3
    )
    seen = data(await gql(client, supplier, query, {"filter": {"priority": "URGENT"}}), "cases")
    assert [e["node"]["id"] for e in seen["edges"]] == [cid(urgent)]
    # The supplier reads the customer as a pseudonym only: no filter by customer at all.
    # The supplier reads the customer as a pseudonym only: its schema has no filter by
    # customer, and the hub refuses one too (which rows match would tell who it is).
    refused = await gql(client, supplier, query, {"filter": by_customer}, expect_errors=True)
    assert [e["extensions"]["code"] for e in refused["errors"]] == ["BAD_USER_INPUT"]
    caller = Principal(
        client_id=supplier.client_id,
        organization_id=supplier.org.id,
        organization_slug="alpine",
        organization_kind=OrgKind.SUPPLIER,
        scopes=frozenset(ALL_SCOPES),
        attributes={"products": [PRODUCT]},
    )
    async with db.session() as session:
        with pytest.raises(BadInputError):
            await cases.count_cases(session, caller, cases.CaseFilter(customer_id=customer.id))
        assert await cases.count_cases(session, caller, cases.CaseFilter(priority="urgent")) == 1
