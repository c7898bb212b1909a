"""Hypothesis strategies for the SQL compiler tests: a catalog with every field type, random
documents, conditions, callers and data shaped like the hub's customers and feedback, and
the tables (with their :class:`~policies.SqlMapping`) the data goes into.

Operands are drawn from pools that overlap the data (so comparisons hit both ways) and
mix in values of the wrong type (so the oracle's type rules are exercised), subject
variables, and nulls. JSON data keeps arrays at the ends of the condition paths: an array
met inside a path is outside what the compiler matches (see ``policies.compile``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st
from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Uuid,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.expression import FromClause
from sqlalchemy.types import TypeDecorator

from policies import (
    And,
    Caller,
    Catalog,
    Compare,
    Condition,
    Document,
    Effect,
    Join,
    MaskSpec,
    Not,
    Or,
    Read,
    Rule,
    Subject,
    Variable,
)

CATALOG_DATA: dict[str, Any] = {
    "Customer": {
        "fields": {
            "id": "uuid",
            "name": "string",
            "email": "string",
            "region": "string",
            "lifetime_value": "number",
            "visits": "integer",
            "consent_share_with_partners": "boolean",
            "born": "date",
            "created_at": "datetime",  # aware values
            "seen_at": "datetime",  # naive values
            "traits": "json",
        },
        "relations": {"assignments": {"resource": "CustomerPartner", "many": True}},
    },
    "CustomerPartner": {"fields": {"organization": "string", "role": "string"}},
    "Feedback": {
        "fields": {
            "id": "uuid",
            "customer_id": "uuid",
            "organization": "string",
            "score": "integer",
            "text": "string",
            "tags": "string[]",
        },
        "relations": {"customer": {"resource": "Customer"}},
    },
}
CATALOG = Catalog.from_dict(
    CATALOG_DATA, subject_attributes={"regions": "string[]", "level": "integer"}
)

CUSTOMER_IDS = [uuid.UUID(int=n * 0x1111_0000_0000_0000_0000_0000_0001) for n in range(1, 6)]
FEEDBACK_IDS = [uuid.UUID(int=0xF000 + n) for n in range(1, 6)]
DANGLING_ID = uuid.UUID(int=0xDEAD)

UTC = dt.UTC
PLUS2 = dt.timezone(dt.timedelta(hours=2))
STRINGS = ["north", "south", "", "a", "B", "é", "acme", "globex", "reseller"]
INTEGERS = [-2, 0, 1, 3, 5]
FLOATS = [-1.5, 0.0, 0.5, 2.25, 1000.0]
DATES = [dt.date(2024, 1, 1), dt.date(2024, 3, 15), dt.date(2025, 12, 31)]
AWARE = [
    dt.datetime(2024, 1, 1, tzinfo=UTC),
    dt.datetime(2024, 3, 15, 12, 30, tzinfo=UTC),
    dt.datetime(2024, 3, 15, 14, 30, tzinfo=PLUS2),  # the same instant as the one above
    dt.datetime(2025, 12, 31, 23, 59, 59, 500, tzinfo=UTC),
]
NAIVE = [dt.datetime(2024, 1, 1), dt.datetime(2024, 3, 15, 12, 30), dt.datetime(2025, 12, 31)]
TAG_WORDS = ["a", "b", "B", "é"]

# -- tables --------------------------------------------------------------------------------


class AwareDateTime(TypeDecorator[dt.datetime]):
    """Aware datetimes on both backends (SQLite stores naive UTC), like the hub's."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        aware: dt.datetime = value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value
        return aware


def make_tables(
    metadata: MetaData, suffix: str, collation: str | None = None
) -> tuple[Table, Table, Table]:
    """The three test tables, named with ``suffix``; ``collation`` (PostgreSQL only) for
    ``Customer.name``, so that ordering it by the default collation would be wrong."""
    name = String().with_variant(String(collation=collation), "postgresql")
    customer = Table(
        f"pc_customer_{suffix}",
        metadata,
        Column("id", Uuid, primary_key=True),
        Column("name", name if collation else String),
        Column("email", String),
        Column("region", String),
        Column("lifetime_value", Float),
        Column("visits", Integer),
        Column("consent_share_with_partners", Boolean),
        Column("born", Date),
        Column("created_at", AwareDateTime),
        Column("seen_at", DateTime),
        Column("traits", JSON(none_as_null=True)),
        Column("balance", Numeric(14, 2)),  # not in CATALOG: see test_compile_sql.py
    )
    partner = Table(
        f"pc_customer_partner_{suffix}",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("customer_id", Uuid, nullable=False),
        Column("organization", String),
        Column("role", String),
    )
    feedback = Table(
        f"pc_feedback_{suffix}",
        metadata,
        Column("id", Uuid, primary_key=True),
        Column("customer_id", Uuid),
        Column("organization", String),
        Column("score", Integer),
        Column("text", String),
        Column("tags", JSON(none_as_null=True)),
    )
    return customer, partner, feedback


