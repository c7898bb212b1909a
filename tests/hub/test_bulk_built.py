"""Statements built once and run for every batch (hub.bulk.built_once, any_param, Prebuilt):
kept per key and condition, built anew for a new condition, their keys bound at each run,
and run by the driver with the rows SQLAlchemy would give."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text, true
from sqlalchemy.exc import DBAPIError
from sqlmodel import col

from hub.bulk import Prebuilt, any_param, built_once
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


async def test_a_prebuilt_statement_gives_the_rows_sqlalchemy_gives(db: Database) -> None:
    people = await make_customers(
        db,
        [
            {"name": "A", "country": "FR", "segment": "smb"},
            {"name": "B", "country": "DE", "segment": "smb"},
            {"name": "C", "country": "IT", "segment": "smb"},
            {"name": "D", "country": "FR", "segment": "enterprise"},
        ],
    )
    ids = [p.id for p in people]
    dialect = db.engine.dialect.name
    # The statement's own values (a list written out, a text, a number) and the keys
    # given at each run, as a row filter and a batch's lookup make them.
    statement = select(col(Customer.id), col(Customer.country)).where(
        any_param(dialect, col(Customer.id), "ids"),
        col(Customer.country).in_(["FR", "DE"]),
        col(Customer.segment) == "smb",
        col(Customer.lifetime_value) > 0,
    )
    prebuilt = Prebuilt(statement)
    async with db.transaction() as session:
        # First in its transaction (through the session, which begins it), then by the
        # driver on PostgreSQL: the same rows each time, and what SQLAlchemy gives.
        for wanted in (ids, ids[1:], ids[2:], []):
            got = await prebuilt.rows(session, {"ids": wanted})
            expected = (await session.execute(statement, {"ids": wanted})).all()
            assert sorted((row[0], row[1]) for row in got) == sorted(
                (row[0], row[1]) for row in expected
            )
        assert sorted(row[1] for row in await prebuilt.rows(session, {"ids": ids})) == ["DE", "FR"]
        # A text statement, and the database's refusal raised as SQLAlchemy's.
        failing = Prebuilt(text("SELECT 1 / (:n - 1)"))
        assert [tuple(r) for r in await failing.rows(session, {"n": 2})] == [(1,)]
    if dialect == "postgresql":
        async with db.transaction() as session:
            await session.execute(text("SELECT 1"))  # the driver runs the next
            with pytest.raises(DBAPIError):
                await failing.rows(session, {"n": 1})
