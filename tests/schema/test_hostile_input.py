"""Hostile input at /graphql and the OAuth form endpoints: a 4xx or BAD_USER_INPUT naming
the input, never a 500, the same on SQLite and PostgreSQL, nothing written."""

from __future__ import annotations

import base64
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
from schema.input_guard import InputRefused, check_json, load_json, nesting_depth
from tests.conftest import Caller, gql, make_caller, make_settings, token_for

GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"
ME = "{ me { clientId } }"
FIRST = "query ($first: Int) { customers(first: $first) { totalCount } }"
CREATE = """mutation ($input: CustomerInput!) {
  createCustomer(input: $input) { customer { id } userErrors { field code } } }"""
HUGE = "1" + "0" * 50_000  # the 50,000-digit integer
SURROGATE = "\ud800"


def create_with(input_literal: str) -> str:
    return f"mutation {{ createCustomer(input: {input_literal}) {{ customer {{ id }} }} }}"


@pytest.fixture
async def caller(client: httpx.AsyncClient, db: Database) -> Caller:
    operator = await make_caller(db, "operator")
    await token_for(client, operator)
    return operator


def headers(caller: Caller, accept: str = GRAPHQL_RESPONSE, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {caller.token}", "Accept": accept, **extra}


async def post_text(
    http: httpx.AsyncClient, caller: Caller, text: str, accept: str = GRAPHQL_RESPONSE
) -> httpx.Response:
    """POST JSON text as written (``json=`` cannot carry lone surrogates or huge numbers)."""
    return await http.post(
        "/graphql",
        content=text.encode(),
        headers=headers(caller, accept, **{"Content-Type": JSON}),
    )


def body(query: str, variables: dict[str, Any] | None = None, **extra: Any) -> str:
    # ensure_ascii (the default) writes a lone surrogate as the JSON escape "\ud800".
    return json.dumps({"query": query, "variables": variables or {}, **extra})


def refusal(response: httpx.Response) -> dict[str, Any]:
    """The one error of a refused request, after the checks every refusal shares."""
    assert response.status_code == 400, response.text
    payload = response.json()
    assert "data" not in payload
    [error] = payload["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "Internal" not in error["message"]
    result: dict[str, Any] = error
    return result


async def customers(db: Database) -> int:
    async with db.session() as session:
        return (await session.execute(select(func.count()).select_from(Customer))).scalar_one()


# --- variables: strings, keys, numbers -------------------------------------------------------


@pytest.mark.parametrize(
    ("input_", "field", "words"),
    [
        ({"name": "a\x00b"}, ["input", "name"], "NUL"),
        ({"name": f"a{SURROGATE}b"}, ["input", "name"], "surrogate"),
        ({"name": "x", "city": "\udfff"}, ["input", "city"], "surrogate"),
        ({"name": "x", "idempotencyKey": "k\x00"}, ["input", "idempotencyKey"], "NUL"),
        ({"name": "x", "traits": {"a\x00": 1}}, ["input", "traits"], "key"),
        ({"name": "x", "traits": {f"k{SURROGATE}": 1}}, ["input", "traits"], "key"),
        ({"name": "x", "traits": {"l": ["ok", "\x00"]}}, ["input", "traits", "l", "1"], "NUL"),
        ({"name": "x", "traits": {"n": "HUGE"}}, ["input", "traits", "n"], "64 bits"),
        ({"name": "x", "traits": {"n": "2**63"}}, ["input", "traits", "n"], "64 bits"),
        ({"name": "x", "traits": {"n": "-2**63-1"}}, ["input", "traits", "n"], "64 bits"),
        ({"name": "x", "traits": {"n": "1e999"}}, ["input", "traits", "n"], "finite"),
        ({"name": "x", "traits": {"n": "NaN"}}, ["input", "traits", "n"], "finite"),
        ({"name": "x", "lifetimeValue": "-Infinity"}, ["input", "lifetimeValue"], "finite"),
    ],
    ids=[
        "NUL",
        "surrogate",
        "low surrogate",
        "NUL idempotency key",
        "NUL key",
        "surrogate key",
        "NUL in list",
        "50000 digits",
        "2**63",
        "-2**63-1",
        "1e999",
        "NaN",
        "-Infinity",
    ],
)
async def test_mutation_variables_are_refused_by_path_and_write_nothing(
    client: httpx.AsyncClient,
    db: Database,
    caller: Caller,
    input_: dict[str, Any],
    field: list[str],
    words: str,
) -> None:
    numbers = {
        '"HUGE"': HUGE,
        '"2**63"': str(2**63),
        '"-2**63-1"': str(-(2**63) - 1),
        '"1e999"': "1e999",
        '"NaN"': "NaN",
        '"-Infinity"': "-Infinity",
    }
    text = body(CREATE, {"input": input_})
    for placeholder, number in numbers.items():
        text = text.replace(placeholder, number)

    error = refusal(await post_text(client, caller, text))

    assert error["extensions"]["field"] == ["variables", *field]
    assert error["message"].startswith("variables." + ".".join(field[:2]))
    assert words in error["message"]
    assert await customers(db) == 0


async def test_limits_of_64_bit_integers_pass_the_guard(
    client: httpx.AsyncClient, db: Database, caller: Caller
) -> None:
    """Control: the largest 64-bit integers are data (stored in a JSON trait)."""
    text = body(CREATE, {"input": {"name": "Edge", "traits": {"hi": "HI", "lo": "LO"}}})
    text = text.replace('"HI"', str(2**63 - 1)).replace('"LO"', str(-(2**63)))

    response = await post_text(client, caller, text)

    assert response.status_code == 200, response.text
    assert response.json()["data"]["createCustomer"]["userErrors"] == []
    assert await customers(db) == 1


@pytest.mark.parametrize(
    ("number", "words"),
    [(HUGE, "64 bits"), (str(2**63), "64 bits"), ("1e999", "finite")],
    ids=["50000 digits", "2**63", "1e999"],
)
async def test_int_variable_beyond_64_bits_is_refused(
    client: httpx.AsyncClient, caller: Caller, number: str, words: str
) -> None:
    text = body(FIRST, {"first": "N"}).replace('"N"', number)

    error = refusal(await post_text(client, caller, text))

    assert error["extensions"]["field"] == ["variables", "first"]
    assert words in error["message"]


async def test_int_variable_within_64_bits_meets_graphql_int(
    client: httpx.AsyncClient, caller: Caller
) -> None:
    """Past the guard, GraphQL's 32-bit Int refuses it as a variable error."""
    response = await post_text(client, caller, body(FIRST, {"first": 2**40}))

    assert response.status_code == 400, response.text
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "$first" in error["message"]


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"query": "{ me { clientId } }\x00"}, ["query"]),
        ({"query": create_with('{name: "a\x00b"}')}, ["query"]),
        ({"query": create_with('{name: """a\x00b"""}')}, ["query"]),
        (
            {"query": f'{{ customers(filter: {{search: "{SURROGATE}"}}) {{ totalCount }} }}'},
            ["query"],
        ),
        ({"operationName": "A\x00"}, ["operationName"]),
        ({"extensions": {"x": ["\x00"]}}, ["extensions", "x", "0"]),
    ],
    ids=[
        "NUL in document",
        "NUL in string",
        "NUL in block string",
        "surrogate in document",
        "NUL operationName",
        "NUL in extensions",
    ],
)
async def test_other_request_parameters_are_checked_too(
    client: httpx.AsyncClient, caller: Caller, extra: dict[str, Any], field: list[str]
) -> None:
    params = {"query": ME, **extra}
    text = json.dumps(params)

    error = refusal(await post_text(client, caller, text))

    assert error["extensions"]["field"] == field