@dataclass(frozen=True)
class TablesMapping:
    """The test catalog's resources on the test tables."""

    customer: Table
    partner: Table
    feedback: Table

    def table(self, resource: str) -> FromClause:
        return {"Customer": self.customer, "Feedback": self.feedback}[resource]

    def column(self, resource: str, table: FromClause, field: str) -> ColumnElement[Any]:
        return table.c[field]

    def relation(self, resource: str, table: FromClause, name: str) -> Join:
        if (resource, name) == ("Customer", "assignments"):
            partner = self.partner.alias()
            return Join("CustomerPartner", partner, partner.c.customer_id == table.c.id, True)
        if (resource, name) == ("Feedback", "customer"):
            customer = self.customer.alias()
            return Join("Customer", customer, customer.c.id == table.c.customer_id, False)
        raise KeyError((resource, name))

    def compare(
        self, resource: str, table: FromClause, field: str, op: str, value: Any
    ) -> ColumnElement[bool] | None:
        return None


# -- data --------------------------------------------------------------------------------------

JSON_LEAVES = [None, True, False, *INTEGERS, *FLOATS, *STRINGS]
json_leaves = st.sampled_from(JSON_LEAVES)
json_arrays = st.lists(st.one_of(json_leaves, st.lists(json_leaves, max_size=2)), max_size=3)
json_ends = st.one_of(
    json_leaves,
    json_leaves,
    json_arrays,
    st.dictionaries(st.sampled_from(["x", "y"]), json_leaves, max_size=2),
)
# Keys that paths go through (info, tier) never hold arrays; the root is never an array.
json_objects = st.fixed_dictionaries(
    {},
    optional={
        "tier": json_leaves,
        "level": json_ends,
        "vip": json_ends,
        "tags": json_ends,
        "0": json_leaves,
        "info": st.one_of(
            json_leaves,
            st.dictionaries(
                st.sampled_from(["x", "y", "0"]), st.one_of(json_leaves, json_arrays), max_size=3
            ),
        ),
    },
)
traits = st.one_of(
    st.sampled_from([None, "json-null", 3, "north"]),
    json_objects,
    json_objects,
)


def optional(values: list[Any]) -> st.SearchStrategy[Any]:
    """One of ``values`` or None (one draw: cheaper than ``one_of``)."""
    return st.sampled_from([None, *values])


# Strategies are built once: building them inside a draw re-validates them every time.
customers = st.fixed_dictionaries(
    {
        "name": optional(STRINGS),
        "email": optional(STRINGS),
        "region": optional(STRINGS),
        "lifetime_value": optional([*FLOATS, 1.0, 3.0]),
        "visits": optional(INTEGERS),
        "consent_share_with_partners": optional([True, False]),
        "born": optional(DATES),
        "created_at": optional(AWARE),
        "seen_at": optional(NAIVE),
        "traits": traits,
        "assignments": st.lists(
            st.fixed_dictionaries(
                {
                    "organization": optional(["acme", "globex", "initech"]),
                    "role": optional(["reseller", "service", "a"]),
                }
            ),
            max_size=3,
        ),
    }
)
feedback_rows = st.fixed_dictionaries(
    {
        "customer_id": optional([DANGLING_ID, *CUSTOMER_IDS]),
        "organization": optional(["acme", "globex"]),
        "score": optional(INTEGERS),
        "text": optional(STRINGS),
        "tags": st.one_of(st.none(), st.lists(st.sampled_from(TAG_WORDS), max_size=3)),
    }
)
_customer_ids = st.lists(st.sampled_from(CUSTOMER_IDS), unique=True, min_size=1, max_size=3)
_feedback_ids = st.lists(st.sampled_from(FEEDBACK_IDS), unique=True, min_size=1, max_size=3)


@dataclass(frozen=True)
class Dataset:
    """Rows for the three tables, as plain Python values (relations nested)."""

    customers: list[dict[str, Any]]
    feedback: list[dict[str, Any]]


@st.composite
def datasets(draw: st.DrawFn) -> Dataset:
    rows = [{"id": i, **draw(customers)} for i in draw(_customer_ids)]
    feedback = [{"id": i, **draw(feedback_rows)} for i in draw(_feedback_ids)]
    return Dataset(rows, feedback)


def oracle_customer(row: dict[str, Any]) -> dict[str, Any]:
    """A customer as the oracle reads it: uuids as canonical text, JSON null as None."""
    record = dict(row)
    record["id"] = str(row["id"])
    record["traits"] = None if row["traits"] == "json-null" else row["traits"]
    return record


