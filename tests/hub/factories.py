"""Plain factory functions for test data: ``make_customer(db, **overrides)`` and friends.

Each writes its row in its own committed transaction and returns it (attributes stay
loaded: the session factory does not expire on commit). ``make_customers`` writes many
rows in one transaction for seeding large pages.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from itertools import count
from typing import Any

from sqlalchemy import func, select
from sqlmodel import SQLModel

from hub.db import Database
from hub.models import Customer, CustomerPartner, Feedback, Interaction, Organization, Purchase
from hub.vault import email_index, phone_index
from schema.ids import to_global_id

_serial = count(1)


def customer_values(**overrides: Any) -> dict[str, Any]:
    n = next(_serial)
    values: dict[str, Any] = {
        "name": f"Customer {n:04d}",
        "email": f"customer{n}@example.com",
        "phone": "+14155552671",
        "company": f"Company {n:04d}",
        "city": "Lyon",
        "region": "ARA",
        "country": "FR",
        "segment": "smb",
        "lifecycle_stage": "customer",
        "lifetime_value": Decimal("1234.50"),
        "traits": {"tier": "gold"},
        "provenance": {"name": {"organization": "operator"}},
    }
    values.update(overrides)
    # The blind indexes follow the values, as every hub write keeps them.
    values.setdefault("email_index", email_index(values["email"]))
    values.setdefault("phone_index", phone_index(values["phone"]))
    return values


async def make_customer(db: Database, **overrides: Any) -> Customer:
    customer = Customer(**customer_values(**overrides))
    async with db.transaction() as session:
        session.add(customer)
    return customer


async def make_customers(db: Database, rows: Sequence[dict[str, Any]]) -> list[Customer]:
    """Many customers in one transaction; each dict overrides :func:`customer_values`."""
    customers = [Customer(**customer_values(**row)) for row in rows]
    async with db.transaction() as session:
        session.add_all(customers)
    return customers


async def save(db: Database, rows: Sequence[SQLModel]) -> None:
    """Write ready-made rows in one transaction (bulk seeding)."""
    async with db.transaction() as session:
        session.add_all(rows)


async def assign(
    db: Database,
    customer: Customer,
    org: Organization,
    *,
    role: str = "reseller",
    since: datetime | None = None,
) -> CustomerPartner:
    link = CustomerPartner(customer_id=customer.id, organization_id=org.id, role=role)
    if since is not None:
        link.since = since
    async with db.transaction() as session:
        session.add(link)
    return link


async def make_feedback(
    db: Database, customer: Customer, org: Organization, **overrides: Any
) -> Feedback:
    values: dict[str, Any] = {
        "channel": "email",
        "kind": "praise",
        "text": f"Feedback {next(_serial)}",
        "visibility": "internal",
    }
    values.update(overrides)
    feedback = Feedback(customer_id=customer.id, organization_id=org.id, **values)
    async with db.transaction() as session:
        session.add(feedback)
    return feedback


async def make_interaction(
    db: Database, customer: Customer, org: Organization, **overrides: Any
) -> Interaction:
    values: dict[str, Any] = {
        "channel": "phone",
        "direction": "inbound",
        "summary": f"Call {next(_serial)}",
    }
    values.update(overrides)
    interaction = Interaction(customer_id=customer.id, organization_id=org.id, **values)
    async with db.transaction() as session:
        session.add(interaction)
    return interaction


async def make_purchase(
    db: Database, customer: Customer, org: Organization, **overrides: Any
) -> Purchase:
    values: dict[str, Any] = {
        "sku": f"SKU-{next(_serial)}",
        "quantity": 1,
        "amount": Decimal("19.90"),
        "currency": "EUR",
    }
    values.update(overrides)
    purchase = Purchase(customer_id=customer.id, organization_id=org.id, **values)
    async with db.transaction() as session:
        session.add(purchase)
    return purchase


async def count_rows(db: Database, model: type[SQLModel]) -> int:
    async with db.session() as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


async def load(db: Database, model: type[SQLModel], record_id: uuid.UUID) -> Any:
    """The row as stored now (a fresh session, nothing cached)."""
    async with db.session() as session:
        return await session.get(model, record_id)


def gid(row: Customer | Feedback | Interaction | Purchase) -> str:
    """The Relay global ID of a row."""
    return to_global_id(type(row).__name__, row.id)


def missing_gid(type_name: str = "Customer") -> str:
    """A well-formed global ID that names no row."""
    return to_global_id(type_name, uuid.uuid4())
