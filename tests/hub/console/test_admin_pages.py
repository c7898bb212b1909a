"""Administration pages: organizations and clients (the secret shown once), assignments,
the review queue, connectors (replay a dead letter), audit and the dashboard."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
from sqlmodel import col, select

from hub.db import Database
from hub.models import Customer, CustomerPartner, ProposedChange
from hub.proposals import encode_value
from tests.conftest import make_org
from tests.hub.console.helpers import (
    console_http,
    console_settings,
    csrf_of,
    make_staff,
    sign_in,
)
from tests.hub.factories import make_customer, make_feedback
from tests.hub.oauth_helpers import new_key, public_jwks
from tests.hub.sync_helpers import dead_letters, runner, support_org


async def _csrf(http: httpx.AsyncClient) -> str:
    return csrf_of((await http.get("/console/organizations")).text)


async def test_organizations_and_clients(db: Database, database_url: str) -> None:
    admin = await make_staff(db, "admin")
    customer = await make_customer(db, consent_share_with_partners=True)
    async with console_http(console_settings(database_url)) as http:
        await sign_in(http, admin.email)
        csrf = await _csrf(http)
        bad = await http.post(
            "/console/organizations",
            data={"csrf": csrf, "slug": "Bad Slug", "name": "X", "kind": "distributor"},
        )
        assert bad.status_code == 422
        assert "slug" in bad.text
        created = await http.post(
            "/console/organizations",
            data={
                "csrf": csrf,
                "slug": "north-dist",
                "name": "North",
                "kind": "distributor",
                "attributes": '{"regions": ["N"]}',
            },
        )
        assert created.status_code == 303
        assert created.headers["location"] == "/console/organizations/north-dist"
        saved = await http.post(
            "/console/organizations/north-dist",
            data={"csrf": csrf, "name": "North Dist", "attributes": '{"regions": ["N", "S"]}'},
        )
        assert saved.status_code == 303
        page = await http.get("/console/organizations/north-dist")
        assert "&#34;S&#34;" in page.text or '"S"' in page.text

        registered = await http.post(
            "/console/organizations/north-dist/clients",
            data={"csrf": csrf, "name": "erp", "scopes": ["customers:read", "feedback:read"]},
        )
        assert registered.status_code == 200
        secret = re.search(r'<p class="secret" id="client-secret">([^<]+)</p>', registered.text)
        assert secret, registered.text
        client_id = re.search(r"Client (hub_[0-9a-f]+) registered", registered.text)
        assert client_id
        token = await http.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(client_id.group(1), secret.group(1)),
        )
        assert token.status_code == 200, token.text
        again = await http.get("/console/organizations/north-dist")
        assert secret.group(1) not in again.text  # shown once

        rotated = await http.post(
            f"/console/organizations/north-dist/clients/{client_id.group(1)}/rotate",
            data={"csrf": csrf, "overlap": "0"},
        )
        assert "has a new secret" in rotated.text
        disabled = await http.post(
            f"/console/organizations/north-dist/clients/{client_id.group(1)}/disable",
            data={"csrf": csrf},
        )
        assert disabled.status_code == 303

        keyed = await http.post(
            "/console/organizations/north-dist/clients",
            data={
                "csrf": csrf,
                "name": "signed",
                "scopes": ["customers:read"],
                "jwks": json.dumps(public_jwks(new_key())),
            },
        )
        assert keyed.status_code == 200, keyed.text
        assert "private_key_jwt" in keyed.text and 'id="client-secret"' not in keyed.text
        not_json = await http.post(
            "/console/organizations/north-dist/clients",
            data={"csrf": csrf, "name": "x", "scopes": ["customers:read"], "jwks": "{oops"},
        )
        assert not_json.status_code == 422
        assert "the JWKS is not JSON" in not_json.text
        admin_scope = await http.post(
            "/console/organizations/north-dist/clients",
            data={"csrf": csrf, "name": "x", "scopes": ["hub:admin"]},
        )
        assert admin_scope.status_code == 422  # a partner's client never holds hub:admin
        assert "hub:admin" in admin_scope.text

        assigned = await http.post(
            "/console/organizations/north-dist/assignments",
            data={"csrf": csrf, "customer_id": str(customer.id), "role": "reseller"},
        )
        assert assigned.status_code == 303, assigned.text
    async with db.session() as session:
        links = (
            await session.execute(
                select(CustomerPartner).where(col(CustomerPartner.customer_id) == customer.id)
            )
        ).scalars()
        assert [link.role for link in links] == ["reseller"]


async def test_review_queue_approves_and_merges(db: Database, database_url: str) -> None:
    admin = await make_staff(db, "admin")
    partner = await make_org(db, "distributor", slug="proposer")
    customer = await make_customer(db, city="Lyon")
    twin_a = await make_customer(db, email="twin@example.com")
    twin_b = await make_customer(db, email="twin@example.com")
    change = ProposedChange(
        customer_id=customer.id,
        field="city",
        value=encode_value("Paris"),
        organization_id=partner.id,
        organization="proposer",
        client="c",
        base_version=customer.version,
    )
    async with db.transaction() as session:
        session.add(change)
    async with console_http(console_settings(database_url)) as http:
        await sign_in(http, admin.email)
        page = await http.get("/console/review")
        assert "Paris" in page.text
        csrf = csrf_of(page.text)
        approved = await http.post(
            f"/console/review/changes/{change.id}",
            data={"csrf": csrf, "decision": "approve", "reason": "checked"},
        )
        assert approved.status_code == 303, approved.text
        merged = await http.post(
            "/console/review/merge",
            data={"csrf": csrf, "survivor": str(twin_a.id), "duplicate": str(twin_b.id)},
        )
        assert merged.status_code == 303, merged.text
    async with db.session() as session:
        assert (await session.get(Customer, customer.id)).city == "Paris"  # type: ignore[union-attr]
        assert await session.get(Customer, twin_b.id) is None


async def test_replay_a_dead_letter(db: Database, database_url: str, tmp_path: Path) -> None:
    admin = await make_staff(db, "admin")
    await support_org(db)
    await make_customer(db, email="known@example.com")
    (tmp_path / "t.jsonl").write_text(
        json.dumps({"id": "T-1", "email": "late@example.com", "text": "Broken"}) + "\n"
    )
    from hub.sync.config import parse_spec, save_connector

    spec = parse_spec(
        {
            "name": "desk",
            "kind": "files",
            "resource": "feedback",
            "organization": "support",
            "config": {"path": str(tmp_path), "pattern": "*.jsonl", "format": "jsonl"},
            "mapping": {
                "external_id": "id",
                "customer_email": {"from": "email", "required": True},
                "text": "text",
                "channel": {"from": "via", "default": "email"},
                "kind": {"from": "type", "default": "question"},
            },
        }
    )
    async with db.transaction() as session:
        await save_connector(session, spec)
    await runner(db).run("desk")
    [letter] = await dead_letters(db)
    await make_customer(db, email="late@example.com")  # what the record lacked
    async with console_http(console_settings(database_url)) as http:
        await sign_in(http, admin.email)
        page = await http.get("/console/connectors/desk")
        assert letter.reason in page.text
        assert "late@example.com" in page.text  # the raw record
        replayed = await http.post(
            f"/console/connectors/desk/dead-letters/{letter.id}/replay",
            data={"csrf": csrf_of(page.text)},
        )
        assert replayed.status_code == 303, replayed.text
        after = (await http.get("/console/connectors/desk")).text
        assert replayed.headers["location"].endswith("done=replayed-created"), (
            letter.reason,
            after,
        )
        assert "None." in (await http.get("/console/connectors/desk")).text


async def test_audit_disclosures_and_dashboard(db: Database, database_url: str) -> None:
    admin = await make_staff(db, "admin")
    operator_org = await make_org(db, "department", slug="support-dash")
    customer = await make_customer(db, consent_share_with_partners=True)
    await make_feedback(db, customer, operator_org, product="kettle", scale="csat", score=4)
    async with console_http(console_settings(database_url)) as http:
        await sign_in(http, admin.email)
        events = await http.get("/console/audit", params={"action": "client.register"})
        assert events.status_code == 200
        assert "client.register" in events.text  # the console's own client
        report = await http.get("/console/audit/disclosures", params={"customer": str(customer.id)})
        assert "Download CSV" in report.text
        csv = await http.get(
            "/console/audit/disclosures.csv", params={"customer": str(customer.id)}
        )
        assert csv.headers["content-type"].startswith("text/csv")
        assert csv.text.splitlines()[0].startswith("at,organization,client")
        verdict = await http.get("/console/audit/verify")
        assert "Intact" in verdict.text
        dashboard = await http.get("/console/")
        assert dashboard.status_code == 200
        assert dashboard.text.count('<svg class="chart"') == 6
        assert "kettle" in dashboard.text
        assert 'style="' not in dashboard.text