def oracle_feedback(row: dict[str, Any], data: Dataset) -> dict[str, Any]:
    record = dict(row)
    record["id"] = str(row["id"])
    record["customer_id"] = None if row["customer_id"] is None else str(row["customer_id"])
    related = [c for c in data.customers if c["id"] == row["customer_id"]]
    record["customer"] = oracle_customer(related[0]) if related else None
    return record


# -- callers --------------------------------------------------------------------------------

callers = st.builds(
    Caller,
    org=st.sampled_from(["acme", "globex"]),
    kind=st.sampled_from(["distributor", "supplier"]),
    roles=st.frozensets(st.sampled_from(["partner", "reseller", "a"]), max_size=2),
    scopes=st.frozensets(st.sampled_from(["customers:read", "north"]), max_size=2),
    attributes=st.fixed_dictionaries(
        {},
        optional={
            "regions": st.one_of(
                st.lists(st.sampled_from(["north", "south", "é"]), max_size=2, unique=True),
                st.just("north"),  # a string: the oracle's `in` walks its characters
            ),
            "level": st.sampled_from(INTEGERS),
        },
    ),
)

# -- conditions -----------------------------------------------------------------------------

VARIABLES = [
    Variable("subject.org"),
    Variable("subject.kind"),
    Variable("subject.roles"),
    Variable("subject.scopes"),
    Variable("subject.attributes.regions"),
    Variable("subject.attributes.level"),
    Variable("subject.attributes.missing"),
]
_uuid_texts = [str(i) for i in CUSTOMER_IDS[:3]] + [
    str(FEEDBACK_IDS[0]),
    str(CUSTOMER_IDS[0]).upper(),  # not canonical: never equal to the stored uuid
    CUSTOMER_IDS[1].hex,
    "c1",
]
_datetime_literals = [
    *AWARE,
    *NAIVE,
    "2024-01-01",
    "2024-03-15T12:30:00+00:00",
    "2024-03-15T14:30:00+02:00",
    "2024-03-15T12:30:00",
    "not a date",
    dt.date(2024, 1, 1),
]
_json_tuples = st.lists(
    st.one_of(
        st.sampled_from(STRINGS[:4]), st.sampled_from(INTEGERS[:3]), st.booleans(), st.none()
    ),
    max_size=2,
).map(tuple)
LITERALS: dict[str, st.SearchStrategy[Any]] = {
    "string": st.sampled_from(STRINGS),
    "uuid": st.sampled_from(_uuid_texts),
    "integer": st.sampled_from(INTEGERS),
    "number": st.sampled_from(INTEGERS + FLOATS),
    "boolean": st.booleans(),
    "date": st.sampled_from([*DATES, "2024-03-15", "2024-3-15", NAIVE[0]]),
    "datetime": st.sampled_from(_datetime_literals),
    "json": st.one_of(
        json_leaves,
        _json_tuples,
        st.just({"x": 1}),
        st.just(((1,), "a")),
        st.sampled_from([(("a",),), (["a"],), ([1, "x"],)]),
    ),
    "string[]": st.one_of(
        st.lists(st.sampled_from(TAG_WORDS), max_size=3).map(tuple), st.sampled_from(TAG_WORDS)
    ),
}
_any_literal = st.one_of(
    st.sampled_from(STRINGS),
    st.sampled_from(INTEGERS + FLOATS),
    st.booleans(),
    st.sampled_from([*DATES, *AWARE[:2], *NAIVE[:1], "2024-01-01"]),
    st.just(("a", "b")),
)
OPERATORS = ["eq", "ne", "in", "nin", "gt", "gte", "lt", "lte", "is_null"]


def _paths(resource: str, prefix: str = "", depth: int = 0) -> list[tuple[str, str]]:
    """(path, type) for every field reachable from ``resource``, with JSON sub-paths."""
    spec = CATALOG.resources[resource]
    out: list[tuple[str, str]] = []
    for name, kind in spec.fields.items():
        out.append((f"{prefix}{name}", str(kind)))
        if kind == "json":
            for sub in [
                "tier",
                "level",
                "vip",
                "tags",
                "0",
                "info",
                "info.x",
                "info.0",
                "tier.x",
                "nope",
            ]:
                out.append((f"{prefix}{name}.{sub}", "json"))
    if depth < 2:
        for name, relation in spec.relations.items():
            out += _paths(relation.resource, f"{prefix}{name}.", depth + 1)
    return out


PATHS = {resource: _paths(resource) for resource in ("Customer", "Feedback")}


_null_flags = st.one_of(st.booleans(), st.booleans(), st.sampled_from([0, "x", (), None]))


