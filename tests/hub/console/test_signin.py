"""Console sign-in: the authorization code + PKCE flow against the hub itself, the session
cookie, CSRF and the security headers."""

from __future__ import annotations

import httpx

from hub.db import Database
from tests.hub.console.helpers import (
    console_http,
    console_settings,
    csrf_of,
    make_staff,
    sign_in,
)


async def test_sign_in_through_the_hubs_own_oauth_flow(db: Database, database_url: str) -> None:
    staff = await make_staff(db, "admin")
    async with console_http(console_settings(database_url)) as http:
        anonymous = await http.get("/console/policies")
        assert anonymous.status_code == 303
        assert anonymous.headers["location"] == "/console/login?next=/console/policies"

        done = await sign_in(http, staff.email)
        assert done.status_code == 303
        cookie = done.headers["set-cookie"]
        assert "hub_console=" in cookie
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/console" in cookie
        assert "Secure" not in cookie  # http on loopback

        page = await http.get("/console/policies")
        assert page.status_code == 200
        assert staff.email in page.text
        assert "Sign out" in page.text
        csp = page.headers["content-security-policy"]
        assert "unsafe-inline" not in csp and "script-src 'self'" in csp
        assert page.headers["x-frame-options"] == "DENY"


async def test_a_wrong_password_signs_nobody_in(db: Database, database_url: str) -> None:
    staff = await make_staff(db, "admin")
    async with console_http(console_settings(database_url)) as http:
        start = await http.get("/console/login")
        page = await http.get(start.headers["location"])
        assert "Sign in to Partner Hub" in page.text
        refused = await sign_in_expect_form(http, staff.email, "wrong password!!")
        assert refused.status_code == 401
        assert (await http.get("/console/")).status_code == 303


async def sign_in_expect_form(http: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    from tests.hub.console.helpers import _hidden_fields, _path

    start = await http.get("/console/login")
    form_page = await http.get(_path(start.headers["location"]))
    fields = {**_hidden_fields(form_page.text), "email": email, "password": password}
    return await http.post("/oauth/authorize", data=fields)


async def test_post_without_csrf_token_is_refused(db: Database, database_url: str) -> None:
    staff = await make_staff(db, "admin")
    async with console_http(console_settings(database_url)) as http:
        await sign_in(http, staff.email)
        page = await http.get("/console/policies/draft")
        token = csrf_of(page.text)
        body = {"source": "rules: []\n"}
        refused = await http.post("/console/policies/draft/validate", data=body)
        assert refused.status_code == 403
        assert "CSRF" in refused.text
        wrong = await http.post(
            "/console/policies/draft/validate", data=body, headers={"X-CSRF-Token": "nope"}
        )
        assert wrong.status_code == 403
        ok = await http.post(
            "/console/policies/draft/validate", data=body, headers={"X-CSRF-Token": token}
        )
        assert ok.status_code == 200, ok.text
        assert "content-security-policy" in ok.headers


async def test_sign_out_ends_the_session_on_the_server(db: Database, database_url: str) -> None:
    staff = await make_staff(db, "analyst")
    async with console_http(console_settings(database_url)) as http:
        await sign_in(http, staff.email)
        page = await http.get("/console/policies")
        stolen = http.cookies.get("hub_console")
        assert stolen
        out = await http.post("/console/logout", data={"csrf": csrf_of(page.text)})
        assert out.status_code == 200
        assert "Signed out" in out.text
        assert (await http.get("/console/policies")).status_code == 303
        # A copy of the cookie taken before signing out opens nothing either.
        http.cookies.set("hub_console", stolen, domain="127.0.0.1", path="/console")
        assert (await http.get("/console/policies")).status_code == 303