# --- nesting ---------------------------------------------------------------------------------


def nested(levels: int) -> str:
    return '{"a":' * levels + "1" + "}" * levels


async def test_15000_nested_objects_in_variables_are_refused_before_parsing(
    client: httpx.AsyncClient, db: Database, caller: Caller
) -> None:
    text = (
        f'{{"query": {json.dumps(CREATE)}, '
        f'"variables": {{"input": {{"name": "x", "traits": {nested(15_000)}}}}}}}'
    )

    error = refusal(await post_text(client, caller, text))

    assert error["message"] == "the request is nested 15003 levels deep; the limit is 64"
    assert await customers(db) == 0


@pytest.mark.parametrize(("levels", "status"), [(63, 200), (64, 400)])
async def test_nesting_limit_counts_the_body_as_level_one(
    client: httpx.AsyncClient, caller: Caller, levels: int, status: int
) -> None:
    """The body is level 1, so ``extensions`` may hold 63 levels under the default 64."""
    text = f'{{"query": "{ME}", "extensions": {nested(levels)}}}'

    response = await post_text(client, caller, text)

    assert response.status_code == status, response.text


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://hub.test") as http:
            yield http


async def test_nesting_limit_is_a_setting(db: Database, database_url: str) -> None:
    async with running(make_settings(database_url, max_json_depth=4)) as http:
        caller = await make_caller(db, "operator")
        await token_for(http, caller)
        shallow = await post_text(http, caller, body(ME, {"a": {"b": {"c": 1}}}))
        deep = await post_text(http, caller, body(ME, {"a": {"b": {"c": {"d": 1}}}}))

    assert shallow.status_code == 200, shallow.text
    assert refusal(deep)["message"] == "the request is nested 5 levels deep; the limit is 4"


