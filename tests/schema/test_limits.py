"""Operation limits (CHECKLIST: resource consumption): each refusal names its own code."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from graphql import get_introspection_query

from app import create_app
from hub.db import Database
from hub.settings import Settings
from tests.conftest import make_caller, make_settings, token_for

GRAPHQL_RESPONSE = "application/graphql-response+json"

# graphql-cop's circular introspection probe.
CIRCULAR_INTROSPECTION = (
    "query cop { __schema { types { fields { type { fields { type { fields { type "
    "{ fields { type { name } } } } } } } } } } }"
)


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """An in-process client for an app built from ``settings`` (as conftest's ``client``)."""
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://hub.test") as http:
            yield http


@pytest.fixture
async def token(client: httpx.AsyncClient, db: Database) -> str:
    return await token_for(client, await make_caller(db, "operator"))


async def run(
    http: httpx.AsyncClient, token: str, query: str, variables: dict[str, Any] | None = None
) -> httpx.Response:
    return await http.post(
        "/graphql",
        json={"query": query, "variables": variables or {}},
        headers={"Authorization": f"Bearer {token}", "Accept": GRAPHQL_RESPONSE},
    )


def codes(response: httpx.Response) -> list[str]:
    return [error["extensions"]["code"] for error in response.json().get("errors", [])]


def assert_refused(response: httpx.Response, code: str) -> None:
    assert response.status_code == 400, response.text
    body = response.json()
    assert "data" not in body, body
    assert code in codes(response), body


def assert_ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    data: dict[str, Any] = body["data"]
    return data


_HOPS = ("feedback", "edges", "node", "customer")  # from a Customer back to a Customer
_LEAVES = {"customers": "totalCount", "feedback": "totalCount", "edges": "cursor"}


def nested(depth: int) -> str:
    """A query exactly ``depth`` fields deep: customers, edges, node, then feedback hops."""
    path = ["customers", "edges", "node"]
    while len(path) < depth - 1:
        path.append(_HOPS[(len(path) - 3) % len(_HOPS)])
    path = path[: depth - 1]
    query = _LEAVES.get(path[-1], "id")
    for name in reversed(path):
        query = f"{name} {{ {query} }}"
    return "{ " + query + " }"


# --- depth ----------------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [3, 6, 10])
async def test_depth_at_or_under_the_limit_runs(
    client: httpx.AsyncClient, token: str, depth: int
) -> None:
    assert_ok(await run(client, token, nested(depth)))


@pytest.mark.parametrize("depth", [11, 14, 40])
async def test_depth_over_the_limit_is_refused(
    client: httpx.AsyncClient, token: str, depth: int
) -> None:
    assert_refused(await run(client, token, nested(depth)), "MAX_DEPTH_EXCEEDED")


def test_nested_helper_builds_the_depth_asked_for() -> None:
    assert nested(3) == "{ customers { edges { cursor } } }"
    assert nested(4) == "{ customers { edges { node { id } } } }"
    assert nested(5) == "{ customers { edges { node { feedback { totalCount } } } } }"
    assert nested(8).count("{") - 1 == 7  # seven fields with selections, plus the leaf


async def test_depth_hidden_in_fragments_is_refused(client: httpx.AsyncClient, token: str) -> None:
    query = """
    query { customers { ...C } }
    fragment C on CustomerConnection { edges { node { ...N } } }
    fragment N on Customer { feedback { ...F } }
    fragment F on FeedbackConnection { edges { node { customer { ...N2 } } } }
    fragment N2 on Customer { feedback { edges { node { customer { id } } } } }
    """
    assert_refused(await run(client, token, query), "MAX_DEPTH_EXCEEDED")


async def test_depth_hidden_in_inline_fragments_is_refused(
    client: httpx.AsyncClient, token: str
) -> None:
    query = (
        "{ customers { ... on CustomerConnection { edges { node { ... on Customer { feedback "
        "{ edges { node { customer { feedback { edges { node { customer { id } } } } } } } } "
        "} } } } } }"
    )
    assert_refused(await run(client, token, query), "MAX_DEPTH_EXCEEDED")


async def test_same_fragment_at_two_depths_counts_the_deeper(
    client: httpx.AsyncClient, token: str
) -> None:
    """A fragment spread twice is measured where it sits deepest, not only the first time."""
    query = """
    query {
      shallow: customer(id: "x") { ...Deep }
      customers { edges { node { feedback { edges { node { customer { ...Deep } } } } } } }
    }
    fragment Deep on Customer { feedback { edges { node { customer { id } } } } }
    """
    assert_refused(await run(client, token, query), "MAX_DEPTH_EXCEEDED")


@pytest.mark.parametrize(
    "query",
    [
        "query { me { ...A } } fragment A on Me { ...B } fragment B on Me { ...A }",
        "query { me { ...A } } fragment A on Me { clientId ...A }",
        "query { customers { edges { node { ...A } } } } "
        "fragment A on Customer { feedback { edges { node { customer { ...A } } } } }",
    ],
    ids=["two fragments", "self", "through fields"],
)
async def test_fragment_cycle_is_a_validation_error(
    client: httpx.AsyncClient, token: str, query: str
) -> None:
    response = await run(client, token, query)

    assert response.status_code == 400, response.text
    assert "data" not in response.json()
    assert "GRAPHQL_VALIDATION_FAILED" in codes(response)
    assert "INTERNAL_SERVER_ERROR" not in codes(response)


async def test_depth_limit_above_the_introspection_cap_is_still_enforced(
    db: Database, database_url: str
) -> None:
    """HUB_MAX_DEPTH may be raised past 16; queries deeper than it must still be refused."""
    # Twenty levels of default-sized pages cost 13,473,661: the cost limit and the client's
    # budget are lifted, so that the depth limit alone is tested.
    settings = make_settings(
        database_url, max_depth=20, max_cost=10**9, graphql_cost_per_client=10**9
    )
    async with running(settings) as http:
        token = await token_for(http, await make_caller(db, "operator"))
        assert_ok(await run(http, token, nested(20)))
        assert_refused(await run(http, token, nested(21)), "MAX_DEPTH_EXCEEDED")
        assert_refused(await run(http, token, nested(30)), "MAX_DEPTH_EXCEEDED")


async def test_lower_depth_setting_is_applied(db: Database, database_url: str) -> None:
    async with running(make_settings(database_url, max_depth=3)) as http:
        token = await token_for(http, await make_caller(db, "operator"))
        assert_ok(await run(http, token, nested(3)))
        assert_refused(await run(http, token, nested(4)), "MAX_DEPTH_EXCEEDED")


# --- introspection --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [
        {},
        {
            "descriptions": True,
            "specified_by_url": True,
            "directive_is_repeatable": True,
            "schema_description": True,
            "input_value_deprecation": True,
        },
    ],
    ids=["default", "every option"],
)
async def test_standard_introspection_query_succeeds(
    client: httpx.AsyncClient, token: str, options: dict[str, bool]
) -> None:
    data = assert_ok(await run(client, token, get_introspection_query(**options)))
    names = {item["name"] for item in data["__schema"]["types"]}
    assert {"Query", "Mutation", "Customer"} <= names


