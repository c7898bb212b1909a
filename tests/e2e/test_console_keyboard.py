"""The console's main flows with the keyboard alone (issue 14: "the main flows work with the
keyboard alone"), in Debian's headless Chromium against the one ``hub serve`` of
``conftest.py``.

Every control is reached with Tab (or Shift+Tab) from where the page put focus, and used
with Enter, Space, arrows or typing: no mouse, no ``click()``, no ``fill()``. At every
stop the focused element must show its focus (a computed outline or box-shadow) and
have an accessible name (Playwright's own accessible-name computation). After an action
focus must land on its outcome (the problems, the impact, the message, the secret, the
view-as result), which the tests check by where focus is, not by looking around.
Flows: sign in on the hub's own form; open a draft, type an error, validate, jump to its
line, fix, validate, preview, publish with a reason; view as an organization and read
its outcome table; register a client and read its one-time secret; approve a change.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, expect

from tests.e2e.console_support import PASSWORD, PROPOSED_CITIES, STAFF, screenshot
from tests.e2e.server import HubServer

pytestmark = pytest.mark.e2e

SignIn = Callable[[str], Awaitable[Page]]

# What the focused element is, and whether its focus shows (an outline or a box-shadow:
# the console's ring is both).
FOCUSED = """() => {
  const el = document.activeElement;
  const style = getComputedStyle(el);
  const outline = style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) > 0;
  return {tag: el.tagName.toLowerCase(), id: el.id,
          text: (el.innerText || el.value || el.getAttribute('aria-label') || '').trim().slice(0, 60),
          visible: outline || style.boxShadow !== 'none'};
}"""


async def focused(page: Page) -> dict[str, Any]:
    """The focused element; fails unless its focus is visible and it has a name."""
    state: dict[str, Any] = await page.evaluate(FOCUSED)
    assert state["tag"] != "body", "focus was lost"
    assert state["visible"], f"focus is not visible on {state}"
    await expect(page.locator(":focus")).to_have_accessible_name(re.compile(r"\S"))
    return state


async def tab_to(page: Page, selector: str, *, back: bool = False, limit: int = 60) -> list[str]:
    """Tab (Shift+Tab with ``back``) until the focused element matches ``selector``,
    checking every stop on the way; the stops' texts, for failure messages."""
    reached: list[str] = []
    for _ in range(limit):
        if await page.evaluate("document.activeElement.id === 'policy-source'"):
            await page.keyboard.press("Escape")  # the editor's way out (Tab indents in it)
        await page.keyboard.press("Shift+Tab" if back else "Tab")
        state = await focused(page)
        reached.append(state["id"] or state["text"])
        if await page.evaluate("(s) => document.activeElement.matches(s)", selector):
            return reached
    raise AssertionError(f"{selector} not reached with the keyboard: {reached}")


async def skip_to_content(page: Page) -> None:
    """The first Tab reaches the skip link; Enter puts focus on the page's main region."""
    await page.keyboard.press("Tab")
    await expect(page.locator(":focus")).to_have_accessible_name("Skip to content")
    assert (await focused(page))["tag"] == "a"
    await page.keyboard.press("Enter")
    assert await page.evaluate("document.activeElement.id") == "main"


async def focus_is_on(page: Page, text: str | re.Pattern[str]) -> None:
    """Focus sits on the element that says ``text`` (a message, a heading)."""
    await expect(page.locator(":focus")).to_contain_text(text)


@pytest.fixture
async def keyboard_sign_in(browser: Browser, console_server: HubServer) -> AsyncIterator[SignIn]:
    """Sign in on the hub's own /oauth/authorize form by keyboard: Tab, type, Enter."""
    contexts = []

    async def sign_in(role: str) -> Page:
        context = await browser.new_context(base_url=console_server.base_url)
        contexts.append(context)
        page = await context.new_page()
        await page.goto("/console/")
        await expect(page.get_by_role("heading", name="Sign in to Partner Hub")).to_be_visible()
        assert await tab_to(page, "input[type=email]", limit=3)
        await page.keyboard.type(STAFF[role])
        await tab_to(page, "input[type=password]", limit=1)
        await page.keyboard.type(PASSWORD)
        await tab_to(page, "button[type=submit]", limit=1)
        await expect(page.locator(":focus")).to_have_accessible_name("Sign in")
        await page.keyboard.press("Enter")
        await page.wait_for_url(re.compile(r".*/console/.*"))
        return page

    yield sign_in
    for context in contexts:
        await context.close()