def _operands(kind: str) -> dict[str, st.SearchStrategy[Any]]:
    """Operand strategies for a field type: for is_null, for in/nin, for the others."""
    literal = LITERALS[kind]
    members = st.one_of(literal, literal, literal, st.none(), _any_literal)
    lists = st.lists(members, max_size=3).map(tuple)
    return {
        "is_null": _null_flags,
        "in": st.one_of(
            lists, lists, st.sampled_from(VARIABLES), st.sampled_from(["north", 3, None])
        ),
        "eq": st.one_of(
            literal, literal, literal, _any_literal, st.sampled_from(VARIABLES), st.none()
        ),
    }


OPERANDS = {kind: _operands(kind) for kind in LITERALS}
_GROUP = {"is_null": "is_null", "in": "in", "nin": "in"}


@st.composite
def _compares(draw: st.DrawFn, paths: list[tuple[str, str]]) -> Compare:
    path, kind = draw(st.sampled_from(paths))
    op = draw(st.sampled_from(OPERATORS))
    return Compare(path, op, draw(OPERANDS[kind][_GROUP.get(op, "eq")]))


_SHAPES = st.sampled_from(["compare", "compare", "compare", "and", "or", "not"])
_SIZES = st.integers(0, 3)


def _conditions(resource: str) -> st.SearchStrategy[Condition]:
    # A hand-rolled tree (depth <= 2) over prebuilt strategies: st.recursive costs several
    # times more per example.
    leaves = _compares(PATHS[resource])

    def tree(draw: st.DrawFn, depth: int) -> Condition:
        shape = draw(_SHAPES) if depth < 2 else "compare"
        if shape == "compare":
            return draw(leaves)
        if shape == "not":
            return Not(tree(draw, depth + 1))
        items = tuple(tree(draw, depth + 1) for _ in range(draw(_SIZES)))
        return And(items) if shape == "and" else Or(items)

    return st.composite(tree)(0)


_CONDITIONS = {resource: _conditions(resource) for resource in PATHS}


def conditions(resource: str) -> st.SearchStrategy[Condition]:
    """Random conditions on ``resource`` over every path, operator and operand kind."""
    return _CONDITIONS[resource]


# -- documents ------------------------------------------------------------------------------

subjects = st.sampled_from(
    [
        Subject(),
        Subject(),
        Subject(kind="distributor"),
        Subject(kind="supplier"),
        Subject(org="acme"),
        Subject(org="globex", kind="distributor"),
        Subject(role="reseller"),
        Subject(scope="customers:read"),
    ]
)
_MASKS = [
    MaskSpec("redact"),
    MaskSpec("pseudonym"),
    MaskSpec("partial_email"),
    MaskSpec("bucket", (0, 10)),
]


# Rows conditions that often hold, so that conditional rules often decide something.
_LIKELY = {
    "Customer": [
        Compare("id", "is_null", False),
        Compare("visits", "gte", -2),
        Compare("region", "ne", "zzz"),
        Compare("assignments.organization", "eq", Variable("subject.org")),
        Compare("traits.tier", "is_null", False),
    ],
    "Feedback": [
        Compare("id", "is_null", False),
        Compare("score", "gte", -2),
        Compare("organization", "eq", Variable("subject.org")),
        Compare("customer.region", "is_null", False),
        Compare("tags", "is_null", False),
    ],
}


def _rules(resource: str) -> st.SearchStrategy[Rule]:
    """Rules mostly on ``resource`` (name and index are set by :func:`documents`)."""
    names = [*sorted(CATALOG.fields(resource)), "secret"]
    common = {
        "name": st.just(""),
        "resource": st.sampled_from([resource] * 5 + ["CustomerPartner"]),
        "subjects": st.lists(subjects, min_size=1, max_size=2).map(tuple),
        "rows": st.one_of(st.none(), st.sampled_from(_LIKELY[resource]), conditions(resource)),
    }
    allow = st.fixed_dictionaries(
        {
            **common,
            "effect": st.just(Effect.ALLOW),
            "read": st.builds(
                Read,
                st.lists(st.sampled_from(names), max_size=5, unique=True).map(tuple),
                st.dictionaries(st.sampled_from(names), st.sampled_from(_MASKS), max_size=3),
            ),
        }
    )
    deny = st.fixed_dictionaries(
        {
            **common,
            "effect": st.just(Effect.DENY),
            "fields": st.one_of(
                st.just(()), st.lists(st.sampled_from(names), max_size=3).map(tuple)
            ),
        }
    )
    return st.one_of(allow, allow, allow, deny).map(lambda kw: Rule(**kw))


_RULES = {resource: _rules(resource) for resource in PATHS}


@st.composite
def documents(draw: st.DrawFn, resource: str) -> Document:
    """One to four rules, named and indexed by position."""
    drawn = draw(st.lists(_RULES[resource], min_size=1, max_size=4))
    return Document(
        tuple(dataclasses.replace(rule, name=f"rule-{i}", index=i) for i, rule in enumerate(drawn))
    )
