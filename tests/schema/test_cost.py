"""The operation cost limit (DESIGN §7; CHECKLIST API4): the static cost of documents on
the hub's schema, and the refusal of an operation over ``HUB_MAX_COST`` through HTTP."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from graphql import GraphQLSchema, parse

from bench import queries as bench
from hub.db import Database
from hub.settings import Settings
from schema import build_schema
from schema.limits import operation_cost
from tests.conftest import make_caller, make_settings, token_for
from tests.schema.test_limits import assert_ok, assert_refused, codes, run, running

PAGE = 20  # HUB_DEFAULT_PAGE_SIZE
# The example that made the limit: twenty aliases of a full page of customers, each with a
# full page of feedback.
TWENTY_ALIASES = (
    "{ "
    + " ".join(
        f"a{i}: customers(first: 100) {{ edges {{ node {{ id name "
        "feedback(first: 100) { edges { node { id text kind createdAt } } } } } }"
        for i in range(20)
    )
    + " }"
)


@pytest.fixture(scope="module")
def hub_schema() -> GraphQLSchema:
    # Every field of every audience: the full schema (no database is opened to build it).
    return build_schema(make_settings("sqlite+aiosqlite:///unused.db"))._schema


def cost(
    schema: GraphQLSchema,
    query: str,
    variables: dict[str, Any] | None = None,
    operation_name: str | None = None,
) -> int | None:
    return operation_cost(schema, parse(query), operation_name, variables, PAGE)


CUSTOMERS_10 = "customers(first: 10) { edges { node { id name } } }"


@pytest.mark.parametrize(
    ("query", "variables", "expected"),
    [
        ("{ me { clientId } }", None, 2),
        # 1 + 10 x (edges 1 + node 1 + id, name 2)
        (f"{{ {CUSTOMERS_10} }}", None, 41),
        # no first: the schema's default page size
        ("{ customers { edges { node { id } } } }", None, 1 + PAGE * 3),
        ("{ customers(first: 10) { totalCount pageInfo { hasNextPage } } }", None, 1 + 10 * 3),
        # a connection inside a connection multiplies again: 1 + 10 x (2 + 1 + 5 x 3)
        (
            "{ customers(first: 10) { edges { node { feedback(first: 5) "
            "{ edges { node { text } } } } } } }",
            None,
            181,
        ),
        # first from a variable, its default, or the field's default
        (
            "query($n: Int) { customers(first: $n) { edges { node { id } } } }",
            {"n": 5},
            16,
        ),
        ("query($n: Int = 7) { customers(first: $n) { edges { node { id } } } }", {}, 22),
        ("query($n: Int) { customers(first: $n) { edges { node { id } } } }", {}, 1 + PAGE * 3),
        # a first no Int can hold is refused as bad input, never run: the default counts
        ("{ customers(first: 99999999999) { totalCount } }", None, 1 + PAGE),
        ("{ customers(first: " + "9" * 10_000 + ") { totalCount } }", None, 1 + PAGE),
        ("query($n: Int) { customers(first: $n) { totalCount } }", {"n": 2**40}, 1 + PAGE),
        # a field's own default first (duplicateCandidates: 50)
        ("{ duplicateCandidates { reason } }", None, 51),
        # aliases each count
        (f"{{ a: {CUSTOMERS_10} b: {CUSTOMERS_10} }}", None, 82),
        # a named fragment counts at every spread; an inline fragment like its fields
        (
            "{ a: customers(first: 10) { ...C } b: customers(first: 10) { ...C } } "
            "fragment C on CustomerConnection { edges { node { id ... on Customer { name } } } }",
            None,
            82,
        ),
        # a fragment on a page's items: the items' list is not multiplied again
        (
            "{ customers(first: 10) { edges { ...E } } } "
            "fragment E on CustomerEdge { node { id } }",
            None,
            31,
        ),
        # lists sized by their argument: nodes(ids), literal or variable
        ('{ nodes(ids: ["a", "b"]) { id ... on Customer { name } } }', None, 5),
        ("query($ids: [ID!]!) { nodes(ids: $ids) { id } }", {"ids": ["a", "b", "c"]}, 4),
        # a list of objects without paging: the default page size
        ("{ subgraphs { name } }", None, 1 + PAGE),
        # introspection is answered from the schema in memory: 1
        ("{ __schema { types { name fields { name } } } }", None, 1),
        ("{ customers(first: 2) { __typename } }", None, 3),
    ],
)
def test_cost_of_documents(
    hub_schema: GraphQLSchema, query: str, variables: dict[str, Any] | None, expected: int
) -> None:
    assert cost(hub_schema, query, variables) == expected


def test_cost_is_of_the_operation_that_will_run(hub_schema: GraphQLSchema) -> None:
    query = f"query Small {{ me {{ clientId }} }} query Big {{ {CUSTOMERS_10} }}"
    assert cost(hub_schema, query, operation_name="Small") == 2
    assert cost(hub_schema, query, operation_name="Big") == 41
    assert cost(hub_schema, query) is None  # no operation named: refused elsewhere
    assert cost(hub_schema, query, operation_name="Other") is None


def test_one_document_again_costs_what_its_variables_make_it(hub_schema: GraphQLSchema) -> None:
    """The cost is remembered per document (one parsed object, as the HTTP view's cache
    hands out) and per what the cost reads of the variables: the same document with
    another page size or list length costs anew; values that are not page sizes or lists
    cost alike."""
    document = parse(
        "query($n: Int, $ids: [ID!]!) { customers(first: $n) { edges { node { id } } } "
        "nodes(ids: $ids) { id } }"
    )

    def of(variables: dict[str, Any]) -> int | None:
        return operation_cost(hub_schema, document, None, variables, PAGE)

    assert of({"n": 5, "ids": ["a"]}) == 1 + 5 * 3 + 1 + 1
    assert of({"n": 10, "ids": ["a"]}) == 1 + 10 * 3 + 1 + 1
    assert of({"n": 10, "ids": ["a", "b", "c"]}) == 1 + 10 * 3 + 1 + 3
    assert of({"ids": ["a"]}) == 1 + PAGE * 3 + 1 + 1
    assert of({"n": 5, "ids": ["a"]}) == 1 + 5 * 3 + 1 + 1  # the first again
    # A page size no Int holds (a string, a boolean) counts as the default, as uncached.
    assert of({"n": "5", "ids": ["a"]}) == of({"n": True, "ids": ["a"]}) == 1 + PAGE * 3 + 2
    # Another parse of the same text is another document: costed on its own.
    other = parse("query($n: Int) { customers(first: $n) { totalCount } }")
    assert operation_cost(hub_schema, other, None, {"n": 3}, PAGE) == 1 + 3
    assert operation_cost(hub_schema, other, None, {"n": 4}, PAGE) == 1 + 4


def test_fragment_cycles_end(hub_schema: GraphQLSchema) -> None:
    query = "{ me { ...A } } fragment A on Me { clientId ...B } fragment B on Me { ...A }"
    assert cost(hub_schema, query) == 2


def test_default_limit_refuses_the_alias_flood_and_not_the_benchmark(
    hub_schema: GraphQLSchema,
) -> None:
    limit = Settings.model_fields["max_cost"].default
    assert cost(hub_schema, TWENTY_ALIASES) == 20 * 60_501 > limit
    # The benchmark's queries (bench/queries.py) stay well under it.
    for query in (
        bench.customer_query(bench.HUB),
        bench.page_query(bench.HUB),
        bench.nested_query(bench.HUB),
        bench.ids_query(bench.HUB, 100, after=True),
    ):
        measured = cost(hub_schema, query, {"id": "x", "after": None})
        assert measured is not None and measured * 10 < limit, (measured, query)


# --- through HTTP ---------------------------------------------------------------------------


@pytest.fixture
async def token(client: httpx.AsyncClient, db: Database) -> str:
    return await token_for(client, await make_caller(db, "operator"))


async def test_over_the_limit_is_refused_before_it_runs(
    client: httpx.AsyncClient, token: str
) -> None:
    response = await run(client, token, TWENTY_ALIASES)

    assert_refused(response, "MAX_COST_EXCEEDED")
    [error] = response.json()["errors"]
    assert error["message"] == "operation costs 1210020; the limit is 300000"


async def test_legacy_json_refusal_is_200_like_the_other_limits(
    client: httpx.AsyncClient, token: str
) -> None:
    response = await client.post(
        "/graphql",
        json={"query": TWENTY_ALIASES},
        headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
    )
    assert response.status_code == 200, response.text
    assert "data" not in response.json()
    assert codes(response) == ["MAX_COST_EXCEEDED"]


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "resolvers"])
async def test_at_the_limit_runs_and_one_over_is_refused(
    db: Database, database_url: str, compiled: bool
) -> None:
    query = "query($n: Int) { customers(first: $n) { edges { node { id name } } } }"
    settings = make_settings(database_url, max_cost=41, compiled_reads=compiled)
    async with running(settings) as http:
        token = await token_for(http, await make_caller(db, "operator"))
        assert_ok(await run(http, token, query, {"n": 10}))  # 1 + 10 x 4 = 41
        assert_ok(await run(http, token, f"{{ {CUSTOMERS_10} }}"))
        response = await run(http, token, query, {"n": 11})  # 45
        assert_refused(response, "MAX_COST_EXCEEDED")
        assert response.json()["errors"][0]["message"] == "operation costs 45; the limit is 41"


async def test_cost_hidden_in_fragments_is_refused(db: Database, database_url: str) -> None:
    async with running(make_settings(database_url, max_cost=60)) as http:
        token = await token_for(http, await make_caller(db, "operator"))
        query = (
            "{ a: customers(first: 10) { ...C } b: customers(first: 10) { ...C } } "
            "fragment C on CustomerConnection { edges { node { id name } } }"
        )
        assert_ok(await run(http, token, query.replace("b: customers(first: 10) { ...C }", "")))
        assert_refused(await run(http, token, query), "MAX_COST_EXCEEDED")  # 41 + 41
