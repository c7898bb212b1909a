"""The explorer runs queries (only) as the chosen organization, on the real endpoint, and
audits each as the staff user."""

from __future__ import annotations

from typing import Any

import httpx
from sqlmodel import col, select

from hub.db import Database
from hub.models import AuditEvent
from tests.conftest import make_org
from tests.hub.console.helpers import (
    console_http,
    console_settings,
    csrf_of,
    make_staff,
    sign_in,
)
from tests.hub.factories import assign, make_customer


async def _run(
    http: httpx.AsyncClient, csrf: str, query: str, org: str = ""
) -> tuple[int, dict[str, Any]]:
    response = await http.post(
        "/console/explorer/graphql" + (f"?as={org}" if org else ""),
        json={"query": query},
        headers={"X-CSRF-Token": csrf},
    )
    return response.status_code, response.json()


async def test_view_as_a_distributor_uses_its_schema_and_rows(
    db: Database, database_url: str
) -> None:
    admin = await make_staff(db, "admin")
    distributor = await make_org(db, "distributor", slug="dist-explore")
    mine = await make_customer(db, consent_share_with_partners=True, email="ann@example.com")
    await assign(db, mine, distributor)
    await make_customer(db, consent_share_with_partners=True)  # not its customer
    async with console_http(console_settings(database_url)) as http:
        await sign_in(http, admin.email)
        page = await http.get("/console/explorer")
        assert page.status_code == 200
        assert "/console/static/vendor/graphiql/graphiql.min.js" in page.text
        csrf = csrf_of(page.text)

        status, body = await _run(
            http,
            csrf,
            "{ customers(first: 10) { totalCount edges { node { email } } } }",
            "dist-explore",
        )
        assert status == 200, body
        assert body["data"]["customers"]["totalCount"] == 1
        assert body["data"]["customers"]["edges"][0]["node"]["email"] == "a***@example.com"

        status, body = await _run(
            http,
            csrf,
            "{ customers(first: 1) { edges { node { lifetimeValue } } } }",
            "dist-explore",
        )
        assert status == 400
        assert "lifetimeValue" in body["errors"][0]["message"]

        status, body = await _run(
            http, csrf, "{ customers(first: 1) { edges { node { lifetimeValue } } } }"
        )
        assert status == 200, body  # the admin's own, full schema

        status, body = await _run(
            http, csrf, 'mutation { createCustomer(input: {name: "x"}) { customer { id } } }'
        )
        assert status == 400
        assert "read-only" in body["errors"][0]["message"]

        refused = await http.post(
            "/console/explorer/graphql?as=dist-explore", json={"query": "{ __typename }"}
        )
        assert refused.status_code == 403  # no CSRF token

    async with db.session() as session:
        events = list(
            (
                await session.execute(
                    select(AuditEvent).where(col(AuditEvent.action) == "console.explore")
                )
            ).scalars()
        )
    assert len(events) == 3  # the refused mutation ran nothing and is not recorded
    assert events[0].target == "organization:dist-explore"
    assert events[0].details["as"] == "dist-explore"


async def test_an_analyst_cannot_explore(db: Database, database_url: str) -> None:
    analyst = await make_staff(db, "analyst")
    async with console_http(console_settings(database_url)) as http:
        await sign_in(http, analyst.email)
        assert (await http.get("/console/explorer")).status_code == 403
        page = await http.get("/console/policies")
        refused = await http.post(
            "/console/explorer/graphql",
            json={"query": "{ __typename }"},
            headers={"X-CSRF-Token": csrf_of(page.text)},
        )
        assert refused.status_code == 403
