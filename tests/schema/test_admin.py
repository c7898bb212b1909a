"""Admin operations (issue 3 §8): organizations and clients for operator `hub:admin`
clients, FORBIDDEN to every other token, user errors for bad input, nothing half-written."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from hub.db import Database
from hub.models import Client, Organization
from hub.oauth.clients import hash_secret, new_client_id
from tests.conftest import ALL_SCOPES, Caller, gql, make_caller, make_org
from tests.hub.factories import count_rows
from tests.hub.oauth_helpers import new_key, public_jwks

ADMIN_SCOPES = [*ALL_SCOPES, "hub:admin"]
ORG = "slug name kind attributes active"
CLIENT = "clientId name organization scopes authMethod active previousSecretValidUntil"
ERRORS = "userErrors { field message code }"

ORGANIZATIONS = f"{{ organizations {{ {ORG} }} }}"
CLIENTS = f"query($org: String!) {{ clients(organization: $org) {{ {CLIENT} }} }}"
CREATE_ORG = f"""mutation($input: CreateOrganizationInput!) {{
  createOrganization(input: $input) {{ organization {{ {ORG} }} {ERRORS} }} }}"""
UPDATE_ORG = f"""mutation($slug: String!, $patch: OrganizationPatch!) {{
  updateOrganization(slug: $slug, patch: $patch) {{ organization {{ {ORG} }} {ERRORS} }} }}"""
DISABLE_ORG = f"""mutation($slug: String!) {{
  disableOrganization(slug: $slug) {{ organization {{ {ORG} }} {ERRORS} }} }}"""
REGISTER = f"""mutation($input: RegisterClientInput!) {{
  registerClient(input: $input) {{ client {{ {CLIENT} }} clientSecret {ERRORS} }} }}"""
ROTATE = f"""mutation($id: String!, $overlap: Int!) {{
  rotateClientSecret(clientId: $id, overlapSeconds: $overlap) {{
    client {{ {CLIENT} }} clientSecret {ERRORS} }} }}"""
DISABLE_CLIENT = f"""mutation($id: String!) {{
  disableClient(clientId: $id) {{ client {{ {CLIENT} }} {ERRORS} }} }}"""


@pytest.fixture
async def admin(db: Database) -> Caller:
    return await make_caller(db, "operator", scopes=ADMIN_SCOPES, slug="operator")


@pytest.fixture
async def partner(db: Database) -> Caller:
    return await make_caller(db, "distributor", slug="acme-distribution")


def user_errors(body: dict[str, Any], field: str) -> list[tuple[list[str], str]]:
    return [(e["field"], e["code"]) for e in body["data"][field]["userErrors"]]


async def token_status(http: httpx.AsyncClient, client_id: str, secret: str) -> int:
    response = await http.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret)
    )
    return response.status_code


async def test_organization_operations(
    client: httpx.AsyncClient, db: Database, admin: Caller, partner: Caller
) -> None:
    listed = await gql(client, admin, ORGANIZATIONS)
    assert {o["slug"] for o in listed["data"]["organizations"]} == {
        "operator",
        "acme-distribution",
    }

    new = {"slug": "globex", "name": " Globex ", "kind": "SUPPLIER", "attributes": {"tier": 2}}
    created = await gql(client, admin, CREATE_ORG, {"input": new})
    assert created["data"]["createOrganization"] == {
        "organization": {
            "slug": "globex",
            "name": "Globex",
            "kind": "SUPPLIER",
            "attributes": {"tier": 2},
            "active": True,
        },
        "userErrors": [],
    }

    patch = {"name": "Globex Corp", "attributes": {"tier": 1, "region": "EU"}}
    updated = await gql(client, admin, UPDATE_ORG, {"slug": "globex", "patch": patch})
    org = updated["data"]["updateOrganization"]["organization"]
    assert (org["name"], org["attributes"], org["kind"]) == (
        "Globex Corp",
        {"tier": 1, "region": "EU"},
        "SUPPLIER",
    )

    disabled = await gql(client, admin, DISABLE_ORG, {"slug": "globex"})
    assert disabled["data"]["disableOrganization"]["organization"]["active"] is False
    listed = await gql(client, admin, ORGANIZATIONS)
    assert {o["slug"]: o["active"] for o in listed["data"]["organizations"]}["globex"] is False


async def test_client_operations(client: httpx.AsyncClient, db: Database, admin: Caller) -> None:
    await make_org(db, "vendor", "initech")
    registered = await gql(
        client,
        admin,
        REGISTER,
        {"input": {"organization": "initech", "name": "ERP", "scopes": ["customers:read"]}},
    )
    payload = registered["data"]["registerClient"]
    client_id, secret = payload["client"]["clientId"], payload["clientSecret"]
    assert payload["client"]["scopes"] == ["customers:read"]
    assert payload["client"]["authMethod"] == "client_secret_basic"
    assert len(secret) >= 43
    assert await token_status(client, client_id, secret) == 200

    jwks = public_jwks(new_key())
    keyed = await gql(
        client,
        admin,
        REGISTER,
        {"input": {"organization": "initech", "name": "Keys", "scopes": [], "jwks": jwks}},
    )
    assert keyed["data"]["registerClient"]["clientSecret"] is None
    assert keyed["data"]["registerClient"]["client"]["authMethod"] == "private_key_jwt"

    rotated = await gql(client, admin, ROTATE, {"id": client_id, "overlap": 600})
    new_secret = rotated["data"]["rotateClientSecret"]["clientSecret"]
    assert new_secret not in (None, secret)
    assert rotated["data"]["rotateClientSecret"]["client"]["previousSecretValidUntil"]
    assert await token_status(client, client_id, new_secret) == 200
    assert await token_status(client, client_id, secret) == 200  # within the overlap

    listed = await gql(client, admin, CLIENTS, {"org": "initech"})
    assert sorted(c["name"] for c in listed["data"]["clients"]) == ["ERP", "Keys"]
    text = json.dumps(listed)
    for leaked in (secret, new_secret, hash_secret(secret), hash_secret(new_secret)):
        assert leaked not in text

    disabled = await gql(client, admin, DISABLE_CLIENT, {"id": client_id})
    assert disabled["data"]["disableClient"]["client"]["active"] is False
    assert await token_status(client, client_id, new_secret) == 401


async def non_admin(db: Database, who: str) -> Caller:
    if who == "operator without hub:admin":
        return await make_caller(db, "operator", slug="operator-2")
    if who == "department without hub:admin":
        return await make_caller(db, "department")
    return await make_caller(db, "distributor")


OPERATIONS: list[tuple[str, dict[str, Any]]] = [
    (ORGANIZATIONS, {}),
    (CLIENTS, {"org": "operator"}),
    (CLIENTS, {"org": "no-such-org"}),
    (CREATE_ORG, {"input": {"slug": "x", "name": "X", "kind": "VENDOR"}}),
    (CREATE_ORG, {"input": {"slug": "operator", "name": "", "kind": "VENDOR"}}),
    (UPDATE_ORG, {"slug": "operator", "patch": {"name": "Mine"}}),
    (UPDATE_ORG, {"slug": "no-such-org", "patch": {"name": "Mine"}}),
    (DISABLE_ORG, {"slug": "operator"}),
    (REGISTER, {"input": {"organization": "operator", "name": "n", "scopes": ["hub:admin"]}}),
    (ROTATE, {"id": "ADMIN", "overlap": 0}),
    (ROTATE, {"id": "hub_unknown", "overlap": 0}),
    (DISABLE_CLIENT, {"id": "ADMIN"}),
]


@pytest.mark.parametrize(
    "who",
    ["operator without hub:admin", "department without hub:admin", "partner"],
)
async def test_non_admins_are_forbidden(
    client: httpx.AsyncClient, db: Database, admin: Caller, who: str
) -> None:
    caller = await non_admin(db, who)
    orgs_before = await count_rows(db, Organization)
    for query, variables in OPERATIONS:
        if variables.get("id") == "ADMIN":
            variables = {**variables, "id": admin.client_id}
        body = await gql(client, caller, query, variables, expect_errors=True)
        assert body["data"] is None, (query, body)
        assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"]
        assert body["errors"][0]["message"] == "this operation is for hub administrators"
    assert await count_rows(db, Organization) == orgs_before
    assert await token_status(client, admin.client_id, admin.secret) == 200


async def test_department_admin_may_administer(client: httpx.AsyncClient, db: Database) -> None:
    department = await make_caller(db, "department", scopes=ADMIN_SCOPES)
    body = await gql(client, department, ORGANIZATIONS)
    assert [o["slug"] for o in body["data"]["organizations"]] == [department.org.slug]


async def test_partner_cannot_get_hub_admin(
    client: httpx.AsyncClient, db: Database, partner: Caller
) -> None:
    # Even a row stored with hub:admin (bypassing every registration check) is narrowed.
    async with db.transaction() as session:
        session.add(
            Client(
                client_id=(client_id := new_client_id()),
                organization_id=partner.org.id,
                name="forged",
                secret_hash=hash_secret("s3cret-value"),
                grant_types=["client_credentials"],
                scopes=ADMIN_SCOPES,
            )
        )
    form = {"grant_type": "client_credentials", "scope": "hub:admin"}
    asked = await client.post("/oauth/token", data=form, auth=(client_id, "s3cret-value"))
    assert asked.status_code == 400
    assert asked.json()["error"] == "invalid_scope"
    default = await client.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, "s3cret-value")
    )
    assert default.status_code == 200
    assert "hub:admin" not in default.json()["scope"].split()
    forged = Caller(partner.org, client_id, "s3cret-value", default.json()["access_token"])
    body = await gql(client, forged, ORGANIZATIONS, expect_errors=True)
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"

    metadata = (await client.get("/.well-known/oauth-authorization-server")).json()
    assert "hub:admin" not in metadata["scopes_supported"]


async def test_validation_errors_are_user_errors(
    client: httpx.AsyncClient, db: Database, admin: Caller, partner: Caller
) -> None:
    orgs_before = await count_rows(db, Organization)
    bad = {"slug": "Bad Slug!", "name": "  ", "kind": "OPERATOR", "attributes": [1, 2]}
    body = await gql(client, admin, CREATE_ORG, {"input": bad})
    assert sorted(user_errors(body, "createOrganization")) == [
        (["input", "attributes"], "INVALID"),
        (["input", "kind"], "NOT_ALLOWED"),  # there is already an operator
        (["input", "name"], "REQUIRED"),
        (["input", "slug"], "INVALID"),
    ]
    taken = {"slug": "acme-distribution", "name": "Again", "kind": "VENDOR"}
    body = await gql(client, admin, CREATE_ORG, {"input": taken})
    assert user_errors(body, "createOrganization") == [(["input", "slug"], "TAKEN")]
    assert await count_rows(db, Organization) == orgs_before

    body = await gql(client, admin, UPDATE_ORG, {"slug": "nope", "patch": {"name": "X"}})
    assert user_errors(body, "updateOrganization") == [(["slug"], "NOT_FOUND")]
    body = await gql(client, admin, UPDATE_ORG, {"slug": partner.org.slug, "patch": {"name": ""}})
    assert user_errors(body, "updateOrganization") == [(["patch", "name"], "REQUIRED")]
    body = await gql(client, admin, DISABLE_ORG, {"slug": "operator"})
    assert user_errors(body, "disableOrganization") == [(["slug"], "NOT_ALLOWED")]

    clients_before = await count_rows(db, Client)
    cases: list[tuple[dict[str, Any], list[tuple[list[str], str]]]] = [
        (
            {"organization": partner.org.slug, "name": "x", "scopes": ["hub:admin"]},
            [(["input", "scopes"], "NOT_ALLOWED")],
        ),
        (
            {"organization": "nope", "name": "", "scopes": ["nope:nope"]},
            [
                (["input", "name"], "REQUIRED"),
                (["input", "organization"], "NOT_FOUND"),
                (["input", "scopes"], "INVALID"),
            ],
        ),
        (
            {"organization": partner.org.slug, "name": "x", "scopes": [], "jwks": {"keys": 1}},
            [(["input", "jwks"], "INVALID")],
        ),
    ]
    for given, expected in cases:
        body = await gql(client, admin, REGISTER, {"input": given})
        assert sorted(user_errors(body, "registerClient")) == expected
        assert body["data"]["registerClient"]["clientSecret"] is None
    assert await count_rows(db, Client) == clients_before

    body = await gql(client, admin, ROTATE, {"id": partner.client_id, "overlap": -1})
    assert user_errors(body, "rotateClientSecret") == [(["overlapSeconds"], "OUT_OF_RANGE")]
    assert await token_status(client, partner.client_id, partner.secret) == 200
    body = await gql(client, admin, DISABLE_CLIENT, {"id": "hub_unknown"})
    assert user_errors(body, "disableClient") == [(["clientId"], "NOT_FOUND")]


async def test_disabling_an_organization_stops_its_clients(
    client: httpx.AsyncClient, admin: Caller, partner: Caller
) -> None:
    await gql(client, partner, "{ customers(first: 1) { totalCount } }")  # token works
    await gql(client, admin, DISABLE_ORG, {"slug": partner.org.slug})

    refused = await client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(partner.client_id, partner.secret),
    )
    assert refused.status_code == 401
    assert refused.json()["error"] == "invalid_client"
    # The token issued before is refused at once (tests run with client_cache_ttl=0).
    body = await gql(client, partner, "{ customers(first: 1) { totalCount } }", expect_errors=True)
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