def test_brackets_inside_strings_do_not_count() -> None:
    assert nesting_depth('{"a": "[[[[{{{{\\"[[["}') == 1
    assert nesting_depth('[[], [[]], {"x": [{}]}]') == 4
    assert nesting_depth('"just a string"') == 0


# --- GET -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"query": ME + "\x00"}, ["query"]),
        ({"query": FIRST, "variables": f'{{"first": {HUGE}}}'}, ["variables", "first"]),
        ({"query": FIRST, "variables": '{"first": "\\u0000"}'}, ["variables", "first"]),
        ({"query": FIRST, "variables": '{"first": "\\ud800"}'}, ["variables", "first"]),
        ({"query": FIRST, "variables": nested(100)}, ["variables"]),
    ],
    ids=["NUL query", "50000 digits", "NUL", "surrogate", "deep"],
)
async def test_get_parameters_are_checked(
    client: httpx.AsyncClient, caller: Caller, params: dict[str, str], field: list[str]
) -> None:
    response = await client.get("/graphql", params=params, headers=headers(caller))

    error = refusal(response)
    assert error["extensions"]["field"] == field
    if field == ["variables"]:  # the request itself is level 1 of the limit
        assert error["message"] == "variables is nested 100 levels deep; the limit is 63"


# --- literals in the document ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "field", "words"),
    [
        (create_with('{name: "a\\u0000b"}'), ["createCustomer", "input", "name"], "NUL"),
        (
            create_with('{name: "x", traits: {l: ["ok", "\\u0000"]}}'),
            ["createCustomer", "input", "traits", "l", "1"],
            "NUL",
        ),
        (
            create_with('{name: "x", traits: {n: 1' + "0" * 5_000 + "}}"),
            ["createCustomer", "input", "traits", "n"],
            "64 bits",
        ),
        (
            create_with('{name: "x", lifetimeValue: 1e999}'),
            ["createCustomer", "input", "lifetimeValue"],
            "finite",
        ),
        (
            'mutation ($n: String! = "\\u0000") { createCustomer(input: {name: $n}) '
            "{ customer { id } } }",
            ["$n"],
            "NUL",
        ),
    ],
    ids=[
        "escaped NUL",
        "NUL in list",
        "5000 digits",
        "1e999",
        "default",
    ],
)
@pytest.mark.parametrize(
    ("accept", "status"), [(GRAPHQL_RESPONSE, 400), (JSON, 200)], ids=["graphql-response", "json"]
)
async def test_document_literals_are_refused_by_path_and_write_nothing(
    client: httpx.AsyncClient,
    db: Database,
    caller: Caller,
    query: str,
    field: list[str],
    words: str,
    accept: str,
    status: int,
) -> None:
    response = await post_text(client, caller, json.dumps({"query": query}), accept)

    assert response.status_code == status, response.text
    payload = response.json()
    assert "data" not in payload
    [error] = payload["errors"]
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": field}
    assert words in error["message"]
    assert await customers(db) == 0


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("{ customers(first: 1" + "0" * 10_000 + ") { totalCount } }", ["customers", "first"]),
        ("{ c: customers(first: 9223372036854775808) { totalCount } }", ["c", "first"]),
        (
            '{ me { clientId @include(if: true) } customer(id: "\\u0000") { id } }',
            ["customer", "id"],
        ),
        (
            "{ ...F } fragment F on Query { ... on Query { customers(first: 1e999) { totalCount } } }",
            ["...F", "customers", "first"],
        ),
    ],
    ids=["10000 digits", "2**63 aliased", "NUL id", "in a fragment"],
)
async def test_query_literals_are_refused(
    client: httpx.AsyncClient, caller: Caller, query: str, field: list[str]
) -> None:
    error = refusal(await post_text(client, caller, json.dumps({"query": query})))

    assert error["extensions"]["field"] == field


async def test_graphql_int_literal_within_64_bits_is_a_validation_error(
    client: httpx.AsyncClient, caller: Caller
) -> None:
    """Past the guard, a 64-bit literal meets GraphQL's 32-bit Int: a plain 400."""
    query = "{ customers(first: 9223372036854775807) { totalCount } }"
    response = await post_text(client, caller, json.dumps({"query": query}))

    assert response.status_code == 400, response.text
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert "32-bit" in error["message"]


