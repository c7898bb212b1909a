"""The sharing policy's admin API (DESIGN §4) over HTTP with real tokens: validate,
preview, publish, roll back, versions, diff and explain for `hub:admin` operators; refused
to every other token without revealing what exists."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from hub import sharing
from hub.access import access
from hub.db import Database
from hub.models import AuditEvent, Customer, PolicyVersion
from tests.conftest import ALL_SCOPES, Caller, gql, make_caller
from tests.hub.factories import assign, gid, make_customer

ADMIN_SCOPES = [*ALL_SCOPES, "hub:admin"]
DEFAULT = sharing.default_source()
NO_COMPANY = DEFAULT.replace(
    "      visible: [id, kind, name, company, city, region, country, segment, lifecycle_stage,",
    "      visible: [id, kind, name, city, region, country, segment, lifecycle_stage,",
)
BREAKS_GUARDRAIL = DEFAULT.replace(
    "\nexpect:\n",
    "\n  - name: distributors-every-customer\n"
    "    subjects: [{kind: distributor}]\n"
    "    resource: Customer\n"
    "    read: {visible: [id, name]}\n"
    "\nexpect:\n",
)
INVALID = "rules:\n  - name: r\n    subjects: [{kind: operator}]\n    resource: Nope\n"

PROBLEM = "problems { kind message line column rule }"
VERSION = "number action restores author reason sha256 source"
PAYLOAD = f"version {{ {VERSION} }} {PROBLEM} userErrors {{ field message code }}"

VALIDATE = f"""query($source: String!, $format: PolicyFormat) {{
  validatePolicy(source: $source, format: $format) {{ valid {PROBLEM} }} }}"""
PREVIEW = f"""query($source: String!) {{
  previewPolicy(source: $source) {{ {PROBLEM} organizations {{ organization kind
    resources {{ resource fieldsGained fieldsLost rowsGained rowsLost }} }} }} }}"""
VERSIONS = f"{{ policyVersions {{ {VERSION} createdAt }} }}"
DIFF = """query($old: Int!, $new: Int!) {
  diffPolicyVersions(old: $old, new: $new) { old new rules { name change details } text } }"""
EXPLAIN = """query($org: String!, $resource: PolicyResource!, $id: String!) {
  explainAccess(organization: $org, resource: $resource, id: $id) {
    version organization resource id row { visible rules }
    fields { field outcome mask rule } rules { name effect applies rows } } }"""
PUBLISH = f"""mutation($source: String!, $reason: String!, $expected: Int) {{
  publishPolicy(source: $source, reason: $reason, expectedVersion: $expected) {{
    {PAYLOAD} }} }}"""
ROLLBACK = f"""mutation($version: Int!, $reason: String!) {{
  rollbackPolicy(version: $version, reason: $reason) {{ {PAYLOAD} }} }}"""


@pytest.fixture(autouse=True)
def keep_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    """A version a test puts in force does not outlive it."""
    monkeypatch.setattr(access, "rules", access.rules)


@pytest.fixture
async def admin(db: Database) -> Caller:
    return await make_caller(db, "operator", scopes=ADMIN_SCOPES, slug="operator")


@pytest.fixture
async def acme(db: Database) -> Caller:
    return await make_caller(db, "distributor", slug="acme")


async def shared_customer(db: Database, acme: Caller) -> Customer:
    customer = await make_customer(db, consent_share_with_partners=True)
    await assign(db, customer, acme.org)
    return customer


async def stored(db: Database) -> tuple[list[int], int]:
    """The stored version numbers and how many policy changes were audited."""
    async with db.session() as session:
        numbers = [v.number for v in await sharing.list_versions(session)]
        audited = select(func.count()).where(
            AuditEvent.action.in_(["policy.publish", "policy.rollback"])  # type: ignore[attr-defined]
        )
        return numbers, int((await session.execute(audited)).scalar_one())


# --- administrators -----------------------------------------------------------------------


async def test_validate_policy(client: httpx.AsyncClient, admin: Caller) -> None:
    body = await gql(client, admin, VALIDATE, {"source": DEFAULT})
    assert body["data"]["validatePolicy"] == {"valid": True, "problems": []}

    body = await gql(client, admin, VALIDATE, {"source": INVALID})
    result = body["data"]["validatePolicy"]
    assert result["valid"] is False
    assert [(p["kind"], p["line"], p["column"]) for p in result["problems"]] == [
        ("validation", 4, 15)
    ]
    assert "unknown resource 'Nope'" in result["problems"][0]["message"]

    body = await gql(client, admin, VALIDATE, {"source": '{"rules": [}', "format": "JSON"})
    assert body["data"]["validatePolicy"]["problems"] == [
        {
            "kind": "syntax",
            "message": "invalid JSON: Expecting value",
            "line": 1,
            "column": 12,
            "rule": None,
        }
    ]


async def test_preview_policy(
    client: httpx.AsyncClient, db: Database, admin: Caller, acme: Caller
) -> None:
    await shared_customer(db, acme)
    await make_customer(db, consent_share_with_partners=False)
    body = await gql(client, admin, PREVIEW, {"source": NO_COMPANY})
    assert body["data"]["previewPolicy"] == {
        "problems": [],
        "organizations": [  # only the organizations whose access changes
            {
                "organization": "acme",
                "kind": "distributor",
                "resources": [
                    {
                        "resource": "Customer",
                        "fieldsGained": [],
                        "fieldsLost": ["company"],
                        "rowsGained": 0,
                        "rowsLost": 0,
                    }
                ],
            }
        ],
    }

    body = await gql(client, admin, PREVIEW, {"source": BREAKS_GUARDRAIL})
    preview = body["data"]["previewPolicy"]
    assert [(p["kind"], p["rule"]) for p in preview["problems"]] == [
        ("guardrail", "distributors-every-customer")
    ]
    # acme already sees id and name, and the guardrail still holds on the rows.
    assert preview["organizations"] == []

    body = await gql(client, admin, PREVIEW, {"source": INVALID})
    assert body["data"]["previewPolicy"]["organizations"] == []
    assert [p["kind"] for p in body["data"]["previewPolicy"]["problems"]] == ["validation"]
    assert await stored(db) == ([1], 0)


async def test_publish_diff_and_roll_back(
    client: httpx.AsyncClient, db: Database, admin: Caller
) -> None:
    body = await gql(client, admin, PUBLISH, {"source": NO_COMPANY, "reason": "no company"})
    payload = body["data"]["publishPolicy"]
    assert (payload["problems"], payload["userErrors"]) == ([], [])
    assert payload["version"] == {
        "number": 2,
        "action": "publish",
        "restores": None,
        "author": f"operator/{admin.client_id}",
        "reason": "no company",
        "sha256": hashlib.sha256(NO_COMPANY.encode()).hexdigest(),
        "source": NO_COMPANY,
    }

    body = await gql(client, admin, DIFF, {"old": 1, "new": 2})
    diff = body["data"]["diffPolicyVersions"]
    assert (diff["old"], diff["new"]) == (1, 2)
    assert diff["rules"] == [
        {
            "name": "distributors-assigned-customers",
            "change": "changed",
            "details": ["read.visible: -company"],
        }
    ]
    assert diff["text"].startswith("--- version 1\n+++ version 2\n")

    body = await gql(client, admin, ROLLBACK, {"version": 1, "reason": "back"})
    payload = body["data"]["rollbackPolicy"]
    assert (payload["problems"], payload["userErrors"]) == ([], [])
    version = payload["version"]
    assert (version["number"], version["action"], version["restores"]) == (3, "rollback", 1)
    assert version["source"] == DEFAULT

    body = await gql(client, admin, VERSIONS)
    listed = body["data"]["policyVersions"]
    assert [(v["number"], v["action"], v["restores"]) for v in listed] == [
        (3, "rollback", 1),
        (2, "publish", None),
        (1, "install", None),
    ]
    assert listed[0]["sha256"] == listed[2]["sha256"]
    assert all(v["createdAt"] for v in listed)
    assert await stored(db) == ([3, 2, 1], 2)


async def companies_seen(client: httpx.AsyncClient, partner: Caller) -> list[str | None] | None:
    """The companies ``partner`` reads, or ``None`` when its schema has no such field."""
    query = "{ customers { edges { node { company } } } }"
    body = await gql(client, partner, query, expect_errors=True)
    if "errors" in body:
        assert body["errors"][0]["message"].startswith("Cannot query field 'company'"), body
        return None
    return [edge["node"]["company"] for edge in body["data"]["customers"]["edges"]]


async def eventually_seen(
    client: httpx.AsyncClient, partner: Caller, expected: list[str | None] | None
) -> list[str | None] | None:
    """What ``partner`` reads once it is ``expected``, or after 5 seconds."""
    for _ in range(50):
        seen = await companies_seen(client, partner)
        if seen == expected:
            break
        await asyncio.sleep(0.1)
    return seen


async def test_a_published_version_reaches_partners_within_seconds(
    client: httpx.AsyncClient, db: Database, admin: Caller, acme: Caller
) -> None:
    customer = await shared_customer(db, acme)
    assert await companies_seen(client, acme) == [customer.company]

    await gql(client, admin, PUBLISH, {"source": NO_COMPANY, "reason": "no company"})
    assert await eventually_seen(client, acme, None) is None  # gone from acme's schema

    await gql(client, admin, ROLLBACK, {"version": 1, "reason": "back"})
    assert await eventually_seen(client, acme, [customer.company]) == [customer.company]


async def test_a_refused_publish_returns_problems_and_stores_nothing(
    client: httpx.AsyncClient, db: Database, admin: Caller
) -> None:
    body = await gql(client, admin, PUBLISH, {"source": BREAKS_GUARDRAIL, "reason": "x"})
    payload = body["data"]["publishPolicy"]
    assert payload["version"] is None
    assert payload["userErrors"] == []
    assert [(p["kind"], p["rule"]) for p in payload["problems"]] == [
        ("guardrail", "distributors-every-customer")
    ]
    assert "guardrail 'partners need consent'" in payload["problems"][0]["message"]
    assert payload["problems"][0]["line"] > 0

    body = await gql(client, admin, PUBLISH, {"source": INVALID, "reason": "x"})
    payload = body["data"]["publishPolicy"]
    assert payload["version"] is None
    assert [(p["kind"], p["line"], p["column"]) for p in payload["problems"]] == [
        ("validation", 4, 15)
    ]

    body = await gql(client, admin, PUBLISH, {"source": NO_COMPANY, "reason": " "})
    payload = body["data"]["publishPolicy"]
    assert payload["version"] is None
    assert [(p["kind"], p["message"]) for p in payload["problems"]] == [
        ("input", "reason is empty")
    ]

    body = await gql(client, admin, ROLLBACK, {"version": 9, "reason": "x"})
    payload = body["data"]["rollbackPolicy"]
    assert payload["version"] is None
    assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [(["version"], "NOT_FOUND")]
    assert await stored(db) == ([1], 0)


async def test_publish_against_a_stale_version_conflicts(
    client: httpx.AsyncClient, db: Database, admin: Caller
) -> None:
    variables = {"source": NO_COMPANY, "reason": "x", "expected": 2}
    body = await gql(client, admin, PUBLISH, variables, expect_errors=True)
    assert body["data"] is None
    [error] = body["errors"]
    assert error["extensions"] == {"code": "CONFLICT", "currentVersion": 1}
    body = await gql(client, admin, PUBLISH, {**variables, "expected": 1})
    assert body["data"]["publishPolicy"]["version"]["number"] == 2


async def test_explain_access(
    client: httpx.AsyncClient, db: Database, admin: Caller, acme: Caller
) -> None:
    customer = await shared_customer(db, acme)
    private = await make_customer(db, consent_share_with_partners=False)
    await assign(db, private, acme.org)

    variables = {"org": "acme", "resource": "CUSTOMER", "id": gid(customer)}
    explained = (await gql(client, admin, EXPLAIN, variables))["data"]["explainAccess"]
    by_uuid = await gql(client, admin, EXPLAIN, {**variables, "id": str(customer.id)})
    assert by_uuid["data"]["explainAccess"] == explained
    assert (explained["version"], explained["organization"], explained["resource"]) == (
        1,
        "acme",
        "Customer",
    )
    assert explained["id"] == str(customer.id)
    assert explained["row"] == {"visible": True, "rules": ["distributors-assigned-customers"]}
    fields = {f["field"]: f for f in explained["fields"]}
    assert fields["email"] == {
        "field": "email",
        "outcome": "masked",
        "mask": "partial_email",
        "rule": "distributors-assigned-customers",
    }
    assert fields["lifetime_value"] == {
        "field": "lifetime_value",
        "outcome": "hidden",
        "mask": None,
        "rule": "guardrail:partners need consent",
    }
    rules = {r["name"]: r for r in explained["rules"]}
    assert rules["distributors-assigned-customers"] == {
        "name": "distributors-assigned-customers",
        "effect": "allow",
        "applies": True,
        "rows": True,
    }

    hidden = await gql(client, admin, EXPLAIN, {**variables, "id": gid(private)})
    explanation = hidden["data"]["explainAccess"]
    assert explanation["row"] == {"visible": False, "rules": ["guardrail:partners need consent"]}
    assert {f["outcome"] for f in explanation["fields"]} == {"hidden"}


@pytest.mark.parametrize(
    ("variables", "code"),
    [
        ({"org": "nobody"}, "NOT_FOUND"),
        ({"id": str(uuid.uuid4())}, "NOT_FOUND"),
        ({"id": "not-an-id"}, "BAD_USER_INPUT"),
    ],
    ids=["organization", "record", "malformed-id"],
)
async def test_explain_access_of_something_unknown(
    client: httpx.AsyncClient,
    db: Database,
    admin: Caller,
    acme: Caller,
    variables: dict[str, str],
    code: str,
) -> None:
    customer = await shared_customer(db, acme)
    given = {"org": "acme", "resource": "CUSTOMER", "id": gid(customer), **variables}
    body = await gql(client, admin, EXPLAIN, given, expect_errors=True)
    assert body["data"] is None
    assert [e["extensions"]["code"] for e in body["errors"]] == [code]


# --- everyone else ------------------------------------------------------------------------


def operations(customer: Customer) -> list[tuple[str, str, dict[str, Any], dict[str, Any]]]:
    """Each operation with arguments naming things that exist, and things that do not."""
    explain = {"org": "acme", "resource": "CUSTOMER", "id": gid(customer)}
    missing = {"org": "nobody", "resource": "CUSTOMER", "id": str(uuid.uuid4())}
    return [
        ("validatePolicy", VALIDATE, {"source": DEFAULT}, {"source": INVALID}),
        ("previewPolicy", PREVIEW, {"source": NO_COMPANY}, {"source": INVALID}),
        ("policyVersions", VERSIONS, {}, {}),
        ("diffPolicyVersions", DIFF, {"old": 1, "new": 1}, {"old": 1, "new": 99}),
        ("explainAccess", EXPLAIN, explain, missing),
        (
            "publishPolicy",
            PUBLISH,
            {"source": NO_COMPANY, "reason": "mine"},
            {"source": INVALID, "reason": "x"},
        ),
        (
            "rollbackPolicy",
            ROLLBACK,
            {"version": 1, "reason": "mine"},
            {"version": 99, "reason": "mine"},
        ),
    ]


def assert_refused(body: dict[str, Any], field: str) -> None:
    """No data; FORBIDDEN, or ``field`` (and the admin types) unknown to the caller's
    schema: the per-audience schema leaves them out for all but administrators."""
    assert body.get("data") is None, body
    errors = body["errors"]
    codes = {e["extensions"]["code"] for e in errors}
    if codes == {"FORBIDDEN"}:
        assert [e["message"] for e in errors] == ["this operation is for hub administrators"]
        return
    assert codes == {"GRAPHQL_VALIDATION_FAILED"}, errors
    messages = [e["message"] for e in errors]
    assert any(m.startswith(f"Cannot query field '{field}'") for m in messages), messages
    assert all(m.startswith(("Cannot query field", "Unknown type 'Policy")) for m in messages)


@pytest.mark.parametrize("who", ["partner", "operator without hub:admin"])
async def test_everyone_else_is_refused_alike(
    client: httpx.AsyncClient, db: Database, acme: Caller, who: str
) -> None:
    customer = await shared_customer(db, acme)
    caller = acme if who == "partner" else await make_caller(db, "operator", slug="operator")
    for field, query, existing, missing in operations(customer):
        seen = await gql(client, caller, query, existing, expect_errors=True)
        assert_refused(seen, field)
        # Whether the organization, record or version exists is not revealed.
        assert await gql(client, caller, query, missing, expect_errors=True) == seen, query
    assert await stored(db) == ([1], 0)
    async with db.session() as session:
        count = select(func.count()).select_from(PolicyVersion)
        assert (await session.execute(count)).scalar_one() == 1


async def test_a_partner_cannot_get_hub_admin(
    client: httpx.AsyncClient, db: Database, acme: Caller
) -> None:
    customer = await shared_customer(db, acme)
    asked = await client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "scope": "customers:read hub:admin"},
        auth=(acme.client_id, acme.secret),
    )
    assert asked.status_code == 400
    assert asked.json()["error"] == "invalid_scope"
    for field, query, existing, _ in operations(customer):
        assert_refused(await gql(client, acme, query, existing, expect_errors=True), field)
