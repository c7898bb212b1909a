"""Importing customers: upserts by identity resolution under source precedence (created,
unchanged, updated, queued for review), through the sales department's policy."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select
from sqlmodel import col

from hub.access import Resource
from hub.db import Database
from hub.models import Customer, ExternalRef, ProposedChange
from tests.conftest import make_org
from tests.hub.factories import make_customer
from tests.hub.sync_helpers import count, dead_letters, import_file, runner

HEADER = "external_id,name,email,phone,city,lifetimeValue,shareWithPartners\n"


async def test_customers_are_upserted_under_source_precedence(db: Database, tmp_path: Path) -> None:
    await make_org(db, "department", "sales", attributes={"roles": ["sales"]})
    # Her name was set by the operator (a stamp of unknown kind ranks highest): a
    # department's different name for her is left for review.
    known = await make_customer(db, name="Ada Lovelace", email="ada@example.com", city="London")
    path = tmp_path / "crm.csv"
    path.write_text(
        HEADER
        + "c1,Ada L.,ada@example.com,,London,,\n"
        + "c2,Grace Hopper,grace@example.com,+442071838750,Arlington,,yes\n"
        + "c5,Big Spender,big@example.com,,Oslo,99.5,\n"
        + "c3,Bad Phone,bad@example.com,12,Oslo,,\n"
        + "c4,No Consent Word,nc@example.com,,Rome,,perhaps\n"
    )
    name = await import_file(db, path, org="sales", resource=Resource.CUSTOMER)
    first = await runner(db).run(name, rewind_if_done=True)
    assert first.status == "succeeded", first.error
    counts = first.counts
    # Ada matched by email: her email is sealed, so re-applying it counts as an update
    # (as upsertCustomer does); her name, set by a higher-precedence source, is queued.
    assert (counts.created, counts.updated, counts.queued, counts.dead_lettered) == (1, 1, 0, 3)
    letters = {d.position: d.reason for d in await dead_letters(db)}
    # Sales may not set a customer's lifetime value (the default policy): refused.
    assert letters["line 4"] == "lifetimeValue: the sharing policy does not let you set this field"
    assert letters["line 5"].startswith("phone: is not")
    assert letters["line 6"] == "shareWithPartners: must be true or false"
    async with db.session() as session:
        ada = await session.get(Customer, known.id)
        grace = (
            await session.execute(select(Customer).where(col(Customer.name) == "Grace Hopper"))
        ).scalar_one()
        refs = (
            await session.execute(select(col(ExternalRef.external_id), col(ExternalRef.source)))
        ).all()
    assert ada is not None and ada.name == "Ada Lovelace"  # not overwritten
    assert await count(db, ProposedChange, col(ProposedChange.field) == "name") == 1
    assert grace.city == "Arlington" and grace.consent_share_with_partners is True
    assert sorted(refs) == [("c1", "sales"), ("c2", "sales")]

    again = await runner(db).run(name, rewind_if_done=True)
    assert (again.counts.created, again.counts.unchanged, again.counts.dead_lettered) == (0, 2, 3)
    assert await count(db, Customer) == 2
