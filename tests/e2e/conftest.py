"""Fixtures of the console's browser tests: one ``hub serve`` (seeded by ``hub demo`` and
:data:`~tests.e2e.console_support.SEED`) and one headless Chromium for the whole run,
shared by ``test_console_browser.py`` and ``test_console_keyboard.py``."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, async_playwright

from tests.e2e.console_support import (
    CHROMIUM,
    PASSWORD,
    PROPOSED_CITIES,
    SEED,
    STAFF,
    chromium_present,
    run_python,
)
from tests.e2e.server import HubServer, hub_env, start_server, stop


@pytest.fixture(scope="session")
async def console_server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[HubServer]:
    if not chromium_present():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (.ci/run does)")
    workdir = tmp_path_factory.mktemp("hub-console")
    server = await start_server(workdir, "sqlite", hub_env())
    try:
        staff = (f"{role}={email}" for role, email in STAFF.items())
        cities = (f"city:{city}" for city in PROPOSED_CITIES)
        await run_python(server, SEED, PASSWORD, *staff, *cities)
        yield server
    finally:
        await stop(server.process)


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        try:
            yield launched
        finally:
            await launched.close()
