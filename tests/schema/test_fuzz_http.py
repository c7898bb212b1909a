"""HTTP-level fuzzing: random and hostile requests at /graphql and /oauth/token never get a
5xx or an "Internal server error", and every answer is JSON.

Requests go through the in-process app (conftest's ``client``) with a real operator token.
Hypothesis runs in a worker thread and hands each request to the test's event loop, so it
can shrink a failing request to its smallest form. ``HUB_FUZZ_EXAMPLES`` sets the examples
per test and backend (default 300: about 15 s per backend).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import quote_from_bytes

import httpx
import pytest
from graphql import (
    GraphQLEnumType,
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    GraphQLUnionType,
)
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from hub.db import Database
from schema import build_schema
from tests.conftest import ALL_SCOPES, Caller, gql, make_caller, make_settings, token_for

EXAMPLES = int(os.environ.get("HUB_FUZZ_EXAMPLES", "300"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    # The app and the token are shared by all examples on purpose: nothing is reset.
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
SCHEMA: GraphQLSchema = build_schema(make_settings("sqlite+aiosqlite://"))._schema

# --- values ----------------------------------------------------------------------------------

HOSTILE_CHARACTERS = ["\x00", "\ud800", "\udfff", "\ud83d", "\ufeff", "\u2028", "\\", '"', "😀"]
benign_texts = st.text(st.characters(exclude_characters="\x00"), max_size=12)
hostile_texts = st.text(st.characters() | st.sampled_from(HOSTILE_CHARACTERS), max_size=12)
texts = benign_texts | hostile_texts | st.sampled_from(["%00", "😀", "a" * 300])


class RawJSON(str):
    """JSON text written as is: numbers ``json.dumps`` cannot write (5,000 digits, 1e999)
    and nesting it would recurse on."""


def deep(levels: int) -> RawJSON:
    return RawJSON('{"a":' * levels + "1" + "}" * levels)


HOSTILE_INTS = [2**31, 2**53 + 1, 2**63 - 1, 2**63, -(2**63) - 1, 10**25, -(10**40)]
huge_numbers = st.builds(
    lambda digits, sign: RawJSON(sign + "9" * digits),
    st.integers(20, 50_000),
    st.sampled_from(["", "-"]),
) | st.sampled_from([RawJSON("1e400"), RawJSON("-1E999999"), RawJSON("1" + "0" * 4_301)])
integers = st.integers(-(2**70), 2**70) | st.sampled_from(HOSTILE_INTS) | huge_numbers
small_integers = st.integers(-5, 200)
floats = st.floats(allow_nan=True, allow_infinity=True)
scalars = st.none() | st.booleans() | integers | floats | texts
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(texts, children, max_size=4),
    max_leaves=12,
)
benign_json = st.recursive(
    st.none() | st.booleans() | small_integers | benign_texts,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(benign_texts, children, max_size=3)
    ),
    max_leaves=6,
)
# Now and then nested past the limit (64 by default), or far past it.
json_values = json_values | json_values | json_values | st.sampled_from([60, 64, 15_000]).map(deep)


def to_json(value: Any) -> str:
    """JSON text as a client might send it: NaN/Infinity tokens, lone surrogate escapes,
    :class:`RawJSON` as written."""
    raws: list[str] = []

    def swap(item: Any) -> Any:
        if isinstance(item, RawJSON):
            raws.append(item)
            return f"\x01raw{len(raws) - 1}\x01"
        if isinstance(item, dict):
            return {key: swap(child) for key, child in item.items()}
        if isinstance(item, list):
            return [swap(child) for child in item]
        return item

    text = json.dumps(swap(value), allow_nan=True)
    for index, raw in enumerate(raws):
        text = text.replace(json.dumps(f"\x01raw{index}\x01"), raw, 1)
    return text


# --- GraphQL documents from the real schema ----------------------------------------------------


class EnumValue(str):
    """An enum value: bare in a literal, a string in variables."""


class Operation:
    """The variables an operation under construction declares, with their values.
    A ``hostile`` operation draws from every value; the others only from values the
    hub accepts, so that they run (half of each)."""

    def __init__(self, ids: list[str], *, hostile: bool) -> None:
        self.ids = ids
        self.hostile = hostile
        self.definitions: list[str] = []
        self.values: dict[str, Any] = {}

    def declare(self, type_: GraphQLInputType, value: Any) -> str:
        name = f"v{len(self.definitions)}"
        self.definitions.append(f"${name}: {type_}")
        self.values[name] = value
        return f"${name}"


# Values the hub validates by name: mostly valid ones, so writes get as far as the database.
KNOWN = {
    "email": st.sampled_from(["ana@example.com", "b@example.org"]),
    "phone": st.sampled_from(["+4915112345678", "030 1234567"]),
    "country": st.sampled_from(["DE", "FR", "us"]),
    "currency": st.sampled_from(["EUR", "USD"]),
    "slug": st.sampled_from(["operator", "acme"]),
    "organization": st.sampled_from(["operator", "acme"]),
}

DATES = ["2024-02-29T12:00:00+00:00", "2024-01-01", "9999-12-31T23:59:59Z", "0000-00-00"]
DECIMALS = ["12.50", "-0.001", "1e12", "1e999", "NaN", "0." + "1" * 60]


def scalar_values(name: str, operation: Operation) -> st.SearchStrategy[Any]:
    hostile = operation.hostile
    strings = texts if hostile else benign_texts
    if name == "Int":
        return (
            small_integers | small_integers | small_integers | integers
            if hostile
            else small_integers
        )
    if name == "Float":
        return floats if hostile else st.floats(-1e6, 1e6)
    if name == "Boolean":
        return st.booleans()
    if name == "ID":
        return st.sampled_from(operation.ids) | strings if operation.ids else strings
    if name == "JSON":
        return json_values if hostile else benign_json
    if name == "DateTime":
        return st.sampled_from(DATES) | strings
    if name == "Decimal":
        return (
            st.sampled_from(DECIMALS) | floats | integers
            if hostile
            else st.sampled_from(DECIMALS[:3])
        )
    return strings


def some(names: list[str], most: int) -> st.SearchStrategy[list[str]]:
    """A few distinct ``names`` (none when there are none)."""
    return st.lists(st.sampled_from(names), max_size=most, unique=True) if names else st.just([])


@st.composite
def input_values(
    draw: st.DrawFn, type_: GraphQLInputType, operation: Operation, depth: int = 0
) -> Any:
    """A value for ``type_``: mostly of its shape (hostile inside), now and then anything."""
    if depth > 4 or (operation.hostile and draw(st.integers(0, 19)) == 0):
        return draw(json_values)
    if isinstance(type_, GraphQLNonNull):
        type_ = type_.of_type
    elif draw(st.integers(0, 9)) == 0:
        return None
    if isinstance(type_, GraphQLList):
        return draw(st.lists(input_values(type_.of_type, operation, depth + 1), max_size=3))
    if isinstance(type_, GraphQLEnumType):
        return EnumValue(draw(st.sampled_from(sorted(type_.values))))
    if isinstance(type_, GraphQLInputObjectType):
        required = [n for n, f in type_.fields.items() if isinstance(f.type, GraphQLNonNull)]
        optional = sorted(set(type_.fields) - set(required))
        names = required + draw(some(optional, 4))
        return {n: draw(field_values(n, type_.fields[n].type, operation, depth)) for n in names}
    assert isinstance(type_, GraphQLScalarType)
    return draw(scalar_values(type_.name, operation))


def field_values(
    name: str, type_: GraphQLInputType, operation: Operation, depth: int
) -> st.SearchStrategy[Any]:
    values = input_values(type_, operation, depth + 1)
    known = KNOWN.get(name)
    return values if known is None else known | known | values


def literal(value: Any) -> str:
    """``value`` as a GraphQL literal. JSON string syntax is GraphQL's, escapes included
    ("\\u0000", "\\ud800"); object keys that are not names are renamed."""
    if isinstance(value, EnumValue):
        return str(value)
    if isinstance(value, RawJSON):
        return value.replace('"a":', "a: ")
    if isinstance(value, dict):
        parts = [
            f"{k if k.isidentifier() and k.isascii() else f'k{i}'}: {literal(v)}"
            for i, (k, v) in enumerate(value.items())
        ]
        return "{" + ", ".join(parts) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(literal(v) for v in value) + "]"
    if isinstance(value, float) and value != value:
        return "NaN"  # not GraphQL: a syntax error
    if isinstance(value, float) and abs(value) == float("inf"):
        return "-1e999" if value < 0 else "1e999"
    return json.dumps(value)


@st.composite
def arguments(draw: st.DrawFn, field: GraphQLField, operation: Operation) -> str:
    required = [n for n, a in field.args.items() if isinstance(a.type, GraphQLNonNull)]
    optional = sorted(set(field.args) - set(required))
    names = required + draw(some(optional, 3))
    parts = []
    for name in names:
        type_ = field.args[name].type
        value = draw(input_values(type_, operation))
        as_variable = draw(st.booleans())
        parts.append(
            f"{name}: {operation.declare(type_, value) if as_variable else literal(value)}"
        )
    return f"({', '.join(parts)})" if parts else ""


@st.composite
def selections(draw: st.DrawFn, type_: GraphQLNamedType, operation: Operation, depth: int) -> str:
    if isinstance(type_, GraphQLUnionType) or (
        depth > 3 and not isinstance(type_, GraphQLScalarType | GraphQLEnumType)
    ):
        return "{ __typename }"
    if not isinstance(type_, GraphQLObjectType | GraphQLInterfaceType):
        return ""
    names = draw(st.lists(st.sampled_from(sorted(type_.fields)), min_size=1, max_size=4))
    parts = []
    for index, name in enumerate(names):
        field = type_.fields[name]
        args = draw(arguments(field, operation))
        below = draw(selections(_named(field.type), operation, depth + 1))
        # A repeated field gets an alias: its arguments may differ.
        alias = f"f{index}: " if name in names[:index] else ""
        parts.append(f"{alias}{name}{args} {below}")
    return "{ " + " ".join(parts) + " }"


def _named(type_: Any) -> GraphQLNamedType:
    while isinstance(type_, GraphQLNonNull | GraphQLList):
        type_ = type_.of_type
    named: GraphQLNamedType = type_
    return named


@st.composite
def operations(draw: st.DrawFn, ids: list[str]) -> tuple[str, dict[str, Any]]:
    """An operation over the real schema (mostly valid) and its variables, or junk text."""
    if draw(st.integers(0, 19)) == 0:
        junk = texts | st.sampled_from(["{", "query {", "{ __schema { types { name } } }"])
        return draw(junk), draw(st.dictionaries(texts, json_values, max_size=2))
    operation = Operation(ids, hostile=draw(st.booleans()))
    root = draw(st.sampled_from([SCHEMA.query_type, SCHEMA.mutation_type]))
    assert root is not None
    keyword = "query" if root is SCHEMA.query_type else "mutation"
    body = draw(selections(root, operation, 0))
    definitions = f"({', '.join(operation.definitions)})" if operation.definitions else ""
    return f"{keyword} {definitions} {body}", operation.values


documents = operations([]).map(lambda operation: operation[0])


# --- running hypothesis in a thread against the test's loop -----------------------------------


Send = Callable[[Callable[[], Coroutine[Any, Any, httpx.Response]]], httpx.Response]


async def fuzz(run: Callable[[Send], None]) -> None:
    """Run the hypothesis test ``run`` in a thread; its requests run on this loop."""
    loop = asyncio.get_running_loop()

    def send(request: Callable[[], Coroutine[Any, Any, httpx.Response]]) -> httpx.Response:
        return asyncio.run_coroutine_threadsafe(request(), loop).result(timeout=60)

    await asyncio.to_thread(run, send)


def assert_answered(response: httpx.Response, *, json_body: bool = True) -> None:
    """No 5xx, a JSON body, and no "Internal server error" inside a 200 either."""
    assert response.status_code < 500, (response.status_code, response.text)
    if not json_body:
        return
    body = response.json()
    errors = body.get("errors") if isinstance(body, dict) else None
    for error in errors or ():
        assert error["extensions"]["code"] != "INTERNAL_SERVER_ERROR", response.text


@pytest.fixture
async def caller(client: httpx.AsyncClient, db: Database) -> Caller:
    """An operator administrator: every field and mutation of the schema is open to it."""
    operator = await make_caller(db, "operator", scopes=[*ALL_SCOPES, "hub:admin"])
    await token_for(client, operator)
    return operator


@pytest.fixture
async def ids(client: httpx.AsyncClient, caller: Caller) -> list[str]:
    """Global ids of a real customer and feedback, so some lookups and updates find rows."""
    created = await gql(client, caller, CREATE, {"input": {"name": "Fuzz Target"}})
    customer = created["data"]["createCustomer"]["customer"]["id"]
    submitted = await gql(
        client,
        caller,
        SUBMIT,
        {"input": {"customerId": customer, "channel": "EMAIL", "kind": "PRAISE", "text": "ok"}},
    )
    return [customer, submitted["data"]["submitFeedback"]["feedback"]["id"]]


CREATE = "mutation ($input: CustomerInput!) { createCustomer(input: $input) { customer { id } } }"
SUBMIT = (
    "mutation ($input: SubmitFeedbackInput!) { submitFeedback(input: $input) { feedback { id } } }"
)


# --- /graphql ------------------------------------------------------------------------------


async def test_graphql_operations_never_5xx(
    client: httpx.AsyncClient, caller: Caller, ids: list[str]
) -> None:
    """Operations over the real schema, with hostile values in literals and variables."""
    auth = {"Authorization": f"Bearer {caller.token}", "Content-Type": "application/json"}

    def run(send: Send) -> None:
        @FUZZ
        @given(
            operation=operations(ids),
            extra=st.just({})
            | st.dictionaries(st.sampled_from(["operationName", "extensions"]), json_values),
            accept=st.sampled_from(["application/graphql-response+json", "application/json"]),
        )
        def check(operation: tuple[str, Any], extra: dict[str, Any], accept: str) -> None:
            query, variables = operation
            content = to_json({"query": query, "variables": variables, **extra}).encode()
            response = send(
                lambda: client.post("/graphql", content=content, headers={**auth, "Accept": accept})
            )
            assert_answered(response)

        check()

    await fuzz(run)


CONTENT_TYPES = [
    "application/json",
    "application/json; charset=utf-16",
    "APPLICATION/JSON;",
    "application/graphql",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "text/plain",
    "",
    "\x7f",
]


@st.composite
def raw_bodies(draw: st.DrawFn) -> bytes:
    """Bytes that are sometimes JSON: truncated, deep, re-encoded, or random."""
    kind = draw(st.integers(0, 4))
    if kind == 0:
        return draw(st.binary(max_size=64))
    if kind == 1:  # deep, and maybe not closed
        depth = draw(st.sampled_from([63, 64, 65, 1_000, 15_000]) | st.integers(1, 20_000))
        opener, closer = draw(st.sampled_from([("[", "]"), ('{"a":', "}")]))
        closers = closer * draw(st.sampled_from([depth, depth, 0]) | st.integers(0, depth))
        text = f'{{"query": "{{ me {{ clientId }} }}", "variables": {{"x": {opener * depth}1'
        return f"{text}{closers}}}}}".encode()
    text = to_json(draw(json_values | st.fixed_dictionaries({"query": documents})))
    if kind == 2:
        return text.encode("utf-16" if draw(st.booleans()) else "utf-32")
    if kind == 3:
        return text.encode()[: draw(st.integers(0, len(text)))]
    return text.encode("utf-8", "surrogatepass")  # raw surrogate bytes: not UTF-8


async def test_graphql_raw_requests_never_5xx(client: httpx.AsyncClient, caller: Caller) -> None:
    """Random bytes, content types, accept headers, methods and query strings."""

    def run(send: Send) -> None:
        @FUZZ
        @given(
            method=st.sampled_from(["GET", "POST", "GET", "POST", "GET", "POST", "PUT", "DELETE"]),
            content=raw_bodies(),
            content_type=st.sampled_from(CONTENT_TYPES),
            accept=st.sampled_from(["", "*/*", "text/html", "application/json;q=0", "a/b;q=x"])
            | st.text(st.characters(codec="ascii", min_codepoint=32), max_size=20),
            params=st.dictionaries(
                st.sampled_from(["query", "variables", "operationName", "extensions", "x"]),
                texts | documents | json_values.map(to_json),
                max_size=3,
            ),
            idempotency_key=st.none() | st.text(st.characters(codec="latin-1"), max_size=8),
        )
        def check(
            method: str,
            content: bytes,
            content_type: str,
            accept: str,
            params: dict[str, str],
            idempotency_key: str | None,
        ) -> None:
            headers = {"Authorization": f"Bearer {caller.token}", "Accept": accept}
            if content_type:
                headers["Content-Type"] = content_type
            if idempotency_key is not None:
                headers["Idempotency-Key"] = idempotency_key
            # Bytes: header values as sent on the wire (latin-1), not only ASCII.
            raw_headers = {k.encode(): v.encode("latin-1") for k, v in headers.items()}
            query = urlencoded(list(params.items()))
            assume(len(query) < 60_000)  # httpx's own limit on a URL
            response = send(
                lambda: client.request(
                    method,
                    f"/graphql?{query}",
                    content=None if method == "GET" else content,
                    headers=raw_headers,
                )
            )
            # Other methods too: the endpoint answers them 405 in JSON.
            assert_answered(response, json_body=True)

        check()

    await fuzz(run)


# --- /oauth/token ------------------------------------------------------------------------------

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
FORM_NAMES = [
    "grant_type",
    "client_id",
    "client_secret",
    "scope",
    "resource",
    "client_assertion",
    "client_assertion_type",
    "code",
    "code_verifier",
    "redirect_uri",
    "refresh_token",
]


def urlencoded(pairs: list[tuple[str, str]]) -> str:
    """``name=value&...`` percent-encoding lone surrogates too (``urlencode`` cannot)."""
    return "&".join(f"{_quoted(name)}={_quoted(value)}" for name, value in pairs)


def _quoted(text: str) -> str:
    return quote_from_bytes(text.encode("utf-8", "surrogatepass"))


async def test_token_endpoint_never_5xx(client: httpx.AsyncClient, caller: Caller) -> None:
    """Random forms and credentials, around the real client's id and secret."""
    known = st.sampled_from(
        [
            caller.client_id,
            caller.secret,
            "client_credentials",
            "authorization_code",
            "refresh_token",
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "customers:read",
            "a.b.c",
        ]
    )
    values = texts | known
    credentials = texts | known  # NUL included: such a client id is simply unknown

    def run(send: Send) -> None:
        @FUZZ
        @given(
            pairs=st.lists(st.tuples(st.sampled_from(FORM_NAMES) | texts, values), max_size=5),
            raw=st.none() | st.binary(max_size=40),
            basic=st.none()
            | st.tuples(credentials, credentials).map(lambda p: f"{p[0]}:{p[1]}")
            | st.sampled_from([f"{caller.client_id}:{caller.secret}", "x", ":"]),
            content_type=st.sampled_from([FORM, FORM, FORM, f"{FORM}; charset=latin-1", JSON, ""]),
        )
        def check(
            pairs: list[tuple[str, str]], raw: bytes | None, basic: str | None, content_type: str
        ) -> None:
            headers = {"Content-Type": content_type}
            if basic is not None:
                encoded = base64.b64encode(basic.encode("utf-8", "surrogatepass")).decode()
                headers["Authorization"] = f"Basic {encoded}"
            content = urlencoded(pairs).encode() if raw is None else raw
            response = send(lambda: client.post("/oauth/token", content=content, headers=headers))
            assert_answered(response)

        check()

    await fuzz(run)