# --- the same text on both backends ------------------------------------------------------------


async def test_unicode_beyond_the_bmp_and_other_controls_are_stored(
    client: httpx.AsyncClient, caller: Caller
) -> None:
    """Control: valid surrogate pairs (astral characters) and tabs are ordinary text."""
    name = "Zoë 😀\tTab"
    data = await gql(client, caller, CREATE, {"input": {"name": name}})
    new_id = data["data"]["createCustomer"]["customer"]["id"]

    read = await gql(
        client, caller, "query ($id: ID!) { customer(id: $id) { name } }", {"id": new_id}
    )

    assert read["data"]["customer"]["name"] == name


async def test_idempotency_key_header_with_nul_is_a_user_error(
    client: httpx.AsyncClient, db: Database, caller: Caller
) -> None:
    response = await client.post(
        "/graphql",
        json={"query": CREATE, "variables": {"input": {"name": "Header"}}},
        headers=headers(caller, **{"Idempotency-Key": "key\x00"}),
    )

    assert response.status_code == 200, response.text
    payload = response.json()["data"]["createCustomer"]
    assert payload["customer"] is None
    assert payload["userErrors"] == [{"field": ["input", "idempotencyKey"], "code": "INVALID"}]
    assert await customers(db) == 0


# --- OAuth form endpoints ------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/oauth/token", "/oauth/introspect", "/oauth/revoke"])
@pytest.mark.parametrize(
    "content",
    [
        b"grant_type=client_credentials&client_id=hub_x%00&client_secret=s",
        b"grant_type=client_credentials&client_id=hub_x&client_secret=s%00",
        b"grant_type=client_credentials&client_id=hub_x&client_secret=s&token=%00",
        b"grant_type=client_credentials&client_id=hub_x&client_secret=s&a%00=1",
        b"grant_type=client_credentials&client_id=hub_\xed\xa0\x80&client_secret=s",
    ],
    ids=["NUL id", "NUL secret", "NUL token", "NUL name", "raw surrogate"],
)
async def test_oauth_forms_with_nul_or_surrogates_are_invalid_request(
    client: httpx.AsyncClient, path: str, content: bytes
) -> None:
    response = await client.post(
        path, content=content, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )

    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_request"


async def test_oauth_percent_encoded_surrogate_is_an_unknown_client(
    client: httpx.AsyncClient,
) -> None:
    """%ED%A0%80 decodes to replacement characters: an id no client has."""
    response = await client.post(
        "/oauth/token",
        content=b"grant_type=client_credentials&client_id=hub_%ED%A0%80&client_secret=s",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )

    assert response.status_code == 401, response.text
    assert response.json()["error"] == "invalid_client"


@pytest.mark.parametrize("path", ["/oauth/token", "/oauth/introspect", "/oauth/revoke"])
async def test_a_nul_in_basic_credentials_is_an_unknown_client(
    client: httpx.AsyncClient, path: str
) -> None:
    """Basic credentials bypass the form check: a client id with NUL is simply unknown
    (PostgreSQL cannot compare text with NUL; the hub never asks it to)."""
    encoded = base64.b64encode(b"hub_x%00:secret").decode()
    response = await client.post(
        path,
        content=b"grant_type=client_credentials&token=t",
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Authorization": f"Basic {encoded}",
        },
    )

    assert response.status_code == 401, response.text
    assert response.json()["error"] == "invalid_client"


async def test_a_nul_client_id_at_the_authorization_endpoint_is_refused(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get(
        "/oauth/authorize",
        params={"client_id": "hub_\x00", "response_type": "code"},
    )

    assert 400 <= response.status_code < 500, response.text


# --- the guard itself ----------------------------------------------------------------------------


def test_guard_names_the_first_refused_value_by_path() -> None:
    value = load_json('{"a": [1, {"b": 99999999999999999999}]}', max_depth=8)
    with pytest.raises(InputRefused) as refused:
        check_json(value, ("variables",))
    assert refused.value.field == ["variables", "a", "1", "b"]
    assert str(refused.value).startswith("variables.a[1].b is an integer beyond 64 bits")


def test_error_rendering_never_converts_a_huge_integer() -> None:
    """No message renders the number: Python's 4,300-digit int/str limit is never met."""
    with pytest.raises(InputRefused) as refused:
        check_json(load_json("[" + HUGE + "]", max_depth=2))
    assert HUGE[:30] not in str(refused.value)
