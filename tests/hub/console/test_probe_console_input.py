"""Hostile values in console URLs and forms answer a page, never a 500 (found by an
outside-in probe of a running server): a NUL in a path or query parameter (PostgreSQL
cannot compare text with one), a version number no column can hold, JSON nested past the
parser's recursion or holding a 5,000-digit integer, a policy draft nested as deep."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from hub.db import Database
from tests.hub.console.helpers import (
    console_http,
    console_settings,
    csrf_of,
    make_staff,
    sign_in,
)

NUL_GETS = [
    "/console/audit?action=a%00b",
    "/console/audit?organization=%00",
    "/console/audit?target=x%00",
    "/console/connectors/a%00b",
    "/console/organizations/a%00b",
    "/console/policies/view-as?org=a%00b&q=%00",
    "/console/explorer?as=%00",
]
NUL_POSTS = [
    "/console/connectors/a%00b/run",
    "/console/connectors/a%00b/dead-letters/1/replay",
    "/console/deliveries/a%00b/replay",
    "/console/organizations/a%00b",
    "/console/organizations/a%00b/disable",
    "/console/organizations/a%00b/clients",
    "/console/organizations/a%00b/assignments",
    "/console/organizations/operator/clients/a%00b/rotate",
    "/console/organizations/operator/clients/a%00b/disable",
]
HUGE = ["9" * 19, "9" * 40, "9" * 5000]


async def _admin(db: Database, http: httpx.AsyncClient) -> str:
    admin = await make_staff(db, "admin")
    await sign_in(http, admin.email)
    return csrf_of((await http.get("/console/organizations")).text)


async def test_a_nul_in_a_path_or_query_parameter_is_refused(
    db: Database, database_url: str
) -> None:
    async with console_http(console_settings(database_url)) as http:
        csrf = await _admin(db, http)
        for path in NUL_GETS:
            response = await http.get(path)
            assert response.status_code == 400, (path, response.status_code, response.text)
            assert "NUL" in response.text
        for path in NUL_POSTS:
            response = await http.post(path, data={"csrf": csrf, "reason": "r", "name": "n"})
            assert response.status_code == 400, (path, response.status_code, response.text)


@pytest.mark.parametrize("number", HUGE)
async def test_a_version_number_no_column_holds_is_not_found(
    db: Database, database_url: str, number: str
) -> None:
    async with console_http(console_settings(database_url)) as http:
        csrf = await _admin(db, http)
        page = await http.get(f"/console/policies/versions/{number}")
        assert page.status_code == 404, page.text
        # A query number past the digit limit is no number at all: ignored, like `abc`.
        expected = 200 if len(number) > 4300 else 404
        for path in (
            f"/console/policies/draft?from={number}",
            f"/console/policies/diff?old={number}&new=1",
        ):
            response = await http.get(path)
            assert response.status_code == expected, (path, response.status_code, response.text)
        rollback = await http.post(
            f"/console/policies/versions/{number}/rollback", data={"csrf": csrf, "reason": "r"}
        )
        assert rollback.status_code in (404, 422), rollback.text
        assert "no policy version" in rollback.text


DEEP_JSON = ["[" * 50_000, '{"a":' * 50_000, "9" * 5000, '{"n": ' + "9" * 5000 + "}"]


async def test_json_fields_nested_too_deep_or_with_huge_integers_are_refused(
    db: Database, database_url: str
) -> None:
    async with console_http(console_settings(database_url)) as http:
        csrf = await _admin(db, http)
        for text in DEEP_JSON:
            created = await http.post(
                "/console/organizations",
                data={
                    "csrf": csrf,
                    "slug": "deep-org",
                    "name": "Deep",
                    "kind": "distributor",
                    "attributes": text,
                },
            )
            assert created.status_code == 422, (text[:10], created.status_code, created.text)
            assert "attributes" in created.text
            updated = await http.post(
                "/console/organizations/operator",
                data={"csrf": csrf, "name": "Operator", "attributes": text},
            )
            assert updated.status_code == 422, (text[:10], updated.status_code, updated.text)
            registered = await http.post(
                "/console/organizations/operator/clients",
                data={"csrf": csrf, "name": "deep client", "jwks": text},
            )
            assert registered.status_code == 422, (text[:10], registered.status_code)
            assert "jwks" in registered.text.lower()


DEEP_POLICIES = ["[" * 30_000, "rules: " + "[" * 30_000, "- " * 20_000 + "x", "{" * 30_000]


async def test_a_policy_draft_nested_too_deep_is_a_syntax_problem(
    db: Database, database_url: str
) -> None:
    policy_editor = await make_staff(db, "policy_editor")
    async with console_http(console_settings(database_url)) as http:
        await sign_in(http, policy_editor.email)
        csrf = csrf_of((await http.get("/console/policies/draft")).text)
        for source in [*DEEP_POLICIES, '{"rules": ' + "9" * 5000 + "}"]:
            for action in ("validate", "preview"):
                response = await http.post(
                    f"/console/policies/draft/{action}",
                    data={"csrf": csrf, "source": source},
                    headers={"HX-Request": "true"},
                )
                assert response.status_code < 500, (action, source[:10], response.text)
                assert "syntax" in response.text, response.text
                assert "Line 1, column " in response.text, response.text


async def test_the_explorer_stops_reading_an_oversized_body(
    db: Database, database_url: str
) -> None:
    policy_editor = await make_staff(db, "policy_editor")
    sent = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal sent
        chunk = b" " * 65_536
        for _ in range(800):  # 50 MB, if it were all read
            sent += len(chunk)
            yield chunk

    async with console_http(console_settings(database_url)) as http:
        await sign_in(http, policy_editor.email)
        csrf = csrf_of((await http.get("/console/explorer")).text)
        response = await http.post(
            "/console/explorer/graphql",
            content=body(),
            headers={"Content-Type": "application/json", "X-CSRF-Token": csrf},
        )
    assert response.status_code == 413, response.text
    assert sent < 1_000_000
