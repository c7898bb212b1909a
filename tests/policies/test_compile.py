"""The SQL compiler by example: the SQL it writes, and its results on an in-memory SQLite
database next to the oracle's. ``test_compile_sql.py`` checks it at random on both
backends."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Connection, MetaData, case, create_engine, literal, not_, select
from sqlalchemy.dialects import mysql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import CompileError
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.expression import FromClause

from policies import (
    And,
    Caller,
    CatalogError,
    Compare,
    Condition,
    Document,
    Effect,
    FieldDecision,
    Join,
    MaskSpec,
    Not,
    Or,
    Outcome,
    Read,
    Rule,
    Subject,
    Variable,
    compile_condition,
    evaluate,
    holds,
    plan,
)
from tests.policies.strategies import CATALOG, TablesMapping, make_tables

METADATA = MetaData()
MAPPING = TablesMapping(*make_tables(METADATA, "t"))
CUSTOMER = MAPPING.customer
CALLER = Caller(
    "acme",
    "distributor",
    roles=frozenset({"partner"}),
    attributes={"regions": ["north", "south"], "level": 3},
)
POSTGRESQL = make_url("postgresql+asyncpg://").get_dialect()()
CUSTOMER_ID = uuid.UUID("0a1b2c3d-1234-5678-9abc-def012345678")


def sql(cond: Condition, dialect: Any = None, resource: str = "Customer") -> str:
    """The condition as the WHERE clause of a select of its table, in ``dialect``."""
    table = MAPPING.table(resource)
    query = select(table.c.id).where(
        compile_condition(cond, resource, table, CALLER, CATALOG, MAPPING)
    )
    text = str(query.compile(dialect=dialect or sqlite.dialect()))
    return text.split("WHERE ", 1)[1]


def params(cond: Condition) -> list[Any]:
    expr = compile_condition(cond, "Customer", CUSTOMER, CALLER, CATALOG, MAPPING)
    return list(expr.compile(dialect=sqlite.dialect()).params.values())


# -- the SQL ----------------------------------------------------------------------------------


def test_a_simple_comparison_is_plain_sql() -> None:
    assert sql(Compare("region", "eq", "north")) == "pc_customer_t.region = ?"
    assert sql(Compare("visits", "gte", 3)) == "pc_customer_t.visits >= ?"
    assert sql(Compare("email", "is_null", True)) == "pc_customer_t.email IS NULL"
    assert sql(Not(Compare("region", "in", ("a", "b")))) == "(pc_customer_t.region NOT IN (?, ?))"


def test_variables_are_bound_to_literals() -> None:
    regions = Compare("region", "in", Variable("subject.attributes.regions"))
    assert sql(regions) == "pc_customer_t.region IN (?, ?)"
    assert params(regions) == ["north", "south"]
    assert params(Compare("name", "eq", Variable("subject.org"))) == ["acme"]
    assert params(Compare("name", "in", Variable("subject.roles"))) == ["partner"]


def test_a_many_relation_is_exists() -> None:
    text = sql(Compare("assignments.organization", "eq", Variable("subject.org")))
    assert text.startswith(
        "EXISTS (SELECT 1 \nFROM pc_customer_partner_t AS pc_customer_partner_t_1"
    )
    assert "pc_customer_partner_t_1.customer_id = pc_customer_t.id" in text
    assert "pc_customer_partner_t_1.organization = ?" in text
    assert ", pc_customer_t" not in text  # correlated, not joined again


def test_a_one_relation_is_a_scalar_subquery_defaulting_for_a_missing_row() -> None:
    text = sql(Compare("customer.region", "is_null", True), resource="Feedback")
    assert text.startswith("coalesce((SELECT pc_customer_t_1.region IS NULL")
    unknown_if_missing = sql(Compare("customer.region", "eq", "x"), resource="Feedback")
    assert unknown_if_missing.startswith("(SELECT pc_customer_t_1.region = ?")


def test_strings_order_by_code_point() -> None:
    cond = Compare("region", "gt", "m")
    assert sql(cond) == "(pc_customer_t.region COLLATE BINARY) > ?"
    assert sql(cond, POSTGRESQL) == ('(pc_customer_t.region COLLATE "C") > $1::VARCHAR')


def test_json_comparisons_branch_on_the_json_type() -> None:
    cond = Compare("traits.tier", "eq", "gold")
    assert "json_type(pc_customer_t.traits, ?)" in sql(cond)
    assert "jsonb_typeof(CAST((pc_customer_t.traits #> " in sql(cond, POSTGRESQL)


def test_comparisons_python_cannot_make_are_constants() -> None:
    # "x" never equals a number; "north" > 1 raises in Python: unknown.
    assert sql(Compare("visits", "eq", "x")) == (
        "CASE WHEN (pc_customer_t.visits IS NULL) THEN CAST(NULL AS BOOLEAN) ELSE 0 END = 1"
    )
    assert sql(Compare("region", "gt", 1)) == "CAST(NULL AS BOOLEAN) = 1"


def test_only_sqlite_and_postgresql_are_supported() -> None:
    with pytest.raises(CompileError, match="SQLite and PostgreSQL"):
        sql(Compare("traits.tier", "eq", "gold"), mysql.dialect())


def test_a_path_outside_the_catalog_is_an_error() -> None:
    with pytest.raises(CatalogError, match="unknown field 'nope'"):
        sql(Compare("nope", "eq", "x"))
    with pytest.raises(CatalogError, match="is a relation"):
        sql(Compare("assignments", "eq", "x"))


class MismatchedMapping(TablesMapping):
    def relation(self, resource: str, table: FromClause, name: str) -> Join:
        join = super().relation(resource, table, name)
        return Join(join.resource, join.target, join.on, not join.many)


def test_a_mapping_contradicting_the_catalog_is_an_error() -> None:
    mapping = MismatchedMapping(MAPPING.customer, MAPPING.partner, MAPPING.feedback)
    with pytest.raises(CatalogError, match="many=False"):
        compile_condition(
            Compare("assignments.role", "eq", "x"), "Customer", CUSTOMER, CALLER, CATALOG, mapping
        )


class RegionsInUppercase(TablesMapping):
    def compare(
        self, resource: str, table: FromClause, field: str, op: str, value: Any
    ) -> ColumnElement[bool] | None:
        if field == "region" and op == "eq":
            return table.c.region == str(value).upper()
        return None


def test_the_mapping_may_compile_a_comparison_itself() -> None:
    mapping = RegionsInUppercase(MAPPING.customer, MAPPING.partner, MAPPING.feedback)
    expr = compile_condition(
        Compare("region", "eq", Variable("subject.org")),
        "Customer",
        CUSTOMER,
        CALLER,
        CATALOG,
        mapping,
    )
    assert list(expr.compile().params.values()) == ["ACME"]


# -- results next to the oracle's ---------------------------------------------------------------


@pytest.fixture(scope="module")
def conn() -> Iterator[Connection]:
    engine = create_engine("sqlite://")
    METADATA.create_all(engine)
    with engine.connect() as connection:
        yield connection
    engine.dispose()


def customer(**values: Any) -> dict[str, Any]:
    """A customer row (the JSON ``traits`` as given) and its assignments."""
    return {"id": CUSTOMER_ID, "traits": None, "assignments": [], **values}


def run(conn: Connection, cond: Condition, row: dict[str, Any]) -> bool | None:
    """The compiled condition on ``row``, inserted then rolled back."""
    with conn.begin() as trans:
        conn.execute(CUSTOMER.insert(), {k: v for k, v in row.items() if k != "assignments"})
        for i, assignment in enumerate(row["assignments"]):
            conn.execute(
                MAPPING.partner.insert(), {"id": i, "customer_id": row["id"], **assignment}
            )
        expr = compile_condition(cond, "Customer", CUSTOMER, CALLER, CATALOG, MAPPING)
        value = conn.execute(select(case((expr, literal(1)), (not_(expr), literal(0))))).scalar()
        trans.rollback()
    return None if value is None else bool(value)


def oracle(cond: Condition, row: dict[str, Any]) -> bool | None:
    record = {**row, "id": str(row["id"])}
    return holds(cond, record, CALLER)


CASES: list[tuple[Condition, dict[str, Any], bool | None]] = [
    (Compare("region", "eq", "north"), customer(region=None), None),
    (Not(Compare("region", "eq", "north")), customer(region=None), None),
    (Compare("region", "in", ("x", None)), customer(region="y"), None),
    (Compare("region", "in", ("y", None)), customer(region="y"), True),
    (Compare("region", "nin", ("x", None)), customer(region="y"), None),
    (
        Compare("region", "in", Variable("subject.attributes.regions")),
        customer(region="south"),
        True,
    ),
    (Compare("region", "in", "north"), customer(region="n"), True),  # a string's characters
    (Compare("region", "in", 3), customer(region="n"), None),  # not iterable
    (Compare("region", "lt", "a"), customer(region="B"), True),  # code point order
    (Compare("region", "gt", "z"), customer(region="é"), True),
    (Compare("name", "lt", "a"), customer(name="B"), True),  # an ICU collation on PostgreSQL
    (
        Compare("consent_share_with_partners", "eq", 1),
        customer(consent_share_with_partners=True),
        False,
    ),
    (
        Compare("consent_share_with_partners", "gt", 0),
        customer(consent_share_with_partners=True),
        True,
    ),
    (Compare("visits", "eq", True), customer(visits=1), False),
    (Compare("visits", "gte", True), customer(visits=1), True),
    (Compare("lifetime_value", "eq", 2), customer(lifetime_value=2.0), True),
    (Compare("born", "gt", "2024-01-01"), customer(born=dt.date(2024, 5, 1)), True),
    (Compare("born", "eq", "not a date"), customer(born=dt.date(2024, 5, 1)), None),
    (
        Compare("created_at", "gt", "2024-01-01T00:00:00+00:00"),
        customer(created_at=dt.datetime(2024, 5, 1, tzinfo=dt.UTC)),
        True,
    ),
    # Python cannot order aware and naive datetimes, and they are never equal.
    (
        Compare("created_at", "gt", "2024-01-01"),
        customer(created_at=dt.datetime(2024, 5, 1, tzinfo=dt.UTC)),
        None,
    ),
    (
        Compare("created_at", "ne", dt.datetime(2024, 5, 1)),
        customer(created_at=dt.datetime(2024, 5, 1, tzinfo=dt.UTC)),
        True,
    ),
    (Compare("seen_at", "eq", "2024-05-01"), customer(seen_at=dt.datetime(2024, 5, 1)), True),
    (Compare("id", "eq", str(CUSTOMER_ID)), customer(), True),
    (Compare("id", "eq", str(CUSTOMER_ID).upper()), customer(), False),
    (Compare("id", "gt", "0"), customer(), True),
    (Compare("assignments.organization", "eq", "acme"), customer(), False),
    (
        Compare("assignments.organization", "is_null", True),
        customer(assignments=[{"organization": None}]),
        True,
    ),
    (
        Compare("assignments.organization", "ne", "acme"),
        customer(assignments=[{"organization": "acme"}, {"organization": "x"}]),
        True,
    ),
    (Compare("traits.tier", "eq", "gold"), customer(traits={"tier": "gold"}), True),
    (Compare("traits.tier", "eq", 1), customer(traits={"tier": "1"}), False),
    (Compare("traits.tier", "eq", 1), customer(traits={"tier": True}), False),
    (Compare("traits.tier", "gt", 0), customer(traits={"tier": True}), True),
    (Compare("traits.tier", "gt", 0), customer(traits={"tier": "x"}), None),
    (Compare("traits.tier", "is_null", True), customer(traits={"tier": None}), True),
    (Compare("traits.tier", "eq", "x"), customer(traits={}), None),
    (Compare("traits.tags", "eq", ("a", 1)), customer(traits={"tags": ["a", 1.0]}), True),
    (Compare("traits.tags", "eq", ("a",)), customer(traits={"tags": ["a", "b"]}), False),
    (Compare("traits.tags", "lt", ("a", "c")), customer(traits={"tags": ["a", "b", "z"]}), True),
    (Compare("traits.tags", "gt", ("a", 1)), customer(traits={"tags": ["a", "b"]}), None),
    (Compare("traits.tags", "eq", ([1], True)), customer(traits={"tags": [[1], 1]}), True),
    (Compare("traits.info", "eq", {"x": 1}), customer(traits={"info": {"x": 1.0}}), True),
    (Compare("traits.info", "eq", {"x": 1}), customer(traits={"info": {"x": 1, "y": 2}}), False),
    (Compare("traits", "in", ("a", ("b",))), customer(traits=["b"]), True),
    (
        Or((And((Compare("region", "eq", "x"),)), Compare("traits.vip", "eq", True))),
        customer(region=None, traits={"vip": True}),
        True,
    ),
]


@pytest.mark.parametrize(("cond", "row", "expected"), CASES)
def test_results_are_the_oracles(
    conn: Connection, cond: Condition, row: dict[str, Any], expected: bool | None
) -> None:
    assert oracle(cond, row) is expected
    assert run(conn, cond, row) is expected


# A known difference: the oracle tries each element of a JSON array met before the end of
# a path (as through a many relation); SQL reads the path as missing, on both backends
# (PostgreSQL's #> would read "0" as an index). (condition, row, oracle, SQL)
ARRAYS_IN_PATHS: list[tuple[Condition, dict[str, Any], bool | None, bool | None]] = [
    (Compare("traits.info.x", "eq", 1), customer(traits={"info": [{"x": 1}]}), True, None),
    (Compare("traits.info.0", "eq", 5), customer(traits={"info": [5]}), False, None),
    (Compare("traits.info.0", "is_null", True), customer(traits={"info": [5]}), True, True),
    (Compare("traits.info.0", "eq", 5), customer(traits={"info": {"0": 5}}), True, True),
]


@pytest.mark.parametrize(("cond", "row", "by_oracle", "by_sql"), ARRAYS_IN_PATHS)
def test_a_json_array_inside_a_path_reads_as_missing(
    conn: Connection,
    cond: Condition,
    row: dict[str, Any],
    by_oracle: bool | None,
    by_sql: bool | None,
) -> None:
    assert oracle(cond, row) is by_oracle
    assert run(conn, cond, row) is by_sql


# -- row plans ---------------------------------------------------------------------------------

ANYONE = (Subject(),)


def allow(name: str, rows: Condition | None = None, **read: Any) -> Rule:
    return Rule(name, "Customer", ANYONE, rows=rows, read=Read(**read))


def deny(name: str, rows: Condition | None = None, *fields: str) -> Rule:
    return Rule(name, "Customer", ANYONE, effect=Effect.DENY, rows=rows, fields=fields)


def doc(*rules: Rule) -> Document:
    return Document(tuple(rules))


NORTH = Compare("region", "eq", "north")
PARTIAL = MaskSpec("partial_email")


def test_no_applicable_allow_rule_selects_nothing() -> None:
    others = Rule("suppliers", "Customer", (Subject(kind="supplier"),), read=Read(("name",)))
    p = plan(doc(others), CATALOG, CALLER, "Customer", MAPPING)
    assert str(p.where.compile()) == "false"
    assert p.static and p.columns == ()
    assert set(p.possible().values()) == {Outcome.HIDDEN}


def test_an_unconditional_allow_is_static() -> None:
    p = plan(
        doc(allow("all", visible=("name",), masked={"email": PARTIAL})),
        CATALOG,
        CALLER,
        "Customer",
        MAPPING,
    )
    assert str(p.where.compile()) == "true"
    assert p.static
    fields = p.decide({})
    assert fields["name"] == FieldDecision(Outcome.VISIBLE, None, "all")
    assert fields["email"] == FieldDecision(Outcome.MASKED, PARTIAL, "all")
    assert fields["region"] == FieldDecision(Outcome.HIDDEN)
    assert set(fields) == CATALOG.fields("Customer")


def test_a_conditional_allow_gets_a_column_only_if_it_can_decide_a_field() -> None:
    p = plan(
        doc(
            allow("base", visible=("name",), masked={"email": PARTIAL}),
            allow("beaten", NORTH, visible=("name",), masked={"email": PARTIAL}),  # ties go earlier
            allow("more", NORTH, visible=("email",)),
            allow("earlier-wins", None, visible=("region",)),
            allow("later", NORTH, masked={"region": PARTIAL}),
        ),
        CATALOG,
        CALLER,
        "Customer",
        MAPPING,
    )
    assert [c.name for c in p.columns] == ["_policy_rule_2"]
    assert not p.static
    assert p.decide({"_policy_rule_2": True})["email"].rule == "more"
    assert p.decide({"_policy_rule_2": False})["email"].rule == "base"


def test_an_earlier_conditional_allow_changes_the_deciding_rule() -> None:
    p = plan(
        doc(allow("first", NORTH, visible=("name",)), allow("always", visible=("name",))),
        CATALOG,
        CALLER,
        "Customer",
        MAPPING,
    )
    assert [c.name for c in p.columns] == ["_policy_rule_0"]
    assert p.decide({"_policy_rule_0": True})["name"].rule == "first"
    assert p.decide({"_policy_rule_0": False})["name"].rule == "always"


def test_decisions_are_memoized_per_set_of_holding_rules() -> None:
    p = plan(
        doc(allow("a", visible=("name",)), allow("b", NORTH, visible=("email",))),
        CATALOG,
        CALLER,
        "Customer",
        MAPPING,
    )
    assert p.decide({"_policy_rule_1": 1, "id": 1}) is p.decide({"_policy_rule_1": True, "id": 2})


def test_field_denies_hide_fields_and_lower_possible_only_when_unconditional() -> None:
    p = plan(
        doc(
            allow("all", visible=("name", "email", "region")),
            deny("no-email-in-north", NORTH, "email"),
            deny("no-region", None, "region", "secret"),
            deny("never-mind", NORTH, "region", "secret"),  # already hidden: no column
        ),
        CATALOG,
        CALLER,
        "Customer",
        MAPPING,
    )
    assert [c.name for c in p.columns] == ["_policy_rule_1"]
    possible = p.possible()
    assert possible["name"] is possible["email"] is Outcome.VISIBLE
    assert possible["region"] is Outcome.HIDDEN
    assert "secret" not in possible
    north = p.decide({"_policy_rule_1": True})
    assert north["email"] == FieldDecision(Outcome.HIDDEN, None, "no-email-in-north")
    assert north["region"] == FieldDecision(Outcome.HIDDEN, None, "no-region")
    assert p.decide({"_policy_rule_1": False})["email"].outcome is Outcome.VISIBLE


def test_an_unconditional_row_deny_hides_everything() -> None:
    p = plan(
        doc(allow("all", visible=("name",)), deny("nobody")), CATALOG, CALLER, "Customer", MAPPING
    )
    assert str(p.where.compile()) == "false"
    assert set(p.possible().values()) == {Outcome.HIDDEN}


def test_plans_select_and_decide_like_the_oracle(conn: Connection) -> None:
    document = doc(
        allow("north", NORTH, visible=("name", "region"), masked={"email": PARTIAL}),
        allow(
            "assigned",
            Compare("assignments.organization", "eq", Variable("subject.org")),
            visible=("email",),
        ),
        deny("vip", Compare("traits.vip", "eq", True), "email"),
        deny("blocked", Compare("region", "eq", "blocked")),
    )
    rows = [
        customer(id=uuid.UUID(int=1), region="north", traits={"vip": True}),
        customer(id=uuid.UUID(int=2), region="south", assignments=[{"organization": "acme"}]),
        customer(id=uuid.UUID(int=3), region="north", assignments=[{"organization": "acme"}]),
        customer(id=uuid.UUID(int=4), region="blocked", assignments=[{"organization": "acme"}]),
        customer(id=uuid.UUID(int=5), region=None),
    ]
    p = plan(document, CATALOG, CALLER, "Customer", MAPPING)
    with conn.begin() as trans:
        for row in rows:
            conn.execute(CUSTOMER.insert(), {k: v for k, v in row.items() if k != "assignments"})
            for assignment in row["assignments"]:
                conn.execute(MAPPING.partner.insert(), {"customer_id": row["id"], **assignment})
        seen = {
            r["id"]: r
            for r in conn.execute(select(CUSTOMER.c.id, *p.columns).where(p.where)).mappings()
        }
        trans.rollback()
    assert sorted(seen) == [uuid.UUID(int=n) for n in (1, 2, 3)]
    for row in rows:
        decision = evaluate(document, CATALOG, CALLER, "Customer", {**row, "id": str(row["id"])})
        assert decision.row_visible == (row["id"] in seen)
        if decision.row_visible:
            assert dict(p.decide(seen[row["id"]])) == dict(decision.fields)