async def test_sign_in_edit_validate_fix_preview_and_publish_by_keyboard(
    keyboard_sign_in: SignIn, tmp_path: Path
) -> None:
    page = await keyboard_sign_in("policy_editor")
    await expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    # The navigation, by keyboard: skip link, then back into the header to "Policies".
    await skip_to_content(page)
    await tab_to(page, "header a[href='/console/policies']", back=True)
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", name="Sharing policy versions")).to_be_visible()
    await skip_to_content(page)
    await tab_to(page, "a[href='/console/policies/draft']")
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", name="Edit a policy draft")).to_be_visible()

    # Type an error at the end of the draft.
    await skip_to_content(page)
    await tab_to(page, "#policy-source")
    await page.keyboard.press("Control+End")
    await page.keyboard.type("keyboard: yes")
    editor = page.locator("#policy-source")
    line = await editor.evaluate("(a) => a.value.slice(0, a.selectionStart).split('\\n').length")
    await tab_to(page, "button[hx-post$='/validate']")
    await page.keyboard.press("Enter")
    # Focus moves to the problems' heading; the next Tab is the problem's line button.
    await focus_is_on(page, "1 problem")
    await tab_to(page, ".goto", limit=1)
    await expect(page.locator(":focus")).to_have_accessible_name(f"Line {line}, column 1")
    await expect(page.locator("#problems")).to_contain_text("unknown key 'keyboard'")
    await screenshot(page, tmp_path, "keyboard-validation-error")
    await page.keyboard.press("Enter")  # the caret goes to the line, the line selected
    assert await page.evaluate("document.activeElement.id") == "policy-source"
    assert (
        await editor.evaluate("(a) => a.value.slice(a.selectionStart, a.selectionEnd)")
        == "keyboard: yes"
    )
    await page.keyboard.type("# checked with the keyboard")  # replaces the selected line

    await tab_to(page, "button[hx-post$='/validate']")
    await page.keyboard.press("Space")
    await expect(page.get_by_text("The draft is valid.")).to_be_visible()
    assert (await focused(page))["text"] == "Validate"  # nothing swapped away: stays
    await tab_to(page, "button[hx-post$='/preview']", limit=1)
    await page.keyboard.press("Enter")
    await focus_is_on(page, "Impact if published now")
    await expect(page.locator("#impact")).to_contain_text("No organization gains or loses")
    await screenshot(page, tmp_path, "keyboard-impact")
    await tab_to(page, "#publish-reason", limit=1)
    await page.keyboard.type("a comment, typed by keyboard")
    await tab_to(page, "button[type=submit].primary", limit=1)
    await expect(page.locator(":focus")).to_have_accessible_name("Publish")
    await page.keyboard.press("Enter")
    # Focus lands on the outcome, not the top of the page.
    await focus_is_on(page, re.compile(r"Version \d+ published and in force"))
    await expect(page.locator("tbody tr").first).to_contain_text("a comment, typed by keyboard")
    await screenshot(page, tmp_path, "keyboard-published")


async def test_view_as_an_organization_by_keyboard(
    keyboard_sign_in: SignIn, console_server: HubServer, tmp_path: Path
) -> None:
    body = await console_server.gql(
        "distributor", "{ customers(first: 1) { edges { node { id email } } } }"
    )
    node = body["data"]["customers"]["edges"][0]["node"]
    from schema.ids import from_global_id

    parsed = from_global_id(node["id"])
    assert parsed is not None
    page = await keyboard_sign_in("policy_editor")
    await page.goto("/console/policies/view-as")
    await skip_to_content(page)
    await tab_to(page, "#va-org", limit=1)
    await page.keyboard.type("acme-distribution")  # a select's type-ahead
    await expect(page.locator("#va-org")).to_have_value("acme-distribution")
    await tab_to(page, "#va-record-id")
    await page.keyboard.type(str(parsed[1]))
    await page.keyboard.press("Enter")  # submits the form
    # Focus is on the result's heading; the table under it says what the partner gets.
    await focus_is_on(page, f"acme-distribution receives of Customer {parsed[1]}")
    table = page.get_by_role("table")
    email = table.get_by_role("row").filter(has=page.get_by_role("rowheader", name="email"))
    await expect(email).to_contain_text("masked")
    await expect(email).to_contain_text(node["email"])
    await expect(email).to_contain_text("distributors-assigned-customers")
    await screenshot(page, tmp_path, "keyboard-view-as")


async def test_register_a_client_and_read_its_secret_by_keyboard(
    keyboard_sign_in: SignIn, tmp_path: Path
) -> None:
    page = await keyboard_sign_in("admin")
    await page.goto("/console/organizations/acme-distribution")
    await skip_to_content(page)
    await tab_to(page, "#client-name")
    await expect(page.locator(":focus")).to_have_accessible_name("Client name")
    await page.keyboard.type("keyboard sync")
    await tab_to(page, "form[action$='/clients'] button[type=submit]")
    await page.keyboard.press("Enter")
    await focus_is_on(page, re.compile(r"Client \S+ registered"))
    secret = page.locator("#client-secret")
    value = (await secret.text_content() or "").strip()
    assert len(value) >= 40
    # The secret is in the region the heading names, read right after it.
    region = page.get_by_role("status").filter(has=page.locator(":focus"))
    await expect(region).to_contain_text(value)
    await screenshot(page, tmp_path, "keyboard-client-secret")


async def test_approve_a_proposed_change_by_keyboard(
    keyboard_sign_in: SignIn, tmp_path: Path
) -> None:
    """The proposal SEED made for this file (the second city)."""
    city = PROPOSED_CITIES[1]
    page = await keyboard_sign_in("admin")
    await page.goto("/console/review")
    await skip_to_content(page)
    change = (
        await page.locator("#proposals tbody tr").filter(has_text=city).get_attribute("data-change")
    )
    row = f"#proposals tr[data-change='{change}']"
    await tab_to(page, f"{row} input[name=reason]")
    # The reason's name says which change it decides.
    await expect(page.locator(":focus")).to_have_accessible_name(
        re.compile(r"Reason for .+'s city")
    )
    await page.keyboard.type("checked with the customer")
    await tab_to(page, f"{row} button[value=approve]", limit=1)
    await page.keyboard.press("Space")
    await focus_is_on(page, "Done: approved")
    await expect(page.get_by_text(city)).to_have_count(0)
    await screenshot(page, tmp_path, "keyboard-review-approved")
