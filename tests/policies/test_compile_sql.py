"""The SQL compiler against the oracle, on SQLite and PostgreSQL, over random policies,
callers, conditions and data.

Each example inserts its rows into tables made for this run, checks that the compiled
plan selects exactly the rows :func:`policies.evaluate` shows and decides their fields
alike, and that every compiled condition has the oracle's three-valued result; then
rolls back. ``HUB_HYPOTHESIS_EXAMPLES`` sets the examples per backend (CI: 1000).
"""

from __future__ import annotations

import decimal
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import JSON, MetaData, case, literal, not_, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from policies import (
    Caller,
    Catalog,
    Compare,
    Condition,
    Document,
    Join,
    compile_condition,
    evaluate,
    holds,
    plan,
)
from tests.policies.strategies import (
    CATALOG,
    Dataset,
    TablesMapping,
    callers,
    conditions,
    datasets,
    documents,
    make_tables,
    oracle_customer,
    oracle_feedback,
)
from tests.policies.test_compile import ARRAYS_IN_PATHS, CALLER, CASES

settings.register_profile(
    "policies-sql",
    max_examples=int(os.environ.get("HUB_HYPOTHESIS_EXAMPLES", "200")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
SQL_PROFILE = settings.get_profile("policies-sql")


@dataclass(frozen=True)
class Env:
    conn: AsyncConnection
    mapping: TablesMapping


async def linguistic_collation(conn: AsyncConnection) -> str | None:
    """An ICU collation ordering "B" after "a" on PostgreSQL, if the server has one."""
    if conn.dialect.name != "postgresql":
        return None
    query = text("SELECT collname FROM pg_collation WHERE collname = 'und-x-icu'")
    return (await conn.execute(query)).scalar()


@pytest.fixture(scope="module")
async def env(database_url: str) -> AsyncIterator[Env]:
    engine = create_async_engine(database_url)
    metadata = MetaData()
    async with engine.begin() as conn:
        collation = await linguistic_collation(conn)
        mapping = TablesMapping(*make_tables(metadata, uuid.uuid4().hex[:8], collation))
        await conn.run_sync(metadata.create_all)
    try:
        async with engine.connect() as conn:
            # Every example's statements are new: cache keys would only cost time.
            yield Env(await conn.execution_options(compiled_cache=None), mapping)
    finally:
        async with engine.begin() as conn:
            await conn.run_sync(metadata.drop_all)
        await engine.dispose()


async def insert(env: Env, data: Dataset, resource: str) -> None:
    m = env.mapping
    if data.customers:
        rows = [
            {k: (JSON.NULL if v == "json-null" else v) for k, v in c.items() if k != "assignments"}
            for c in data.customers
        ]
        await env.conn.execute(m.customer.insert(), rows)
    assignments = [{"customer_id": c["id"], **a} for c in data.customers for a in c["assignments"]]
    if assignments:
        numbered = [{"id": i, **a} for i, a in enumerate(assignments)]
        await env.conn.execute(m.partner.insert(), numbered)
    if data.feedback and resource == "Feedback":  # a round trip less for customers
        await env.conn.execute(m.feedback.insert(), data.feedback)


def records(resource: str, data: Dataset) -> dict[str, dict[str, Any]]:
    if resource == "Customer":
        return {str(c["id"]): oracle_customer(c) for c in data.customers}
    return {str(f["id"]): oracle_feedback(f, data) for f in data.feedback}


def _scenario(resource: str) -> st.SearchStrategy[tuple[str, Document, list[Condition]]]:
    conds = st.lists(conditions(resource), min_size=1, max_size=2)
    return st.tuples(st.just(resource), documents(resource), conds)


scenarios = st.one_of(_scenario("Customer"), _scenario("Feedback"))


@SQL_PROFILE
@given(scenario=scenarios, caller=callers, data=datasets())
async def test_compiled_policy_matches_the_oracle(
    env: Env, scenario: tuple[str, Document, list[Condition]], caller: Caller, data: Dataset
) -> None:
    resource, doc, conds = scenario
    by_id = records(resource, data)
    trans = await env.conn.begin()
    try:
        await insert(env, data, resource)
        table = env.mapping.table(resource)

        # (1) where selects the visible rows; (2) decide gives the oracle's fields.
        compiled = plan(doc, CATALOG, caller, resource, env.mapping)
        query = select(table.c.id, *compiled.columns).where(compiled.where)
        seen = {str(row["id"]): row for row in (await env.conn.execute(query)).mappings()}
        decisions = {i: evaluate(doc, CATALOG, caller, resource, r) for i, r in by_id.items()}
        assert set(seen) == {i for i, d in decisions.items() if d.row_visible}
        for i, row in seen.items():
            assert dict(compiled.decide(row)) == dict(decisions[i].fields), i
        assert compiled.static == (not compiled.columns)

        # (3) each condition has the oracle's three-valued result on every row.
        outcomes = []
        for n, cond in enumerate(conds):
            sql = compile_condition(cond, resource, table, caller, CATALOG, env.mapping)
            outcomes.append(case((sql, literal(1)), (not_(sql), literal(0))).label(f"c{n}"))
        query = select(table.c.id, *outcomes)
        for row in (await env.conn.execute(query)).mappings():
            record = by_id[str(row["id"])]
            for n, cond in enumerate(conds):
                got = None if row[f"c{n}"] is None else bool(row[f"c{n}"])
                assert got is holds(cond, record, caller), (cond, record)
    finally:
        await trans.rollback()


async def test_the_worked_examples_on_both_backends(env: Env) -> None:
    """The examples of ``test_compile.py`` (collation, uuid text, JSON index-like keys...)
    give the same results here: (condition, row, SQL result)."""
    examples = [(c, row, expected) for c, row, expected in CASES]
    examples += [(c, row, by_sql) for c, row, _, by_sql in ARRAYS_IN_PATHS]
    m = env.mapping
    for cond, row, expected in examples:
        trans = await env.conn.begin()
        try:
            values = {k: (JSON.NULL if v is None and k == "traits" else v) for k, v in row.items()}
            del values["assignments"]
            await env.conn.execute(m.customer.insert(), values)
            for i, assignment in enumerate(row["assignments"]):
                await env.conn.execute(
                    m.partner.insert(), {"id": i, "customer_id": row["id"], **assignment}
                )
            sql = compile_condition(cond, "Customer", m.customer, CALLER, CATALOG, m)
            query = select(case((sql, literal(1)), (not_(sql), literal(0))))
            value = (await env.conn.execute(query)).scalar()
            assert (None if value is None else bool(value)) is expected, cond
        finally:
            await trans.rollback()


async def test_decimals_compare_exactly_on_postgresql_and_as_doubles_on_sqlite(
    env: Env,
) -> None:
    """A float literal is bound as its exact binary value next to a numeric column, so on
    PostgreSQL Decimal("0.10") < 0.1, as in Python. SQLite stores numerics as doubles:
    there 0.10 is 0.1 (docs/production.md: use PostgreSQL where exact amounts matter)."""
    catalog = Catalog.from_dict({"Customer": {"fields": {"balance": "number"}}})
    m = env.mapping
    row = {"id": uuid.uuid4(), "balance": decimal.Decimal("0.10")}
    exact = env.conn.dialect.name == "postgresql"
    for op, in_python, as_doubles in [
        ("eq", False, True),
        ("lt", True, False),
        ("gt", False, False),
    ]:
        cond = Compare("balance", op, 0.1)
        assert holds(cond, row, CALLER) is in_python
        trans = await env.conn.begin()
        try:
            await env.conn.execute(m.customer.insert(), row)
            sql = compile_condition(cond, "Customer", m.customer, CALLER, catalog, m)
            got = (await env.conn.execute(select(sql))).scalar()
            assert bool(got) is (in_python if exact else as_doubles), op
        finally:
            await trans.rollback()


@dataclass(frozen=True)
class WithinCustomer(TablesMapping):
    """The test tables, evaluated on feedback rows joined to their customer ``row``
    (a nested read's enclosing row): ``Feedback.customer`` is bound to it."""

    row: Any = None

    def relation(self, resource: str, table: Any, name: str) -> Join:
        if (resource, name) == ("Feedback", "customer") and table is self.feedback:
            return Join("Customer", self.row, self.row.c.id == table.c.customer_id, False, True)
        return super().relation(resource, table, name)


@SQL_PROFILE
@given(
    doc=documents("Feedback"),
    conds=st.lists(conditions("Feedback"), min_size=1, max_size=2),
    caller=callers,
    data=datasets(),
)
async def test_a_relation_bound_to_the_enclosing_row_selects_and_decides_alike(
    env: Env, doc: Document, conds: list[Condition], caller: Caller, data: Dataset
) -> None:
    """A plan whose ``Feedback.customer`` paths read the enclosing customer row (a bound
    :class:`Join`) selects the same feedback of each customer, with the same rule
    columns, and every condition has the same three-valued result, as the plan that
    looks the customer up per row."""
    m = env.mapping
    row = m.customer.alias("enclosing")
    within = WithinCustomer(m.customer, m.partner, m.feedback, row)
    trans = await env.conn.begin()
    try:
        await insert(env, data, "Feedback")
        answers = []
        for mapping in (m, within):
            compiled = plan(doc, CATALOG, caller, "Feedback", mapping)
            outcomes = [
                case((sql, literal(1)), (not_(sql), literal(0))).label(f"c{n}")
                for n, sql in enumerate(
                    compile_condition(c, "Feedback", m.feedback, caller, CATALOG, mapping)
                    for c in conds
                )
            ]
            query = (
                select(m.feedback.c.id, *compiled.columns, *outcomes)
                .select_from(row.join(m.feedback, m.feedback.c.customer_id == row.c.id))
                .where(compiled.where)
                .order_by(m.feedback.c.id)
            )
            answers.append([dict(r) for r in (await env.conn.execute(query)).mappings()])
        assert answers[0] == answers[1]
    finally:
        await trans.rollback()
