"""Admin operations (issue 3 §8): organizations and clients for operator `hub:admin`
clients, absent from every other token's schema (unknown exactly like names that exist
nowhere), refused by the hub itself for anyone else, user errors for bad input, nothing
half-written."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from graphql import (
    FieldNode,
    ListTypeNode,
    NamedTypeNode,
    NonNullTypeNode,
    OperationDefinitionNode,
    TypeNode,
    parse,
)
from sqlalchemy.ext.asyncio import AsyncSession

from hub.access import access
from hub.admin import clients as admin_clients
from hub.admin import organizations as admin_orgs
from hub.db import Database
from hub.errors import ForbiddenError
from hub.models import Client, Organization, OrgKind
from hub.oauth.clients import hash_secret, new_client_id
from hub.principal import Principal
from tests.conftest import ALL_SCOPES, Caller, gql, make_caller, make_org, token_for
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


BUILT_IN = frozenset({"String", "Int", "ID", "Boolean", "Float"})


def _named(type_node: TypeNode) -> str:
    while isinstance(type_node, NonNullTypeNode | ListTypeNode):
        type_node = type_node.type
    assert isinstance(type_node, NamedTypeNode)
    return type_node.name.value


def admin_names(query: str) -> list[str]:
    """The operation's root fields and the non-scalar types of its variables."""
    [operation] = parse(query).definitions
    assert isinstance(operation, OperationDefinitionNode)
    names = [f.name.value for f in operation.selection_set.selections if isinstance(f, FieldNode)]
    types = {_named(v.type) for v in operation.variable_definitions or ()}
    return names + sorted(types - BUILT_IN)


def stand_ins(names: list[str]) -> dict[str, str]:
    """A name that exists nowhere for each of ``names``: same length (error locations stay
    comparable), a letter of its own (no stand-in is part of another)."""
    found = {}
    for letter, name in zip("zyxwvutsr", names, strict=False):
        stand_in = letter * len(name)
        found[name] = stand_in.capitalize() if name[0].isupper() else stand_in
    return found


async def post(
    http: httpx.AsyncClient, caller: Caller, query: str, variables: dict[str, Any]
) -> tuple[int, dict[str, Any]]:
    token = caller.token or await token_for(http, caller)
    response = await http.post(
        "/graphql",
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {token}", "Accept": "application/graphql-response+json"},
    )
    return response.status_code, response.json()


@pytest.mark.parametrize(
    "who",
    ["operator without hub:admin", "department without hub:admin", "partner"],
)
async def test_admin_operations_are_unknown_to_non_admins(
    client: httpx.AsyncClient, db: Database, admin: Caller, who: str
) -> None:
    caller = await non_admin(db, who)
    orgs_before = await count_rows(db, Organization)
    clients_before = await count_rows(db, Client)
    for query, variables in OPERATIONS:
        if variables.get("id") == "ADMIN":
            variables = {**variables, "id": admin.client_id}
        status, body = await post(client, caller, query, variables)
        # Admin fields are not in a non-admin's schema (DESIGN §5): unknown, not refused,
        # and so are their input types ("Unknown type" for the variables).
        assert status == 400, (query, body)
        assert "data" not in body, (query, body)
        assert {e["extensions"]["code"] for e in body["errors"]} == {"GRAPHQL_VALIDATION_FAILED"}
        # ...answered exactly as the same operation naming things that exist nowhere.
        names = stand_ins(admin_names(query))
        nowhere = query
        for name, stand_in in names.items():
            nowhere = re.sub(rf"\b{name}\b", stand_in, nowhere)
        unknown_status, unknown = await post(client, caller, nowhere, variables)
        text = json.dumps(unknown)
        for name, stand_in in names.items():
            text = text.replace(stand_in, name)
        assert (status, body) == (unknown_status, json.loads(text)), query
    assert await count_rows(db, Organization) == orgs_before
    assert await count_rows(db, Client) == clients_before
    assert await token_status(client, admin.client_id, admin.secret) == 200
    # The same operations are the administrator's (the other tests here use them).
    for query, variables in OPERATIONS[:3]:
        answered = await gql(client, admin, query, variables, expect_errors=True)
        codes = {e["extensions"]["code"] for e in answered.get("errors", [])}
        assert codes <= {"NOT_FOUND"}, answered  # validated and run


def principal(kind: OrgKind, scopes: list[str], roles: frozenset[str] = frozenset()) -> Principal:
    return Principal(
        client_id="hub_test",
        organization_id=uuid.uuid4(),
        organization_slug=f"{kind.value}-caller",
        organization_kind=kind,
        scopes=frozenset(scopes),
        roles=roles,
    )


AdminCall = Callable[[AsyncSession, Principal], Awaitable[Any]]
ADMIN_CALLS: list[tuple[str, AdminCall]] = [
    ("list_organizations", admin_orgs.list_organizations),
    (
        "create_organization",
        lambda s, p: admin_orgs.create_organization(
            s, p, admin_orgs.OrganizationFields(slug="x", name="X", kind="vendor")
        ),
    ),
    (
        "update_organization",
        lambda s, p: admin_orgs.update_organization(
            s, p, "operator", admin_orgs.OrganizationFields(name="Mine")
        ),
    ),
    ("disable_organization", lambda s, p: admin_orgs.disable_organization(s, p, "operator")),
    ("list_clients", lambda s, p: admin_clients.list_clients(s, p, "operator")),
    (
        "register_client",
        lambda s, p: admin_clients.register_client(
            s, p, admin_clients.RegisterFields(organization="operator", name="n", scopes=[])
        ),
    ),
    ("rotate_client_secret", lambda s, p: admin_clients.rotate_client_secret(s, p, "ADMIN", 0)),
    ("disable_client", lambda s, p: admin_clients.disable_client(s, p, "ADMIN")),
]


@pytest.mark.parametrize(
    "who",
    [
        principal(OrgKind.OPERATOR, ALL_SCOPES),
        principal(OrgKind.DEPARTMENT, ALL_SCOPES, frozenset({"admin"})),
        # A partner never holds hub:admin (the token endpoint narrows it away); were one to
        # carry it, the hub would still refuse.
        principal(OrgKind.DISTRIBUTOR, ADMIN_SCOPES),
        principal(OrgKind.VENDOR, ADMIN_SCOPES),
    ],
    ids=["operator", "department", "distributor with hub:admin", "vendor with hub:admin"],
)
async def test_the_hub_refuses_non_admins_whatever_reaches_it(db: Database, who: Principal) -> None:
    # Behind the schema, every admin function checks for itself (FORBIDDEN, one message),
    # before reading or writing anything.
    orgs_before = await count_rows(db, Organization)
    clients_before = await count_rows(db, Client)
    for name, call in ADMIN_CALLS:
        async with db.transaction() as session:
            with pytest.raises(ForbiddenError) as refused:
                await call(session, who)
        assert str(refused.value) == "this operation is for hub administrators", name
        assert refused.value.code == "FORBIDDEN"
    assert not access.is_admin(who)
    assert await count_rows(db, Organization) == orgs_before
    assert await count_rows(db, Client) == clients_before


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
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"

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