@pytest.mark.parametrize(
    "query",
    [
        CIRCULAR_INTROSPECTION,
        "{ __schema { types { interfaces { possibleTypes { interfaces { name } } } } } }",
        '{ __type(name: "Customer") { fields { type { fields { name } } } } }',
        "{ __schema { types { ...T } } } fragment T on __Type { fields { type { ...U } } } "
        "fragment U on __Type { fields { name } }",
    ],
    ids=["graphql-cop", "interfaces", "__type", "fragments"],
)
async def test_circular_introspection_is_refused(
    client: httpx.AsyncClient, token: str, query: str
) -> None:
    assert_refused(await run(client, token, query), "MAX_DEPTH_EXCEEDED")


async def test_introspection_under_a_normal_field_obeys_the_normal_depth(
    client: httpx.AsyncClient, token: str
) -> None:
    query = nested(10).replace("{ id }", "{ __typename }")
    assert_ok(await run(client, token, query))


# --- aliases, root fields, directives -------------------------------------------------------


def aliased(count: int) -> str:
    return "{ me { " + " ".join(f"a{i}: clientId" for i in range(count)) + " } }"


async def test_aliases_at_the_limit_run(
    client: httpx.AsyncClient, token: str, settings: Settings
) -> None:
    assert_ok(await run(client, token, aliased(settings.max_aliases)))


@pytest.mark.parametrize(
    "query",
    [
        aliased(31),
        "query cop { " + " ".join(f"alias{i}: __typename" for i in range(101)) + " }",
        "{ " + " ".join(f"c{i}: customers {{ totalCount }}" for i in range(31)) + " }",
    ],
    ids=["31 nested", "graphql-cop 101 at the root", "31 root fields"],
)
async def test_too_many_aliases_are_refused(
    client: httpx.AsyncClient, token: str, query: str
) -> None:
    assert_refused(await run(client, token, query), "MAX_ALIASES_EXCEEDED")


async def test_aliases_in_a_fragment_count_each_time_it_is_spread(
    client: httpx.AsyncClient, token: str
) -> None:
    """Ten spreads of a fragment with ten aliases execute one hundred aliased fields."""
    fragment = "fragment F on Me { " + " ".join(f"f{i}: clientId" for i in range(10)) + " }"
    spreads = " ".join(f"m{i}: me {{ ...F }}" for i in range(10))
    assert_refused(await run(client, token, f"{{ {spreads} }} {fragment}"), "MAX_ALIASES_EXCEEDED")


