"""The console in a real browser: Debian's headless Chromium driven by Playwright
(``executable_path``: no browser is downloaded), against a real ``hub serve`` process
seeded by ``hub demo``. One server and one browser for the run (``conftest.py``, shared
with ``test_console_keyboard.py``, the main flows by keyboard alone); each test signs in
through the hub's own OAuth flow in a fresh browser context and saves a screenshot
(to ``$HUB_SCREENSHOTS`` if set, else the test's temporary directory).

The acceptance scenarios of issue 14: sign in; edit a policy, see a validation error at
its line, fix it; preview the impact; publish; view as a distributor shows a masked
email and names the rule; the explorer as a distributor cannot query lifetimeValue; roll
back; register a client and see its secret once; approve a proposed change; replay a
dead letter; the dashboard draws its charts; CSRF, CSP and an analyst's publish refused
by the server; axe-core finds no serious or critical violation on the main pages.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, expect

from tests.e2e.console_support import AXE_SOURCE, PASSWORD, STAFF, screenshot
from tests.e2e.server import HUB, HubServer
from tests.e2e.test_readme_walkthrough import readme_steps

pytestmark = pytest.mark.e2e


@pytest.fixture
async def signed_in(browser: Browser, console_server: HubServer) -> AsyncIterator[Any]:
    contexts = []

    async def open_as(role: str) -> Page:
        context = await browser.new_context(base_url=console_server.base_url)
        contexts.append(context)
        page = await context.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.errors = errors  # type: ignore[attr-defined]
        await page.goto("/console/")
        await expect(page.get_by_role("heading", name="Sign in to Partner Hub")).to_be_visible()
        await page.get_by_label("Email").fill(STAFF[role])
        await page.get_by_label("Password").fill(PASSWORD)
        await page.get_by_role("button", name="Sign in").click()
        await page.wait_for_url(re.compile(r".*/console/.*"))
        return page

    yield open_as
    for context in contexts:
        await context.close()


def _no_csp_violations(page: Page) -> None:
    errors: list[str] = page.errors  # type: ignore[attr-defined]
    assert not [e for e in errors if "Content Security Policy" in e], errors


async def test_sign_in_and_the_dashboard_draws_its_charts(signed_in: Any, tmp_path: Path) -> None:
    page = await signed_in("admin")
    await expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    charts = page.locator("svg.chart")
    await expect(charts).to_have_count(6)
    # Demo data: feedback bars by product and organization, a CSAT line, the version line.
    assert await page.locator("#chart-feedback-product svg rect").count() > 3
    assert await page.locator("#chart-feedback-org svg rect").count() > 3
    assert await page.locator("#chart-csat-product svg polyline").count() >= 1
    assert await page.locator("#chart-policies svg polyline").count() == 1
    box = await charts.first.bounding_box()
    assert box is not None and box["width"] > 200 and box["height"] > 80
    _no_csp_violations(page)
    await screenshot(page, tmp_path, "dashboard")


async def test_edit_validate_fix_preview_publish_and_roll_back(
    signed_in: Any, tmp_path: Path
) -> None:
    page = await signed_in("policy_editor")
    await page.goto("/console/policies/draft")
    editor = page.get_by_label("Policy source (YAML or JSON)")
    source = await editor.input_value()
    lines = source.split("\n")
    at = next(
        i for i, line in enumerate(lines) if "masked: {email: partial_email, phone: last4}" in line
    )
    broken = lines.copy()
    broken[at] = broken[at].replace("last4", "lastfour")
    await editor.fill("\n".join(broken))
    await page.get_by_role("button", name="Validate").click()
    problem = page.get_by_role("button", name=re.compile(rf"^Line {at + 1}, column \d+$"))
    await expect(problem).to_be_visible()
    await expect(page.locator("#problems")).to_contain_text("lastfour")
    await problem.click()  # the caret moves to the line
    assert (
        await editor.evaluate("(a) => a.value.slice(0, a.selectionStart).split('\\n').length")
        == at + 1
    )
    await screenshot(page, tmp_path, "policy-validation-error")

    # Fixed, with a real change: distributors no longer get the phone's last four digits.
    fixed = lines.copy()
    fixed[at] = fixed[at].replace(", phone: last4", "")
    await editor.fill("\n".join(fixed))
    # Leaving the page keeps the draft in this browser, offered back on return.
    await page.goto("/console/policies/draft")
    await page.get_by_role("button", name="Restore your unpublished draft").click()
    assert await editor.input_value() == "\n".join(fixed)
    await page.get_by_role("button", name="Validate").click()
    await expect(page.get_by_text("The draft is valid.")).to_be_visible()
    await page.get_by_role("button", name="Preview the impact").click()
    impact = page.locator("#impact")
    await expect(impact).to_contain_text("acme-distribution")
    await expect(impact.locator("td.loss").filter(has_text="phone").first).to_be_visible()
    await screenshot(page, tmp_path, "policy-impact")

    await page.get_by_label("Reason (recorded with the version and in the audit log)").fill(
        "distributors: no phone digits"
    )
    await page.get_by_role("button", name="Publish").click()
    await expect(page.get_by_role("status")).to_contain_text("published and in force")
    assert await page.evaluate("localStorage.length") == 0  # the draft is done
    newest = page.locator("tbody tr").first
    await expect(newest).to_contain_text("distributors: no phone digits")
    await expect(newest).to_contain_text(STAFF["policy_editor"])
    await screenshot(page, tmp_path, "policy-published")

    # Roll back to version 1 (asked to confirm first).
    page.once("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
    row = page.locator("tbody tr").filter(has=page.get_by_role("link", name="1", exact=True))
    await row.get_by_label("Reason").fill("phones back")
    await row.get_by_role("button", name="Roll back to 1").click()
    await expect(page.get_by_role("status")).to_contain_text("Rolled back")
    await expect(page.locator("tbody tr").first).to_contain_text("rollback of 1")
    _no_csp_violations(page)
    await screenshot(page, tmp_path, "policy-rolled-back")


async def test_view_as_a_distributor_shows_the_masked_email_and_its_rule(
    signed_in: Any, console_server: HubServer, tmp_path: Path
) -> None:
    body = await console_server.gql(
        "distributor", "{ customers(first: 1) { edges { node { id email } } } }"
    )
    node = body["data"]["customers"]["edges"][0]["node"]
    from schema.ids import from_global_id

    parsed = from_global_id(node["id"])
    assert parsed is not None
    customer_id = parsed[1]
    page = await signed_in("policy_editor")
    await page.goto("/console/policies/view-as")
    await page.get_by_label("Organization").select_option("acme-distribution")
    await page.get_by_label("Record", exact=True).select_option(str(customer_id))
    await page.get_by_role("button", name="Show").click()
    email = page.locator('tr[data-field="email"]')
    await expect(email).to_contain_text("masked")
    await expect(email).to_contain_text(node["email"])  # exactly what the partner gets
    await expect(email).to_contain_text("distributors-assigned-customers")
    await expect(page.locator('tr[data-field="lifetime_value"]')).to_contain_text("hidden")
    await screenshot(page, tmp_path, "view-as")


async def test_the_explorer_as_a_distributor_cannot_query_lifetime_value(
    signed_in: Any, tmp_path: Path
) -> None:
    page = await signed_in("admin")
    query = "{ customers(first: 2) { edges { node { name lifetimeValue } } } }"
    await page.goto("/console/explorer?as=acme-distribution&query=" + query.replace(" ", "%20"))
    run = page.locator(".graphiql-execute-button")
    await expect(run).to_be_visible(timeout=15_000)
    await run.click()
    response = page.locator(".graphiql-response")
    await expect(response).to_contain_text("lifetimeValue", timeout=15_000)
    await expect(response).to_contain_text("Cannot query field")
    _no_csp_violations(page)
    await screenshot(page, tmp_path, "explorer-distributor")

    # As the admin, the same query answers.
    await page.goto("/console/explorer?query=" + query.replace(" ", "%20"))
    await page.locator(".graphiql-execute-button").click()
    await expect(page.locator(".graphiql-response")).to_contain_text(
        '"lifetimeValue"', timeout=15_000
    )
    await expect(page.locator(".graphiql-response")).not_to_contain_text("Cannot query field")


async def test_register_a_client_and_see_its_secret_once(signed_in: Any, tmp_path: Path) -> None:
    page = await signed_in("admin")
    await page.goto("/console/organizations/acme-distribution")
    await page.locator("#client-name").fill("warehouse sync")
    await page.get_by_role("button", name="Register").click()
    secret = page.locator("#client-secret")
    await expect(secret).to_be_visible()
    value = (await secret.text_content() or "").strip()
    assert len(value) >= 40
    await screenshot(page, tmp_path, "client-secret")
    await page.goto("/console/organizations/acme-distribution")
    await expect(page.get_by_text("warehouse sync")).to_be_visible()
    assert value not in await page.content()


async def test_approve_a_proposed_change(signed_in: Any, tmp_path: Path) -> None:
    """The proposal the fixture queued (SEED)."""
    page = await signed_in("admin")
    await page.goto("/console/review")
    row = page.locator("#proposals tbody tr").filter(has_text="Proposed City")
    await expect(row).to_be_visible()
    await row.get_by_label("Reason").fill("confirmed by phone")
    await row.get_by_role("button", name="Approve").click()
    await expect(page.get_by_role("status")).to_contain_text("approved")
    await expect(page.get_by_text("Proposed City")).to_have_count(0)
    await screenshot(page, tmp_path, "review-approved")


async def test_run_a_connector_and_replay_its_dead_letter(signed_in: Any, tmp_path: Path) -> None:
    page = await signed_in("admin")
    await page.goto("/console/connectors/support-desk")
    await page.get_by_role("button", name="Run now").click()
    await expect(page.get_by_role("status")).to_contain_text("run")
    letter = page.locator("section.dead-letter").filter(has_text="SD-broken")
    await expect(letter).to_be_visible()
    await expect(letter.locator(".reason")).to_contain_text("email")
    await screenshot(page, tmp_path, "dead-letter")
    await letter.get_by_role("button", name="Replay").click()
    await expect(page.get_by_role("status")).to_contain_text("replayed")
    await screenshot(page, tmp_path, "dead-letter-replayed")


async def test_security_csrf_csp_and_an_analyst_cannot_publish(
    signed_in: Any, tmp_path: Path
) -> None:
    page = await signed_in("analyst")
    response = await page.goto("/console/policies")
    assert response is not None
    csp = response.headers["content-security-policy"]
    assert "unsafe-inline" not in csp and "script-src 'self'" in csp
    # The analyst sees versions but no editing controls...
    await expect(
        page.get_by_role("link", name="Edit a draft of the version in force")
    ).to_have_count(0)
    csrf = await page.locator('meta[name="csrf-token"]').get_attribute("content")
    # ...and the server refuses the publish itself, with a valid CSRF token.
    refused = await page.request.post(
        "/console/policies/draft/publish",
        form={"csrf": csrf or "", "source": "rules: []", "reason": "x", "expected_version": "1"},
    )
    assert refused.status == 403
    assert "do not allow" in await refused.text()
    await screenshot(page, tmp_path, "analyst")

    editor = await signed_in("policy_editor")
    no_token = await editor.request.post(
        "/console/policies/draft/validate", form={"source": "rules: []"}
    )
    assert no_token.status == 403
    assert "CSRF" in await no_token.text()
    # In the page: a request with a wrong token is refused, and the page says so.
    await editor.goto("/console/policies/draft")
    await editor.evaluate("document.querySelector('meta[name=\"csrf-token\"]').content = 'forged'")
    await editor.get_by_role("button", name="Validate").click()
    await expect(editor.get_by_role("alert")).to_contain_text("Refused")
    await screenshot(editor, tmp_path, "csrf-refused")


async def test_the_readmes_staff_user_signs_in(
    browser: Browser, console_server: HubServer, tmp_path: Path
) -> None:
    """The README's "The console" command, run as written in the demo's folder; the user
    it creates signs in and gets its role's pages."""
    [command] = readme_steps("## The console")
    env = {**console_server.env, "PATH": f"{Path(HUB).parent}:{os.environ.get('PATH', '')}"}
    shell = await asyncio.create_subprocess_exec(
        "bash",
        "-ec",
        command,
        cwd=console_server.workdir,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await shell.communicate()
    assert shell.returncode == 0, err.decode()
    created = json.loads(out)
    password = re.match(r"echo '([^']+)'", command)
    assert password and created["roles"] == ["policy_editor"]
    context = await browser.new_context(base_url=console_server.base_url)
    try:
        page = await context.new_page()
        await page.goto("/console/policies")
        await page.get_by_label("Email").fill(created["email"])
        await page.get_by_label("Password").fill(password.group(1))
        await page.get_by_role("button", name="Sign in").click()
        await expect(page.get_by_role("heading", name="Sharing policy versions")).to_be_visible()
        await expect(page.get_by_role("link", name="Organizations")).to_have_count(0)
        await screenshot(page, tmp_path, "readme-user")
    finally:
        await context.close()


MAIN_PAGES = (
    "/console/",
    "/console/policies",
    "/console/policies/draft",
    "/console/policies/view-as",
    "/console/explorer",
    "/console/organizations/acme-distribution",
    "/console/review",
    "/console/connectors/support-desk",
    "/console/audit",
)


async def test_no_serious_accessibility_violation_on_the_main_pages(
    signed_in: Any, tmp_path: Path
) -> None:
    page = await signed_in("admin")
    found = {}
    for path in MAIN_PAGES:
        await page.goto(path)
        # Evaluated through the DevTools protocol: the page's CSP rightly refuses inline
        # scripts.
        await page.evaluate(AXE_SOURCE)
        violations = await page.evaluate(
            "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
            ".map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.slice(0, 12).map(n => [n.target, n.any.map(a => a.message).join(' ')])}))"
        )
        serious = [v for v in violations if v["impact"] in ("serious", "critical")]
        if serious:
            found[path] = serious
    assert found == {}
    await screenshot(page, tmp_path, "accessibility-last-page")


async def test_tab_reaches_the_navigation_the_editor_and_validate(
    signed_in: Any, tmp_path: Path
) -> None:
    """The draft's page from its top with Tab alone (the flows by keyboard are in
    test_console_keyboard.py)."""
    page = await signed_in("admin")
    await page.goto("/console/policies/draft")
    reached: list[str] = []
    for _ in range(40):
        await page.keyboard.press("Tab")
        active = await page.evaluate(
            "document.activeElement.id || document.activeElement.textContent"
        )
        reached.append(active.strip())
        if active == "policy-source":
            # In the editor Tab indents; Escape first lets Tab move on (said under it).
            await page.keyboard.press("Escape")
        if "Validate" in active:
            break
    assert "Policies" in reached and "policy-source" in reached, reached
    assert reached[-1] == "Validate", reached
    await page.keyboard.press("Enter")
    await expect(page.get_by_text("The draft is valid.")).to_be_visible()
    await screenshot(page, tmp_path, "keyboard")
