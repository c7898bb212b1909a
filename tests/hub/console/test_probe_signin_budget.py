"""The staff sign-in form budgets password guesses and keeps argon2 off the event loop
(found by probing a running server: 140 wrong passwords for the demo's admin in a row
were all answered, each freezing every other request for about 300 ms)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

import hub.staff
from hub.db import Database
from tests.hub.console.helpers import (
    PASSWORD,
    _hidden_fields,
    _path,
    console_http,
    console_settings,
    make_staff,
    sign_in,
)

BUDGET = 3


async def _attempt(http: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    start = await http.get("/console/login")
    form_page = await http.get(_path(start.headers["location"]))
    fields = {**_hidden_fields(form_page.text), "email": email, "password": password}
    return await http.post("/oauth/authorize", data=fields)


async def test_password_guesses_are_budgeted_per_account_and_address(
    db: Database, database_url: str
) -> None:
    target = await make_staff(db, "admin")
    other = await make_staff(db, "analyst")
    settings = console_settings(database_url).model_copy(
        update={"token_failures_per_client_address": BUDGET}
    )
    async with console_http(settings) as http:
        for n in range(BUDGET):
            wrong = await _attempt(http, target.email.upper(), f"guess number {n}")
            assert wrong.status_code == 401, wrong.text
        # Blocked before the password is looked at: the right one is refused too.
        blocked = await _attempt(http, target.email, PASSWORD)
        assert blocked.status_code == 429, blocked.text
        assert int(blocked.headers["retry-after"]) > 0
        assert "Too many failed sign-ins" in blocked.text
        assert "location" not in blocked.headers  # no code was issued
        # Another account from the same address is not affected.
        signed_in = await sign_in(http, other.email)
        assert signed_in.status_code == 303, signed_in.text


async def test_a_successful_sign_in_does_not_spend_the_budget(
    db: Database, database_url: str
) -> None:
    staff = await make_staff(db, "admin")
    settings = console_settings(database_url).model_copy(
        update={"token_failures_per_client_address": BUDGET}
    )
    async with console_http(settings) as http:
        for _ in range(BUDGET + 2):
            answer = await _attempt(http, staff.email, PASSWORD)
            assert answer.status_code == 303, answer.text


async def test_the_password_is_verified_off_the_event_loop(
    db: Database, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    staff = await make_staff(db, "admin")
    on_loop: list[bool] = []
    verify = hub.staff._password_matches

    def recording(stored: str, password: str) -> bool:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            on_loop.append(False)
        else:
            on_loop.append(True)
        return verify(stored, password)

    monkeypatch.setattr(hub.staff, "_password_matches", recording)
    async with console_http(console_settings(database_url)) as http:
        assert (await _attempt(http, staff.email, "not the password")).status_code == 401
        assert (await _attempt(http, "nobody@example.test", "x")).status_code == 401
        assert (await _attempt(http, staff.email, PASSWORD)).status_code == 303
    assert on_loop == [False, False, False]
