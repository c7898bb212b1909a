"""Console policy pages: validation at line and column, impact preview, publish with a
reason, rollback, diff, and "view as" (values from the access module, the deciding rule
from explain)."""

from __future__ import annotations

import re

import httpx

from hub import sharing
from hub.db import Database
from tests.conftest import make_org
from tests.hub.console.helpers import (
    console_http,
    console_settings,
    csrf_of,
    make_staff,
    sign_in,
)
from tests.hub.factories import assign, make_customer

BROKEN_LINE = "      masked: {email: no_such_mask, phone: last4}"


async def _draft(http: httpx.AsyncClient) -> tuple[str, str]:
    page = await http.get("/console/policies/draft")
    assert page.status_code == 200, page.text
    source = re.search(r'<textarea id="policy-source"[^>]*>(.*?)</textarea>', page.text, re.S)
    assert source
    import html

    return html.unescape(source.group(1)), csrf_of(page.text)


async def test_validate_names_the_line_and_column(db: Database, database_url: str) -> None:
    editor = await make_staff(db, "policy_editor")
    async with console_http(console_settings(database_url)) as http:
        await sign_in(http, editor.email)
        source, csrf = await _draft(http)
        lines = source.split("\n")
        at = next(i for i, line in enumerate(lines) if "masked: {email: partial_email" in line)
        lines[at] = BROKEN_LINE
        broken = "\n".join(lines)
        answer = await http.post(
            "/console/policies/draft/validate",
            data={"source": broken},
            headers={"X-CSRF-Token": csrf, "HX-Request": "true"},
        )
        assert answer.status_code == 200
        assert f'data-line="{at + 1}"' in answer.text
        assert "no_such_mask" in answer.text
        fixed = await http.post(
            "/console/policies/draft/validate",
            data={"source": source},
            headers={"X-CSRF-Token": csrf},
        )
        assert "The draft is valid." in fixed.text


async def test_preview_publish_and_rollback(db: Database, database_url: str) -> None:
    editor = await make_staff(db, "policy_editor")
    distributor = await make_org(db, "distributor", slug="dist-preview")
    customer = await make_customer(db, consent_share_with_partners=True)
    await assign(db, customer, distributor)
    async with console_http(console_settings(database_url)) as http:
        await sign_in(http, editor.email)
        source, csrf = await _draft(http)
        # The distributor loses phone (masked last4) in the draft.
        draft = source.replace(
            "masked: {email: partial_email, phone: last4}", "masked: {email: partial_email}"
        )
        assert draft != source
        preview = await http.post(
            "/console/policies/draft/preview",
            data={"source": draft},
            headers={"X-CSRF-Token": csrf},
        )
        assert preview.status_code == 200
        assert "dist-preview" in preview.text
        assert re.search(r'class="loss">[^<]*phone', preview.text), preview.text

        no_reason = await http.post(
            "/console/policies/draft/publish",
            data={"source": draft, "csrf": csrf, "expected_version": "1", "reason": ""},
        )
        assert no_reason.status_code == 422
        assert "give a reason" in no_reason.text
        published = await http.post(
            "/console/policies/draft/publish",
            data={"source": draft, "csrf": csrf, "expected_version": "1", "reason": "no phones"},
        )
        assert published.status_code == 303, published.text
        assert published.headers["location"] == "/console/policies?published=2"
        async with db.session() as session:
            newest = await sharing.current_version(session)
        assert newest is not None and newest.number == 2
        assert newest.reason == "no phones"
        assert newest.author.endswith(f"console:{editor.email}")

        stale = await http.post(
            "/console/policies/draft/publish",
            data={"source": source, "csrf": csrf, "expected_version": "1", "reason": "again"},
        )
        assert stale.status_code == 422
        assert "preview again" in stale.text

        diff = await http.get("/console/policies/diff?old=1&new=2")
        assert 'class="del">-      masked: {email: partial_email, phone: last4}' in diff.text

        back = await http.post(
            "/console/policies/versions/1/rollback", data={"csrf": csrf, "reason": "phones back"}
        )
        assert back.status_code == 303
        async with db.session() as session:
            newest = await sharing.current_version(session)
        assert newest is not None and newest.number == 3 and newest.restores == 1


async def test_view_as_shows_the_masked_value_and_the_rule(db: Database, database_url: str) -> None:
    editor = await make_staff(db, "policy_editor")
    distributor = await make_org(db, "distributor", slug="dist-view")
    customer = await make_customer(
        db, consent_share_with_partners=True, email="jane.doe@example.com"
    )
    await assign(db, customer, distributor)
    hidden = await make_customer(db, consent_share_with_partners=False)
    await assign(db, hidden, distributor)
    async with console_http(console_settings(database_url)) as http:
        await sign_in(http, editor.email)
        page = await http.get(
            "/console/policies/view-as",
            params={"org": "dist-view", "resource": "Customer", "id": str(customer.id)},
        )
        assert page.status_code == 200, page.text
        row = re.search(r'<tr data-field="email">(.*?)</tr>', page.text, re.S)
        assert row, page.text
        assert "masked" in row.group(1)
        assert "j***@example.com" in row.group(1) and "jane.doe" not in row.group(1)
        assert "distributors-assigned-customers" in row.group(1)
        ltv = re.search(r'<tr data-field="lifetime_value">(.*?)</tr>', page.text, re.S)
        assert ltv and "hidden" in ltv.group(1) and "1234" not in ltv.group(1)

        found = await http.get(
            "/console/policies/view-as", params={"resource": "Customer", "q": customer.name}
        )
        assert f'<option value="{customer.id}"' in found.text
        assert f'<option value="{hidden.id}"' not in found.text
        by_id = await http.get(
            "/console/policies/view-as",
            params={"org": "dist-view", "resource": "Customer", "record_id": str(customer.id)},
        )
        assert "j***@example.com" in by_id.text

        refused = await http.get(
            "/console/policies/view-as",
            params={"org": "dist-view", "resource": "Customer", "id": str(hidden.id)},
        )
        assert "not received" in refused.text
        assert "guardrail:" in refused.text