async def test_root_fields_over_the_limit_are_refused(
    client: httpx.AsyncClient, token: str, settings: Settings
) -> None:
    limit = settings.max_root_fields
    assert_ok(await run(client, token, "{ " + "me { clientId } " * limit + "}"))
    over = "{ " + "me { clientId } " * (limit + 1) + "}"
    assert_refused(await run(client, token, over), "MAX_ROOT_FIELDS_EXCEEDED")


async def test_root_fields_hidden_in_fragments_are_counted(
    client: httpx.AsyncClient, token: str
) -> None:
    query = (
        "query { ...A ...B ... on Query { __typename } } "
        "fragment A on Query { " + "me { clientId } " * 10 + "} "
        "fragment B on Query { " + "customers { totalCount } " * 11 + "}"
    )
    assert_refused(await run(client, token, query), "MAX_ROOT_FIELDS_EXCEEDED")


@pytest.mark.parametrize(
    "directives",
    [
        "@include(if: true) " * 5,
        "@include(if: true) @skip(if: false) " * 3,
        "@aa " * 10,
    ],
    ids=["5 include", "6 mixed", "graphql-cop 10 unknown"],
)
async def test_too_many_directives_on_a_field_are_refused(
    client: httpx.AsyncClient, token: str, directives: str
) -> None:
    # graphql-core also reports repeated or unknown directives; ours is among the errors.
    response = await run(client, token, f"{{ me {{ clientId {directives}}} }}")
    assert_refused(response, "MAX_DIRECTIVES_EXCEEDED")


async def test_directives_at_the_limit_run(client: httpx.AsyncClient, token: str) -> None:
    query = "{ me { clientId @include(if: true) @skip(if: false) } }"
    assert_ok(await run(client, token, query))


# --- tokens, document size, page size -------------------------------------------------------


async def test_too_many_tokens_are_refused(
    client: httpx.AsyncClient, token: str, settings: Settings
) -> None:
    fields = "clientId " * settings.max_tokens
    query = "{ me { " + fields + "} }"
    assert len(query.encode()) < settings.max_document_bytes  # tokens, not size, are hit
    assert_refused(await run(client, token, query), "MAX_TOKENS_EXCEEDED")


@pytest.mark.parametrize(("fields", "allowed"), [(30, True), (35, True), (40, False), (80, False)])
async def test_token_limit_setting_is_applied(
    db: Database, database_url: str, fields: int, allowed: bool
) -> None:
    """``{ me { f f ... } }`` is ``fields + 5`` tokens; the limit here is 40."""
    async with running(make_settings(database_url, max_tokens=40)) as http:
        token = await token_for(http, await make_caller(db, "operator"))
        query = "{ me { " + "clientId " * fields + "} }"
        response = await run(http, token, query)
        if allowed:
            assert_ok(response)
        else:
            assert_refused(response, "MAX_TOKENS_EXCEEDED")


async def test_document_over_the_size_limit_is_refused(
    client: httpx.AsyncClient, token: str, settings: Settings
) -> None:
    query = "{ me { clientId } }\n# " + "x" * settings.max_document_bytes
    assert len(query.encode()) < settings.max_body_bytes  # the body limit is not what hit
    response = await run(client, token, query)

    assert response.status_code == 400, response.text
    assert codes(response) == ["DOCUMENT_TOO_LARGE"]


@pytest.mark.parametrize(
    ("query", "needs_customer"),
    [
        ("{ customers(first: 101) { totalCount } }", False),
        ("{ feedback(first: 101) { totalCount } }", False),
        ("query ($n: Int) { customers(first: $n) { totalCount } }", False),
        ("{ customers { edges { node { feedback(first: 101) { totalCount } } } } }", True),
        ("{ customers { edges { node { partners(first: 101) { totalCount } } } } }", True),
    ],
    ids=["customers", "feedback", "variable", "nested feedback", "nested partners"],
)
async def test_page_size_over_the_maximum_is_bad_user_input(
    client: httpx.AsyncClient, token: str, query: str, needs_customer: bool
) -> None:
    if needs_customer:  # a nested connection is only resolved under an existing customer
        created = await run(
            client, token, 'mutation { createCustomer(input: {name: "Page"}) { customer { id } } }'
        )
        assert assert_ok(created)["createCustomer"]["customer"]["id"]

    response = await run(client, token, query, {"n": 101})

    assert response.status_code == 200, response.text
    assert "BAD_USER_INPUT" in codes(response), response.text


async def test_page_size_at_the_maximum_runs(client: httpx.AsyncClient, token: str) -> None:
    assert_ok(await run(client, token, "{ customers(first: 100) { totalCount } }"))
