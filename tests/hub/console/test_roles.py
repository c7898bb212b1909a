"""Roles on the server: every console route refuses what the user's roles do not allow,
whatever the page showed; a partner's bearer token opens nothing."""

from __future__ import annotations

import uuid

import httpx
import pytest

from hub.db import Database
from tests.conftest import make_caller, token_for
from tests.hub.console.helpers import (
    console_http,
    console_settings,
    csrf_of,
    make_staff,
    sign_in,
)

# (method, path, the permission it needs: the lowest role allowed)
ROUTES = [
    ("GET", "/console/", "analyst"),
    ("GET", "/console/policies", "analyst"),
    ("GET", "/console/policies/versions/1", "analyst"),
    ("GET", "/console/policies/diff?old=1&new=1", "analyst"),
    ("GET", "/console/policies/draft", "policy_editor"),
    ("POST", "/console/policies/draft/validate", "policy_editor"),
    ("POST", "/console/policies/draft/preview", "policy_editor"),
    ("POST", "/console/policies/draft/publish", "policy_editor"),
    ("POST", "/console/policies/versions/1/rollback", "policy_editor"),
    ("GET", "/console/policies/view-as", "policy_editor"),
    ("GET", "/console/explorer", "policy_editor"),
    ("POST", "/console/explorer/graphql", "policy_editor"),
    ("GET", "/console/organizations", "admin"),
    ("POST", "/console/organizations", "admin"),
    ("GET", "/console/organizations/operator", "admin"),
    ("POST", "/console/organizations/operator", "admin"),
    ("POST", "/console/organizations/operator/disable", "admin"),
    ("POST", "/console/organizations/operator/clients", "admin"),
    ("POST", "/console/organizations/operator/clients/hub_x/rotate", "admin"),
    ("POST", "/console/organizations/operator/clients/hub_x/disable", "admin"),
    ("POST", "/console/organizations/operator/assignments", "admin"),
    ("GET", "/console/review", "admin"),
    ("POST", f"/console/review/changes/{uuid.uuid4()}", "admin"),
    ("POST", "/console/review/merge", "admin"),
    ("GET", "/console/connectors", "admin"),
    ("GET", "/console/connectors/nope", "admin"),
    ("POST", "/console/connectors/nope/run", "admin"),
    ("POST", f"/console/connectors/nope/dead-letters/{uuid.uuid4()}/replay", "admin"),
    ("GET", "/console/deliveries", "admin"),
    ("POST", f"/console/deliveries/{uuid.uuid4()}/replay", "admin"),
    ("GET", "/console/audit", "admin"),
    ("GET", "/console/audit/disclosures", "admin"),
    ("GET", f"/console/audit/disclosures.csv?customer={uuid.uuid4()}", "admin"),
    ("GET", "/console/audit/verify", "admin"),
]
RANK = {"member": 0, "analyst": 1, "policy_editor": 2, "admin": 3}


async def _call(http: httpx.AsyncClient, method: str, path: str, csrf: str) -> httpx.Response:
    if method == "GET":
        return await http.get(path)
    return await http.post(path, data={"csrf": csrf, "source": "rules: []\n", "reason": "x"})


@pytest.mark.parametrize("role", ["member", "analyst", "policy_editor", "admin"])
async def test_each_role_gets_exactly_its_routes(
    db: Database, database_url: str, role: str
) -> None:
    staff = await make_staff(db, role)
    async with console_http(console_settings(database_url)) as http:
        await sign_in(http, staff.email)
        admin_page = await http.get("/console/policies")
        csrf = csrf_of(admin_page.text) if admin_page.status_code == 200 else ""
        for method, path, lowest in ROUTES:
            response = await _call(http, method, path, csrf)
            allowed = RANK[role] >= RANK[lowest]
            if allowed:
                assert response.status_code in (200, 303, 404, 415, 422), (
                    role,
                    path,
                    response.text,
                )
            else:
                assert response.status_code == 403, (role, path, response.status_code)
                assert "do not allow" in response.text


async def test_a_partner_token_opens_nothing(db: Database, database_url: str) -> None:
    partner = await make_caller(db, "distributor")
    async with console_http(console_settings(database_url)) as http:
        token = await token_for(http, partner)
        headers = {"Authorization": f"Bearer {token}"}
        for method, path, _ in ROUTES:
            response = await http.request(method, path, headers=headers)
            assert response.status_code == 303, (path, response.status_code)
            assert response.headers["location"].startswith("/console/login")


def test_every_console_route_is_in_the_role_table() -> None:
    """A route added later cannot miss the role checks above: each one (but sign-in,
    sign-out and static files, which need no role) is called by the table."""
    from starlette.routing import Route

    from hub.console import console_app

    app = console_app(graphql=lambda scope, receive, send: None)  # type: ignore[arg-type,return-value]
    router = app.app  # type: ignore[attr-defined]
    public = {"/login", "/callback", "/logout"}
    missing = []
    for route in router.routes:
        if not isinstance(route, Route) or route.path in public:
            continue
        for method in sorted((route.methods or set()) - {"HEAD"}):
            called = any(
                method == m and route.path_regex.match(path.removeprefix("/console").split("?")[0])
                for m, path, _ in ROUTES
            )
            if not called:
                missing.append(f"{method} {route.path}")
    assert missing == []
