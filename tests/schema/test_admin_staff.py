"""Admin operations on staff users: create (initial password shown once), list, disable."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from hub.db import Database
from hub.models import StaffUser
from tests.conftest import ALL_SCOPES, Caller, gql, make_caller, make_org
from tests.hub.factories import count_rows

ADMIN_SCOPES = [*ALL_SCOPES, "hub:admin"]
USER = "email name organization roles active createdAt"
ERRORS = "userErrors { field message code }"
CREATE = f"""mutation($input: CreateStaffUserInput!) {{
  createStaffUser(input: $input) {{ staffUser {{ {USER} }} initialPassword {ERRORS} }} }}"""
LIST = f"query($org: String!) {{ staffUsers(organization: $org) {{ {USER} }} }}"
DISABLE = f"""mutation($email: String!) {{
  disableStaffUser(email: $email) {{ staffUser {{ {USER} }} {ERRORS} }} }}"""


@pytest.fixture
async def admin(db: Database) -> Caller:
    return await make_caller(db, "operator", scopes=ADMIN_SCOPES, slug="operator")


def new_user(**overrides: object) -> dict[str, Any]:
    return {
        "input": {
            "organization": "operator",
            "email": " Ada@Example.COM ",
            "name": "Ada Lovelace",
            "roles": ["policy_editor", "admin"],
            **overrides,
        }
    }


async def test_create_list_and_disable(
    client: httpx.AsyncClient, db: Database, admin: Caller
) -> None:
    created = (await gql(client, admin, CREATE, new_user()))["data"]["createStaffUser"]
    assert created["userErrors"] == []
    assert created["staffUser"]["email"] == "ada@example.com"
    assert created["staffUser"]["roles"] == ["admin", "policy_editor"]
    password = created["initialPassword"]
    assert isinstance(password, str)
    assert len(password) >= 20

    listed = (await gql(client, admin, LIST, {"org": "operator"}))["data"]["staffUsers"]
    assert [u["email"] for u in listed] == ["ada@example.com"]
    assert "password" not in str(listed).lower()

    disabled = (await gql(client, admin, DISABLE, {"email": "ADA@example.com"}))["data"]
    assert disabled["disableStaffUser"]["staffUser"]["active"] is False


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"organization": "acme-distribution"}, "only operator and department"),
        ({"roles": ["root"]}, "unknown role"),
        ({"roles": []}, "at least one role"),
        ({"email": "not-an-address"}, "not an email address"),
        ({"organization": "nobody"}, "no such organization"),
        ({"name": "  "}, "1 to 200 characters"),
    ],
)
async def test_bad_input_is_a_user_error_and_writes_nothing(
    client: httpx.AsyncClient,
    db: Database,
    admin: Caller,
    overrides: dict[str, object],
    fragment: str,
) -> None:
    await make_org(db, "distributor", "acme-distribution")
    body = await gql(client, admin, CREATE, new_user(**overrides))
    payload = body["data"]["createStaffUser"]
    assert payload["staffUser"] is None
    assert payload["initialPassword"] is None
    assert fragment in payload["userErrors"][0]["message"]
    assert await count_rows(db, StaffUser) == 0


async def test_duplicate_email_is_refused(
    client: httpx.AsyncClient, db: Database, admin: Caller
) -> None:
    await gql(client, admin, CREATE, new_user())
    again = await gql(client, admin, CREATE, new_user(email="ADA@example.com"))
    assert "already exists" in again["data"]["createStaffUser"]["userErrors"][0]["message"]
    assert await count_rows(db, StaffUser) == 1


@pytest.mark.parametrize(
    ("kind", "scopes"),
    [("operator", ALL_SCOPES), ("department", ALL_SCOPES), ("distributor", ALL_SCOPES)],
)
async def test_non_admins_are_forbidden(
    client: httpx.AsyncClient, db: Database, kind: str, scopes: list[str]
) -> None:
    caller = await make_caller(db, kind, scopes=scopes)
    calls: list[tuple[str, dict[str, Any]]] = [
        (CREATE, new_user()),
        (LIST, {"org": "operator"}),
        (DISABLE, {"email": "ada@example.com"}),
    ]
    for query, variables in calls:
        body = await gql(client, caller, query, variables, expect_errors=True)
        assert "data" not in body
        # Not in a non-admin's schema (DESIGN §5): unknown rather than refused.
        assert {e["extensions"]["code"] for e in body["errors"]} == {"GRAPHQL_VALIDATION_FAILED"}
    assert await count_rows(db, StaffUser) == 0


async def test_disabling_an_unknown_user_is_not_found(
    client: httpx.AsyncClient, db: Database, admin: Caller
) -> None:
    body = await gql(client, admin, DISABLE, {"email": "nobody@example.com"})
    assert body["data"]["disableStaffUser"]["userErrors"] == [
        {"field": ["email"], "message": "no such staff user", "code": "NOT_FOUND"}
    ]
