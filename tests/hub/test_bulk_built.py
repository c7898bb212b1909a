"""Statements built once and run for every batch (hub.bulk.built_once, any_param): kept per
key and condition, built anew for a new condition, and their keys bound at each run."""

from __future__ import annotations

from sqlalchemy import select, true
from sqlmodel import col

from hub.bulk import any_param, built_once
from hub.db import Database
from hub.models import Customer
from tests.hub.factories import make_customers


def test_a_statement_is_built_once_per_key_and_condition() -> None:
    built: list[object] = []

    def build(tag: str) -> object:
        built.append(tag)
        return object()

    first, second = object(), object()  # two row filters, say
    one = built_once(("test", "a"), first, lambda: build("one"))
    assert built_once(("test", "a"), first, lambda: build("again")) is one
    other = built_once(("test", "a"), second, lambda: build("two"))  # new rules, say
    assert other is not one
    # Two conditions taking turns keep a statement each.
    assert built_once(("test", "a"), first, lambda: build("three")) is one
    assert built_once(("test", "a"), second, lambda: build("four")) is other
    assert built_once(("test", "b"), first, lambda: build("five")) is not one
    assert built == ["one", "two", "five"]


async def test_any_param_binds_the_keys_of_each_run(db: Database) -> None:
    people = await make_customers(db, [{"name": f"P{n}"} for n in range(5)])
    ids = [p.id for p in people]
    dialect = db.engine.dialect.name
    statement = built_once(
        ("test any_param", dialect),
        true(),
        lambda: select(col(Customer.id)).where(any_param(dialect, col(Customer.id), "ids")),
    )
    async with db.session() as session:
        for wanted in (ids[:2], ids[1:4], [ids[4]], []):
            found = await session.execute(statement, {"ids": wanted})
            assert sorted(found.scalars()) == sorted(wanted)
