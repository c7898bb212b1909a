"""Access through every read channel: a partner token against the operator's (BOLA and
property level, CHECKLIST; DESIGN §5 "one module, every channel")."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from hub.db import Database
from hub.models import Customer, Feedback, Interaction, Purchase
from tests.conftest import Caller, gql, make_caller, token_for
from tests.hub.factories import (
    assign,
    count_rows,
    gid,
    make_customer,
    make_feedback,
    make_interaction,
    make_purchase,
    missing_gid,
)

HIDDEN = ("email", "phone", "lifetimeValue", "traits")
CUSTOMER_FIELDS = "id name company email phone lifetimeValue traits"


@dataclass
class World:
    operator: Caller
    department: Caller
    partner: Caller
    rival: Caller
    mine: Customer  # assigned to the partner
    shared: Customer  # assigned to the partner and to the rival
    theirs: Customer  # assigned to the rival only
    nobody: Customer  # assigned to no one
    feedback: dict[str, Feedback]
    interactions: dict[str, Interaction]
    purchases: dict[str, Purchase]


@pytest.fixture
async def world(db: Database) -> World:
    operator = await make_caller(db, "operator", slug="operator")
    department = await make_caller(db, "department", slug="sales-dept")
    partner = await make_caller(db, "distributor", slug="acme-distribution")
    rival = await make_caller(db, "vendor", slug="rival-vendor")
    mine = await make_customer(db, name="Ada Mine", email="ada@example.com")
    shared = await make_customer(db, name="Sam Shared", email="sam@example.com")
    theirs = await make_customer(db, name="Tom Theirs", email="tom@example.com")
    nobody = await make_customer(db, name="Nia Nobody", email="nia@example.com")
    await assign(db, mine, partner.org, role="reseller")
    await assign(db, shared, partner.org, role="installer")
    await assign(db, shared, rival.org, role="supplier-of-record")
    await assign(db, theirs, rival.org)
    fb = {
        "op-internal": await make_feedback(db, mine, operator.org, text="op-internal"),
        "op-partners": await make_feedback(
            db, mine, operator.org, text="op-partners", visibility="partners"
        ),
        "own-internal": await make_feedback(db, mine, partner.org, text="own-internal"),
        "rival-partners": await make_feedback(
            db, shared, rival.org, text="rival-partners", visibility="partners"
        ),
        "rival-internal": await make_feedback(db, shared, rival.org, text="rival-internal"),
        "theirs-partners": await make_feedback(
            db, theirs, operator.org, text="theirs-partners", visibility="partners"
        ),
        "nobody-partners": await make_feedback(
            db, nobody, operator.org, text="nobody-partners", visibility="partners"
        ),
    }
    interactions = {
        "own": await make_interaction(db, mine, partner.org, summary="own"),
        "op": await make_interaction(db, mine, operator.org, summary="op"),
        "rival-shared": await make_interaction(db, shared, rival.org, summary="rival-shared"),
        "own-shared": await make_interaction(db, shared, partner.org, summary="own-shared"),
    }
    purchases = {
        "own": await make_purchase(db, mine, partner.org, sku="OWN"),
        "op": await make_purchase(db, mine, operator.org, sku="OP"),
        "rival-shared": await make_purchase(db, shared, rival.org, sku="RIVAL"),
    }
    return World(
        operator,
        department,
        partner,
        rival,
        mine,
        shared,
        theirs,
        nobody,
        fb,
        interactions,
        purchases,
    )


def caller_of(world: World, who: str) -> Caller:
    caller: Caller = getattr(world, who)
    return caller


def names(connection: dict[str, Any]) -> set[str]:
    return {edge["node"]["name"] for edge in connection["edges"]}


# --- customers list -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "expected"),
    [
        ("partner", {"Ada Mine", "Sam Shared"}),
        ("rival", {"Sam Shared", "Tom Theirs"}),
        ("operator", {"Ada Mine", "Sam Shared", "Tom Theirs", "Nia Nobody"}),
        ("department", {"Ada Mine", "Sam Shared", "Tom Theirs", "Nia Nobody"}),
    ],
)
async def test_customers_list_and_total_count_are_scoped(
    client: httpx.AsyncClient, world: World, who: str, expected: set[str]
) -> None:
    body = await gql(
        client, caller_of(world, who), "{ customers { totalCount edges { node { name } } } }"
    )
    assert names(body["data"]["customers"]) == expected
    assert body["data"]["customers"]["totalCount"] == len(expected)


# --- hidden fields through every channel ----------------------------------------------

Extract = Callable[[dict[str, Any]], list[dict[str, Any]]]

# (channel, query, variables from the world, the customer objects in the response)
CHANNELS: list[tuple[str, str, Callable[[World], dict[str, Any]], Extract]] = [
    (
        "customers",
        f'{{ customers(filter: {{search: "Ada"}}) {{ edges {{ node {{ {CUSTOMER_FIELDS} }} }} }} }}',
        lambda w: {},
        lambda d: [e["node"] for e in d["customers"]["edges"]],
    ),
    (
        "customer",
        f"query($id: ID!) {{ customer(id: $id) {{ {CUSTOMER_FIELDS} }} }}",
        lambda w: {"id": gid(w.mine)},
        lambda d: [d["customer"]],
    ),
    (
        "node",
        f"query($id: ID!) {{ node(id: $id) {{ ... on Customer {{ {CUSTOMER_FIELDS} }} }} }}",
        lambda w: {"id": gid(w.mine)},
        lambda d: [d["node"]],
    ),
    (
        "nodes",
        f"query($ids: [ID!]!) {{ nodes(ids: $ids) {{ ... on Customer {{ {CUSTOMER_FIELDS} }} }} }}",
        lambda w: {"ids": [gid(w.mine), gid(w.shared)]},
        lambda d: d["nodes"],
    ),
    (
        "_entities",
        "query($r: [_Any!]!) { _entities(representations: $r) "
        f"{{ ... on Customer {{ {CUSTOMER_FIELDS} }} }} }}",
        lambda w: {"r": [{"__typename": "Customer", "id": gid(w.mine)}]},
        lambda d: d["_entities"],
    ),
    (
        "Feedback.customer",
        "{ feedback(first: 50) { edges { node { customer { " + CUSTOMER_FIELDS + " } } } } }",
        lambda w: {},
        lambda d: [e["node"]["customer"] for e in d["feedback"]["edges"]],
    ),
    (
        "_entities Feedback.customer",
        "query($r: [_Any!]!) { _entities(representations: $r) "
        f"{{ ... on Feedback {{ customer {{ {CUSTOMER_FIELDS} }} }} }} }}",
        lambda w: {"r": [{"__typename": "Feedback", "id": gid(w.feedback["op-partners"])}]},
        lambda d: [e["customer"] for e in d["_entities"]],
    ),
]


@pytest.mark.parametrize(
    ("channel", "query", "variables", "extract"), CHANNELS, ids=[c[0] for c in CHANNELS]
)
async def test_partner_never_sees_hidden_customer_fields(
    client: httpx.AsyncClient,
    world: World,
    channel: str,
    query: str,
    variables: Callable[[World], dict[str, Any]],
    extract: Extract,
) -> None:
    body = await gql(client, world.partner, query, variables(world))
    customers = extract(body["data"])
    assert customers, f"{channel} returned no customer"
    for customer in customers:
        assert customer["name"] in {"Ada Mine", "Sam Shared"}
        assert {field: customer[field] for field in HIDDEN} == dict.fromkeys(HIDDEN)


@pytest.mark.parametrize("who", ["operator", "department"])
@pytest.mark.parametrize(
    ("channel", "query", "variables", "extract"), CHANNELS, ids=[c[0] for c in CHANNELS]
)
async def test_staff_see_every_customer_field(
    client: httpx.AsyncClient,
    world: World,
    who: str,
    channel: str,
    query: str,
    variables: Callable[[World], dict[str, Any]],
    extract: Extract,
) -> None:
    body = await gql(client, caller_of(world, who), query, variables(world))
    customers = extract(body["data"])
    assert customers, f"{channel} returned no customer"
    for customer in customers:
        assert customer["email"] is not None
        assert customer["phone"] == "+14155552671"
        assert customer["lifetimeValue"] == "1234.50"
        assert customer["traits"] == {"tier": "gold"}


# --- "not yours" answers exactly like "does not exist" --------------------------------

LOOKUPS = {
    "customer": "query($id: ID!) { customer(id: $id) { id name } }",
    "node": "query($id: ID!) { node(id: $id) { id ... on Customer { name } } }",
    "nodes": "query($id: ID!) { nodes(ids: [$id]) { id ... on Customer { name } } }",
    "_entities": "query($id: _Any!) { _entities(representations: [$id]) "
    "{ ... on Customer { id name } } }",
    "aliases": "query($id: ID!) { a: customer(id: $id) { name } b: node(id: $id) { id } }",
}


def _lookup_variables(channel: str, global_id: str) -> dict[str, Any]:
    if channel == "_entities":
        return {"id": {"__typename": "Customer", "id": global_id}}
    return {"id": global_id}


@pytest.mark.parametrize("channel", list(LOOKUPS))
async def test_unassigned_customer_answers_like_missing_and_garbage_ids(
    client: httpx.AsyncClient, world: World, channel: str
) -> None:
    query = LOOKUPS[channel]
    bodies = {}
    for label, global_id in {
        "unassigned": gid(world.nobody),
        "rival's": gid(world.theirs),
        "missing": missing_gid(),
        "garbage": "not-an-id!",
        "another type's": gid(world.feedback["op-internal"]),
    }.items():
        bodies[label] = await gql(
            client, world.partner, query, _lookup_variables(channel, global_id)
        )
    reference = bodies["missing"]
    assert all(value is None for value in _leaves(reference["data"])), reference
    for label, body in bodies.items():
        assert body == reference, label
    # ...while the operator does see the unassigned customer through the same channel.
    seen = await gql(client, world.operator, query, _lookup_variables(channel, gid(world.nobody)))
    assert seen != reference


def _leaves(data: dict[str, Any]) -> list[Any]:
    values: list[Any] = []
    for value in data.values():
        values.extend(value if isinstance(value, list) else [value])
    return values


@pytest.mark.parametrize("who", ["partner", "rival"])
async def test_nodes_batch_mixes_visible_and_invisible_ids_in_order(
    client: httpx.AsyncClient, world: World, who: str
) -> None:
    ids = [
        gid(world.mine),
        gid(world.nobody),
        "garbage",
        gid(world.theirs),
        gid(world.shared),
        gid(world.feedback["op-partners"]),
        gid(world.feedback["op-internal"]),
        gid(world.interactions["own"]),
        gid(world.purchases["op"]),
    ]
    query = (
        "query($ids: [ID!]!) { nodes(ids: $ids) { __typename id "
        "... on Customer { name } ... on Feedback { text } } }"
    )
    body = await gql(client, caller_of(world, who), query, {"ids": ids})
    got = [None if n is None else n["id"] for n in body["data"]["nodes"]]
    visible = {
        "partner": {
            gid(world.mine),
            gid(world.shared),
            gid(world.feedback["op-partners"]),
            gid(world.interactions["own"]),
        },
        "rival": {gid(world.theirs), gid(world.shared)},
    }[who]
    assert got == [i if i in visible else None for i in ids]


# --- feedback -------------------------------------------------------------------------

FEEDBACK_QUERY = "{ feedback(first: 50) { totalCount edges { node { text } } } }"


@pytest.mark.parametrize(
    ("who", "expected"),
    [
        ("partner", {"op-partners", "own-internal", "rival-partners"}),
        ("rival", {"rival-partners", "rival-internal", "theirs-partners"}),
        (
            "operator",
            {
                "op-internal",
                "op-partners",
                "own-internal",
                "rival-partners",
                "rival-internal",
                "theirs-partners",
                "nobody-partners",
            },
        ),
        (
            "department",
            {
                "op-internal",
                "op-partners",
                "own-internal",
                "rival-partners",
                "rival-internal",
                "theirs-partners",
                "nobody-partners",
            },
        ),
    ],
)
async def test_feedback_connection_follows_visibility_rules(
    client: httpx.AsyncClient, world: World, who: str, expected: set[str]
) -> None:
    body = await gql(client, caller_of(world, who), FEEDBACK_QUERY)
    feedback = body["data"]["feedback"]
    assert {e["node"]["text"] for e in feedback["edges"]} == expected
    assert feedback["totalCount"] == len(expected)


async def test_feedback_filtered_by_a_customer_not_yours_is_empty(
    client: httpx.AsyncClient, world: World
) -> None:
    query = (
        "query($id: ID!) { feedback(filter: {customerId: $id}) "
        "{ totalCount edges { node { text } } } }"
    )
    empty = {"data": {"feedback": {"totalCount": 0, "edges": []}}}
    for customer in (world.nobody, world.theirs):
        assert await gql(client, world.partner, query, {"id": gid(customer)}) == empty
    body = await gql(client, world.partner, query, {"id": gid(world.mine)})
    assert body["data"]["feedback"]["totalCount"] == 2


NESTED = """
query($id: ID!) {
  customer(id: $id) {
    feedback(first: 50) { totalCount edges { node { text organization { slug } } } }
    interactions(first: 50) { totalCount edges { node { summary } } }
    purchases(first: 50) { totalCount edges { node { sku } } }
    partners(first: 50) { totalCount edges { node { role organization { slug } } } }
  }
}
"""


def _nested(body: dict[str, Any]) -> dict[str, set[str]]:
    customer = body["data"]["customer"]
    result = {
        "feedback": {e["node"]["text"] for e in customer["feedback"]["edges"]},
        "interactions": {e["node"]["summary"] for e in customer["interactions"]["edges"]},
        "purchases": {e["node"]["sku"] for e in customer["purchases"]["edges"]},
        "partners": {
            f"{e['node']['organization']['slug']}:{e['node']['role']}"
            for e in customer["partners"]["edges"]
        },
    }
    for name, values in result.items():
        assert customer[name]["totalCount"] == len(values), name
    return result


@pytest.mark.parametrize(
    ("who", "customer", "expected"),
    [
        (
            "partner",
            "mine",
            {
                "feedback": {"op-partners", "own-internal"},
                "interactions": {"own"},
                "purchases": {"OWN"},
                "partners": {"acme-distribution:reseller"},
            },
        ),
        (
            "partner",
            "shared",
            {
                "feedback": {"rival-partners"},
                "interactions": {"own-shared"},
                "purchases": set(),
                "partners": {"acme-distribution:installer"},
            },
        ),
        (
            "rival",
            "shared",
            {
                "feedback": {"rival-partners", "rival-internal"},
                "interactions": {"rival-shared"},
                "purchases": {"RIVAL"},
                "partners": {"rival-vendor:supplier-of-record"},
            },
        ),
        (
            "operator",
            "mine",
            {
                "feedback": {"op-internal", "op-partners", "own-internal"},
                "interactions": {"own", "op"},
                "purchases": {"OWN", "OP"},
                "partners": {"acme-distribution:reseller"},
            },
        ),
        (
            "department",
            "shared",
            {
                "feedback": {"rival-partners", "rival-internal"},
                "interactions": {"rival-shared", "own-shared"},
                "purchases": {"RIVAL"},
                "partners": {"acme-distribution:installer", "rival-vendor:supplier-of-record"},
            },
        ),
    ],
)
async def test_nested_connections_are_scoped_with_their_counts(
    client: httpx.AsyncClient,
    world: World,
    who: str,
    customer: str,
    expected: dict[str, set[str]],
) -> None:
    body = await gql(client, caller_of(world, who), NESTED, {"id": gid(getattr(world, customer))})
    assert _nested(body) == expected


async def test_nested_connections_on_a_list_page_are_scoped_per_customer(
    client: httpx.AsyncClient, world: World
) -> None:
    query = """{ customers { edges { node { name
        feedback { totalCount edges { node { text } } }
        interactions { totalCount edges { node { summary } } }
        partners { totalCount edges { node { organization { slug } } } } } } } }"""
    body = await gql(client, world.partner, query)
    seen = {
        e["node"]["name"]: (
            {f["node"]["text"] for f in e["node"]["feedback"]["edges"]},
            e["node"]["feedback"]["totalCount"],
            {i["node"]["summary"] for i in e["node"]["interactions"]["edges"]},
            e["node"]["interactions"]["totalCount"],
            [p["node"]["organization"]["slug"] for p in e["node"]["partners"]["edges"]],
            e["node"]["partners"]["totalCount"],
        )
        for e in body["data"]["customers"]["edges"]
    }
    assert seen == {
        "Ada Mine": ({"op-partners", "own-internal"}, 2, {"own"}, 1, ["acme-distribution"], 1),
        "Sam Shared": ({"rival-partners"}, 1, {"own-shared"}, 1, ["acme-distribution"], 1),
    }


@pytest.mark.parametrize(
    ("key", "visible"),
    [
        ("op-internal", False),
        ("op-partners", True),
        ("own-internal", True),
        ("rival-partners", True),
        ("rival-internal", False),
        ("theirs-partners", False),
        ("nobody-partners", False),
    ],
)
async def test_feedback_by_id_follows_visibility_rules(
    client: httpx.AsyncClient, world: World, key: str, visible: bool
) -> None:
    feedback_id = gid(world.feedback[key])
    query = """query($id: ID!, $r: [_Any!]!) {
        node(id: $id) { ... on Feedback { text } }
        nodes(ids: [$id]) { ... on Feedback { text } }
        _entities(representations: $r) { ... on Feedback { text } }
    }"""
    variables = {"id": feedback_id, "r": [{"__typename": "Feedback", "id": feedback_id}]}
    body = await gql(client, world.partner, query, variables)
    node = {"text": key} if visible else None
    assert body["data"] == {"node": node, "nodes": [node], "_entities": [node]}
    staff = await gql(client, world.operator, query, variables)
    assert staff["data"]["node"] == {"text": key}


async def test_invisible_feedback_answers_like_missing_feedback(
    client: httpx.AsyncClient, world: World
) -> None:
    query = "query($r: [_Any!]!) { _entities(representations: $r) { ... on Feedback { text } } }"
    bodies = [
        await gql(client, world.partner, query, {"r": [{"__typename": "Feedback", "id": i}]})
        for i in (gid(world.feedback["op-internal"]), missing_gid("Feedback"), "garbage")
    ]
    assert bodies[0] == bodies[1] == bodies[2] == {"data": {"_entities": [None]}}


@pytest.mark.parametrize(
    ("kind", "key", "visible"),
    [
        ("interactions", "own", True),
        ("interactions", "op", False),
        ("interactions", "rival-shared", False),
        ("interactions", "own-shared", True),
        ("purchases", "own", True),
        ("purchases", "op", False),
        ("purchases", "rival-shared", False),
    ],
)
async def test_activity_of_other_organizations_is_invisible_by_id(
    client: httpx.AsyncClient, world: World, kind: str, key: str, visible: bool
) -> None:
    row = getattr(world, kind)[key]
    query = "query($id: ID!) { node(id: $id) { id } }"
    body = await gql(client, world.partner, query, {"id": gid(row)})
    assert body["data"]["node"] == ({"id": gid(row)} if visible else None)


# --- scopes ---------------------------------------------------------------------------

NO_FEEDBACK_READ = ["customers:read", "customers:write", "feedback:write"]


@pytest.mark.parametrize("kind", ["operator", "distributor"])
@pytest.mark.parametrize(
    "query",
    [
        "{ feedback { totalCount } }",
        "{ feedback { edges { node { text } } } }",
        "{ customers { edges { node { feedback { totalCount } } } } }",
    ],
)
async def test_feedback_needs_the_feedback_read_scope(
    client: httpx.AsyncClient, world: World, db: Database, kind: str, query: str
) -> None:
    caller = await make_caller(db, kind, scopes=NO_FEEDBACK_READ)
    await assign(db, world.mine, caller.org)
    body = await gql(client, caller, query, expect_errors=True)
    assert body["errors"], body
    assert {e["extensions"]["code"] for e in body["errors"]} == {"FORBIDDEN"}
    assert all("feedback:read" in e["message"] for e in body["errors"])


async def test_customers_still_readable_without_feedback_scope(
    client: httpx.AsyncClient, world: World, db: Database
) -> None:
    caller = await make_caller(db, "operator", scopes=["customers:read"])
    body = await gql(client, caller, "{ customers { totalCount } }")
    assert body["data"]["customers"]["totalCount"] == 4


async def test_create_customer_needs_the_customers_write_scope(
    client: httpx.AsyncClient, world: World, db: Database
) -> None:
    caller = await make_caller(db, "operator", scopes=["customers:read", "feedback:read"])
    before = await count_rows(db, Customer)
    body = await gql(
        client,
        caller,
        'mutation { createCustomer(input: {name: "Eve"}) { customer { id } userErrors { code } } }',
        expect_errors=True,
    )
    assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"]
    assert body["data"] is None
    assert await count_rows(db, Customer) == before


async def test_scope_narrowed_at_the_token_endpoint_is_enforced(
    client: httpx.AsyncClient, world: World
) -> None:
    await token_for(client, world.operator, scope="customers:read")
    body = await gql(client, world.operator, "{ feedback { totalCount } }", expect_errors=True)
    assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"]
