"""GraphQL over HTTP: negotiation, status codes, methods, bodies, and what errors reveal."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from app import create_app
from hub.db import Database
from hub.models import Customer
from hub.settings import Settings
from tests.conftest import make_caller, make_settings, token_for

GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"
ME = "{ me { clientId } }"
CREATE = 'mutation { createCustomer(input: {name: "Via GET"}) { customer { id } } }'


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


def auth(token: str, accept: str | None = GRAPHQL_RESPONSE, **extra: str) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {token}", **extra}
    if accept is not None:
        headers["Accept"] = accept
    return headers


async def post(
    http: httpx.AsyncClient, token: str, body: Any, accept: str | None = GRAPHQL_RESPONSE
) -> httpx.Response:
    return await http.post("/graphql", json=body, headers=auth(token, accept))


def media_type(response: httpx.Response) -> str:
    return response.headers["content-type"].split(";")[0].strip()


def codes(response: httpx.Response) -> list[str]:
    return [error["extensions"]["code"] for error in response.json()["errors"]]


async def customer_count(db: Database) -> int:
    async with db.session() as session:
        return (await session.execute(select(func.count()).select_from(Customer))).scalar_one()


# --- content negotiation -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (GRAPHQL_RESPONSE, GRAPHQL_RESPONSE),
        (JSON, JSON),
        (None, JSON),
        ("*/*", JSON),
        ("application/*", JSON),
        (f"{JSON};q=0.5, {GRAPHQL_RESPONSE}", GRAPHQL_RESPONSE),
        (f"{GRAPHQL_RESPONSE};q=0.1, {JSON}", JSON),
        (f"text/html, {GRAPHQL_RESPONSE}", GRAPHQL_RESPONSE),
    ],
)
async def test_response_media_type_follows_accept(
    client: httpx.AsyncClient, token: str, accept: str | None, expected: str
) -> None:
    response = await post(client, token, {"query": ME}, accept)

    assert response.status_code == 200, response.text
    assert media_type(response) == expected
    assert response.json()["data"]["me"]["clientId"].startswith("hub_")


@pytest.mark.parametrize("accept", ["text/plain", "text/html", "application/xml", f"{JSON};q=0"])
async def test_unacceptable_accept_is_406(
    client: httpx.AsyncClient, token: str, accept: str
) -> None:
    response = await post(client, token, {"query": ME}, accept)

    assert response.status_code == 406, response.text
    assert codes(response) == ["NOT_ACCEPTABLE"]


# --- request errors (parse, validation, variables) -----------------------------------------


@pytest.mark.parametrize(
    ("accept", "status"), [(GRAPHQL_RESPONSE, 400), (JSON, 200)], ids=["graphql-response", "json"]
)
@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("{ me { clientId }", "GRAPHQL_PARSE_FAILED"),
        ("query {", "GRAPHQL_PARSE_FAILED"),
        ("{ me { noSuchField } }", "GRAPHQL_VALIDATION_FAILED"),
        ("{ noSuchRoot }", "GRAPHQL_VALIDATION_FAILED"),
        ("{ me }", "GRAPHQL_VALIDATION_FAILED"),
        ("query A { me { clientId } } query A { me { clientId } }", "GRAPHQL_VALIDATION_FAILED"),
    ],
    ids=["unclosed", "truncated", "unknown field", "unknown root", "no selection", "dup name"],
)
async def test_request_errors_have_no_data(
    client: httpx.AsyncClient, token: str, query: str, code: str, accept: str, status: int
) -> None:
    response = await post(client, token, {"query": query}, accept)

    assert response.status_code == status, response.text
    assert media_type(response) == accept
    body = response.json()
    assert "data" not in body
    assert body["errors"]
    assert code in codes(response)


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        ("query ($first: Int) { customers(first: $first) { totalCount } }", {"first": "ten"}),
        ("query ($first: Int) { customers(first: $first) { totalCount } }", {"first": 1.5}),
        ("query ($id: ID!) { customer(id: $id) { name } }", {}),
        ("query ($id: ID!) { customer(id: $id) { name } }", {"id": None}),
        (
            "query ($f: CustomerFilter) { customers(filter: $f) { totalCount } }",
            {"f": {"segment": "NOT_A_SEGMENT"}},
        ),
        (
            "query ($f: CustomerFilter) { customers(filter: $f) { totalCount } }",
            {"f": "not an object"},
        ),
    ],
)
async def test_invalid_variables_are_bad_user_input(
    client: httpx.AsyncClient, token: str, query: str, variables: dict[str, Any]
) -> None:
    response = await post(client, token, {"query": query, "variables": variables})

    assert response.status_code == 400, response.text
    assert media_type(response) == GRAPHQL_RESPONSE
    assert "data" not in response.json()
    assert set(codes(response)) == {"BAD_USER_INPUT"}


@pytest.mark.parametrize(
    "body",
    [
        {"query": ME, "variables": []},
        {"query": ME, "variables": "{}"},
        {"query": ME, "extensions": 1},
        {"query": ME, "operationName": 3},
        {"query": ""},
        {"query": 42},
        {"variables": {}},
        {"query": "query A { me { clientId } }", "operationName": "B"},
    ],
)
async def test_malformed_graphql_params_are_400(
    client: httpx.AsyncClient, token: str, body: dict[str, Any]
) -> None:
    response = await post(client, token, body)

    assert response.status_code == 400, response.text
    assert "data" not in response.json()


async def test_several_operations_without_operation_name_is_a_request_error(
    client: httpx.AsyncClient, token: str
) -> None:
    """GraphQL spec §6.1 GetOperation: with several operations, operationName is required."""
    query = "query A { me { clientId } } query B { customers { totalCount } }"
    response = await post(client, token, {"query": query})

    assert response.status_code == 400, response.text
    assert "data" not in response.json()


@pytest.mark.parametrize(
    "content",
    [
        b'{"query": "{ me { clientId } }"',
        b"not json at all",
        b"",
        b"\xff\xfe\x00",
        b"42",
        b'"{ me { clientId } }"',
        b"null",
    ],
    ids=["truncated", "text", "empty", "not utf-8", "number", "string", "null"],
)
async def test_malformed_json_body_is_400(
    client: httpx.AsyncClient, token: str, content: bytes
) -> None:
    response = await client.post(
        "/graphql", content=content, headers=auth(token, **{"Content-Type": JSON})
    )

    assert response.status_code == 400, response.text
    assert "data" not in response.json()


@pytest.mark.parametrize("count", [1, 10])
async def test_batched_json_array_is_400(
    client: httpx.AsyncClient, token: str, db: Database, count: int
) -> None:
    """graphql-cop sends a JSON array of 10 operations: batching is not supported."""
    batch = [{"query": CREATE}] * count
    response = await post(client, token, batch)

    assert response.status_code == 400, response.text
    assert codes(response) == ["BATCH_NOT_SUPPORTED"]
    assert await customer_count(db) == 0


@pytest.mark.parametrize(
    "content_type",
    [
        "application/x-www-form-urlencoded",
        "text/plain",
        "text/plain; charset=utf-8",
        "multipart/form-data; boundary=xyz",
        "application/graphql",
        None,
    ],
)
async def test_non_json_content_type_is_415_and_writes_nothing(
    client: httpx.AsyncClient, token: str, db: Database, content_type: str | None
) -> None:
    """Form posts and text/plain are the cross-site (CSRF) shapes: refused before executing."""
    headers = auth(token)
    if content_type is not None:
        headers["Content-Type"] = content_type
    content = json.dumps({"query": CREATE}).encode()
    if content_type == "application/x-www-form-urlencoded":
        content = str(httpx.QueryParams({"query": CREATE})).encode()
    response = await client.post("/graphql", content=content, headers=headers)

    assert response.status_code == 415, response.text
    assert codes(response) == ["UNSUPPORTED_MEDIA_TYPE"]
    assert await customer_count(db) == 0


async def test_body_over_the_limit_is_413(
    client: httpx.AsyncClient, token: str, settings: Settings
) -> None:
    padding = " " * settings.max_body_bytes
    content = json.dumps({"query": ME + padding}).encode()
    response = await client.post(
        "/graphql", content=content, headers=auth(token, **{"Content-Type": JSON})
    )

    assert response.status_code == 413, response.text
    assert codes(response) == ["PAYLOAD_TOO_LARGE"]


async def test_streamed_body_over_the_limit_is_413(
    client: httpx.AsyncClient, token: str, settings: Settings
) -> None:
    """Without a Content-Length the body is counted as it arrives."""

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"query": "' + ME.encode()
        for _ in range(settings.max_body_bytes // 1000 + 2):
            yield b" " * 1000
        yield b'"}'

    response = await client.post(
        "/graphql", content=chunks(), headers=auth(token, **{"Content-Type": JSON})
    )

    assert response.status_code == 413, response.text


# --- methods ---------------------------------------------------------------------------------


async def test_query_over_get(client: httpx.AsyncClient, token: str) -> None:
    response = await client.get("/graphql", params={"query": ME}, headers=auth(token))

    assert response.status_code == 200, response.text
    assert media_type(response) == GRAPHQL_RESPONSE
    assert response.json()["data"]["me"]["clientId"].startswith("hub_")


async def test_get_with_variables_and_operation_name(client: httpx.AsyncClient, token: str) -> None:
    query = "query A { me { clientId } } query B($n: Int) { customers(first: $n) { totalCount } }"
    params = {"query": query, "operationName": "B", "variables": json.dumps({"n": 1})}
    response = await client.get("/graphql", params=params, headers=auth(token))

    assert response.status_code == 200, response.text
    assert response.json() == {"data": {"customers": {"totalCount": 0}}}


@pytest.mark.parametrize("variables", ["{not json", "[1]", "3"])
async def test_get_with_bad_variables_is_400(
    client: httpx.AsyncClient, token: str, variables: str
) -> None:
    params = {"query": ME, "variables": variables}
    response = await client.get("/graphql", params=params, headers=auth(token))

    assert response.status_code == 400, response.text


@pytest.mark.parametrize(
    "params",
    [
        {"query": CREATE},
        {
            "query": f"query Q {{ me {{ clientId }} }} {CREATE.replace('mutation', 'mutation M')}",
            "operationName": "M",
        },
    ],
    ids=["mutation", "mutation chosen by operationName"],
)
async def test_mutation_over_get_is_405_and_writes_nothing(
    client: httpx.AsyncClient, token: str, db: Database, params: dict[str, str]
) -> None:
    response = await client.get("/graphql", params=params, headers=auth(token))

    assert response.status_code == 405, response.text
    assert "POST" in response.headers["allow"]
    assert "data" not in response.json()
    assert await customer_count(db) == 0


async def test_mutation_over_post_writes(
    client: httpx.AsyncClient, token: str, db: Database
) -> None:
    """Control for the GET case: the same mutation does write when POSTed."""
    response = await post(client, token, {"query": CREATE})

    assert response.status_code == 200, response.text
    assert response.json()["data"]["createCustomer"]["customer"]["id"]
    assert await customer_count(db) == 1


async def test_a_subscription_by_post_is_a_bad_request_naming_it(
    client: httpx.AsyncClient, token: str
) -> None:
    """The hub serves no subscriptions over HTTP: POSTing one is the client's mistake (400),
    said as such, not a 405 telling it to stop using GET."""
    response = await post(client, token, {"query": "subscription { me { clientId } }"})

    assert response.status_code == 400, response.text
    body = response.json()
    assert "data" not in body
    assert body["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
    assert "subscriptions" in body["errors"][0]["message"]
    assert "GET" not in body["errors"][0]["message"]


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
async def test_other_methods_are_405(client: httpx.AsyncClient, token: str, method: str) -> None:
    response = await client.request(method, "/graphql", json={"query": ME}, headers=auth(token))
    assert response.status_code == 405


# --- what errors reveal ----------------------------------------------------------------------

SUGGESTION_PROBES: list[tuple[str, dict[str, Any]]] = [
    ("{ customerz { totalCount } }", {}),
    ("{ me { clientID } }", {}),
    ("{ customers { edges { node { emial } } } }", {}),
    ("{ customers(frist: 1) { totalCount } }", {}),
    ("{ customers(orderBy: {field: NAM}) { totalCount } }", {}),
    ("{ customers(orderBy: {field: NAME, direction: ASCENDING}) { totalCount } }", {}),
    ('{ customers(filter: {serch: "a"}) { totalCount } }', {}),
    ("{ customers(filter: {segment: SMBB}) { totalCount } }", {}),
    (
        "query ($o: CustomerOrder) { customers(orderBy: $o) { totalCount } }",
        {"o": {"field": "NAM"}},
    ),
    ("query ($f: CustomerFilter) { customers(filter: $f) { totalCount } }", {"f": {"serch": "a"}}),
    (
        "query ($f: CustomerFilter) { customers(filter: $f) { totalCount } }",
        {"f": {"segment": "SMBB"}},
    ),
    ("query ($f: CustomerFiltr) { customers(filter: $f) { totalCount } }", {}),
    ("query ($o: CustomerOrdr) { customers { totalCount } }", {}),
    ("fragment F on Custmer { name } { customers { edges { node { ...F } } } }", {}),
    ("{ customers { edges { node { ... on Custome { name } } } } }", {}),
    ("{ me { clientId @include(iff: true) } }", {}),
    ("{ me { clientId @inclde(if: true) } }", {}),
    ('mutation { createCustomer(input: {nme: "x"}) { customer { id } } }', {}),
    ('mutation { createCustomer(input: {name: "x", kind: PERSN}) { customer { id } } }', {}),
    ('mutation { createCustomr(input: {name: "x"}) { customer { id } } }', {}),
    (
        "mutation ($i: CustomerInput!) { createCustomer(input: $i) { customer { id } } }",
        {"i": {"name": "x", "emial": "a@b.c"}},
    ),
    ('{ __type(name: "Customer") { feilds { name } } }', {}),
]


@pytest.mark.parametrize(("query", "variables"), SUGGESTION_PROBES)
@pytest.mark.parametrize("accept", [GRAPHQL_RESPONSE, JSON])
async def test_errors_never_suggest_names(
    client: httpx.AsyncClient,
    token: str,
    query: str,
    variables: dict[str, Any],
    accept: str,
) -> None:
    response = await post(client, token, {"query": query, "variables": variables}, accept)

    assert response.json()["errors"], response.text
    assert "did you mean" not in response.text.lower()


async def test_get_errors_never_suggest_names(client: httpx.AsyncClient, token: str) -> None:
    response = await client.get(
        "/graphql", params={"query": "{ customerz { totalCount } }"}, headers=auth(token)
    )
    assert response.json()["errors"]
    assert "did you mean" not in response.text.lower()


@pytest.mark.parametrize(
    "body",
    [
        {"query": '{ node(id: "T3JnYW5pemF0aW9uOjA=") { id } }'},
        {"query": '{ node(id: "not base64 !!") { id } }'},
        {"query": '{ customer(id: "") { name } }'},
        {"query": '{ nodes(ids: ["a", "b"]) { id } }'},
        {"query": '{ customers(after: "garbage-cursor") { totalCount } }'},
        {"query": "{ customers(first: -1) { totalCount } }"},
        {"query": "{ customers(first: 99999999999) { totalCount } }"},
        {"query": '{ customers(filter: {updatedSince: "yesterday"}) { totalCount } }'},
        {"query": "query A { me { clientId } }", "operationName": "Nope"},
        {"query": "{ me { clientId } }", "variables": {"x": {"y": [1, {"z": None}]}}},
        {
            "query": 'mutation { updateCustomer(id: "x", expectedVersion: 1, patch: {}) '
            "{ userErrors { message } } }"
        },
        {
            "query": 'mutation { createCustomer(input: {name: "", email: "nope"}) '
            "{ userErrors { field message code } } }"
        },
    ],
)
async def test_no_stack_traces_in_any_body(
    client: httpx.AsyncClient, token: str, body: dict[str, Any]
) -> None:
    response = await post(client, token, body)

    assert response.status_code < 500, response.text
    text = response.text
    assert "Traceback" not in text
    assert 'File "' not in text
    assert ".py" not in text
    assert "stacktrace" not in text.lower()
    for error in response.json().get("errors", []):
        assert set(error) <= {"message", "locations", "path", "extensions"}
        assert error["extensions"]["code"]


async def test_unknown_global_id_type_is_not_an_internal_error(
    client: httpx.AsyncClient, token: str
) -> None:
    """A well-formed ID of a type without nodes is "not found" (null), like any other."""
    response = await post(client, token, {"query": '{ node(id: "T3JnYW5pemF0aW9uOjA=") { id } }'})

    assert response.status_code == 200, response.text
    assert response.json() == {"data": {"node": None}}


# --- request ids ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "with_token", "accept", "status"),
    [
        ("POST", "/graphql", True, GRAPHQL_RESPONSE, 200),
        ("POST", "/graphql", False, GRAPHQL_RESPONSE, 401),
        ("POST", "/graphql", True, "text/plain", 406),
        ("GET", "/graphql", True, GRAPHQL_RESPONSE, 400),
        ("GET", "/no-such-path", False, JSON, 404),
        ("GET", "/.well-known/jwks.json", False, JSON, 200),
    ],
)
async def test_every_response_carries_a_request_id(
    client: httpx.AsyncClient,
    token: str,
    method: str,
    path: str,
    with_token: bool,
    accept: str,
    status: int,
) -> None:
    headers = auth(token, accept) if with_token else {"Accept": accept}
    body = {"query": ME} if method == "POST" else None
    response = await client.request(method, path, json=body, headers=headers)

    assert response.status_code == status, response.text
    assert len(response.headers["x-request-id"]) >= 16


async def test_request_ids_differ_and_a_sane_incoming_id_is_kept(
    client: httpx.AsyncClient, token: str
) -> None:
    first = await post(client, token, {"query": ME})
    second = await post(client, token, {"query": ME})
    assert first.headers["x-request-id"] != second.headers["x-request-id"]

    kept = await client.post(
        "/graphql", json={"query": ME}, headers=auth(token, **{"X-Request-ID": "trace-abc_123"})
    )
    assert kept.headers["x-request-id"] == "trace-abc_123"

    replaced = await client.post(
        "/graphql", json={"query": ME}, headers=auth(token, **{"X-Request-ID": "<script>"})
    )
    assert replaced.headers["x-request-id"] != "<script>"
    assert replaced.headers["x-request-id"].isalnum()


# --- GraphiQL ---------------------------------------------------------------------------------


async def test_no_ide_for_text_html_by_default(client: httpx.AsyncClient, token: str) -> None:
    for headers in ({"Accept": "text/html"}, auth(token, "text/html")):
        response = await client.get("/graphql", headers=headers)
        assert response.status_code != 200
        assert "text/html" not in response.headers.get("content-type", "")
        assert "graphiql" not in response.text.lower()


async def test_ide_served_for_text_html_when_enabled(db: Database, database_url: str) -> None:
    async with running(make_settings(database_url, graphiql=True)) as http:
        response = await http.get("/graphql", headers={"Accept": "text/html,application/xhtml+xml"})
        assert response.status_code == 200
        assert media_type(response) == "text/html"
        assert "graphiql" in response.text.lower()

        # Still no unauthenticated GraphQL: a query over GET needs a token.
        anonymous = await http.get("/graphql", params={"query": ME}, headers={"Accept": JSON})
        assert anonymous.status_code == 401
