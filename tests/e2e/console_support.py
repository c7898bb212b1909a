"""What the console's browser tests share (``test_console_browser.py``,
``test_console_keyboard.py``): Debian's Chromium, the staff users of each role and the seed
that makes them, and the screenshots each test saves. The server and browser fixtures are
in this folder's ``conftest.py`` (one of each for the whole run)."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

from playwright.async_api import Page

from tests.e2e.server import HUB, HubServer

CHROMIUM = os.environ.get("HUB_CHROMIUM", "/usr/bin/chromium")
PASSWORD = "a console test password"
AXE_SOURCE = (Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js").read_text()
STAFF = {
    "admin": "admin@console.test",
    "policy_editor": "editor@console.test",
    "analyst": "analyst@console.test",
}


# Run in the server's folder with its settings: the staff users of each role (arguments
# role=email, password PASSWORD), and a partner's proposed changes for the review queue
# (arguments city:<value>, on the first customers by name; one for each test file that
# approves one), made through the hub's own code (the value sealed like the hub seals it).
PROPOSED_CITIES = ("Proposed City", "Keyboard City")
SEED = """
import asyncio, sys
from sqlmodel import col, select
from hub.db import Database, make_engine
from hub.models import Customer, Organization, ProposedChange
from hub.proposals import encode_value
from hub.settings import load_settings
from hub.staff import create_staff_user
from hub.vault import load_data_keys

async def main():
    settings = load_settings()
    db = Database(make_engine(settings.database_url))
    async with db.session() as s:
        await load_data_keys(s, settings.master_key)
    async with db.transaction() as s:
        orgs = {o.slug: o for o in (await s.execute(select(Organization))).scalars()}
        for pair in sys.argv[2:]:
            if pair.startswith("city:"):
                continue
            role, email = pair.split("=")
            await create_staff_user(s, organization=orgs["operator"], email=email, name=role,
                                    password=sys.argv[1], roles=[role])
        customers = (await s.execute(select(Customer).order_by(col(Customer.name)))).scalars()
        partner = orgs["acme-distribution"]
        cities = [a[5:] for a in sys.argv[2:] if a.startswith("city:")]
        for city, customer in zip(cities, customers):
            s.add(ProposedChange(customer_id=customer.id, field="city",
                                 value=encode_value(city), organization_id=partner.id,
                                 organization=partner.slug, client="e2e",
                                 base_version=customer.version))
    await db.dispose()

asyncio.run(main())
"""


async def run_python(server: HubServer, script: str, *args: str) -> None:
    python = str(Path(HUB).parent / "python")
    process = await asyncio.create_subprocess_exec(
        python,
        "-c",
        script,
        *args,
        cwd=server.workdir,
        env=server.env,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await process.communicate()
    assert process.returncode == 0, err.decode()


def chromium_present() -> bool:
    return Path(CHROMIUM).exists() or shutil.which("chromium") is not None


def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("HUB_SCREENSHOTS", tmp_path))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


async def screenshot(page: Page, tmp_path: Path, name: str) -> None:
    path = shots(tmp_path) / f"console-{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 1000
