"""Access through every read channel under the sharing policy in force (the default,
``policies/defaults/default.yaml``, with the operator's guardrails): each caller against
the others (BOLA and property level, CHECKLIST; DESIGN §4, §5 "one module, every channel").

The world: a distributor (``partner``) and its rival distributor, a vendor, two suppliers
with product attributes, the operator and three departments by role (sales, marketing,
none). Customers differ in partner-sharing and marketing consent, so every rule of the
default policy decides some row: a partner sees its assigned *and* consenting customers
(contacts masked), a supplier the feedback on its products (the customer a pseudonym),
marketing the contacts of those who opted in (withheld elsewhere), a vendor nothing.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from hub.access import access
from hub.db import Database
from hub.models import Customer, Feedback, Interaction, Purchase
from policies.masks import last4, partial_email, pseudonym
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

GRAPHQL_RESPONSE = "application/graphql-response+json"
ALL_NAMES = {"Ada Mine", "Sam Shared", "Tom Theirs", "Nia Nobody", "Pia Private"}
# Who sees which customers (the policy's rows), by caller.
VISIBLE_CUSTOMERS = {
    "partner": {"Ada Mine", "Sam Shared"},  # assigned and consenting (not Pia: no consent)
    "rival": {"Sam Shared", "Tom Theirs"},
    "operator": ALL_NAMES,
    "sales": ALL_NAMES,
    "marketing": ALL_NAMES,
    "department": ALL_NAMES,
}
MARKETING_OPT_IN = {"Ada Mine", "Tom Theirs"}
# Never shown to a partner (a guardrail) nor to a department without the sales role.
NEVER_FOR_PARTNERS = ("lifetimeValue", "traits")
CUSTOMER_FIELDS = "__typename id name company email phone lifetimeValue traits"


@dataclass
class World:
    operator: Caller
    sales: Caller  # department, roles: sales
    marketing: Caller  # department, roles: marketing
    department: Caller  # department without a role
    partner: Caller  # distributor
    rival: Caller  # another distributor
    supplier: Caller  # products: widget
    other_supplier: Caller  # products: widget, gizmo
    vendor: Caller
    mine: Customer  # assigned to the partner, consenting, opted in to marketing
    shared: Customer  # assigned to the partner and the rival, consenting
    theirs: Customer  # assigned to the rival only, consenting, opted in to marketing
    nobody: Customer  # assigned to no one, consenting
    private: Customer  # assigned to the partner, NOT consenting to partner sharing
    feedback: dict[str, Feedback]
    interactions: dict[str, Interaction]
    purchases: dict[str, Purchase]

    def customer_named(self, name: str) -> Customer:
        customers = (self.mine, self.shared, self.theirs, self.nobody, self.private)
        return next(c for c in customers if c.name == name)


@pytest.fixture
async def world(db: Database) -> World:
    operator = await make_caller(db, "operator", slug="operator")
    sales = await make_caller(db, "department", slug="sales-dept", attributes={"roles": ["sales"]})
    marketing = await make_caller(
        db, "department", slug="marketing-dept", attributes={"roles": ["marketing"]}
    )
    department = await make_caller(db, "department", slug="plain-dept")
    partner = await make_caller(db, "distributor", slug="acme-distribution")
    rival = await make_caller(db, "distributor", slug="rival-distribution")
    supplier = await make_caller(
        db, "supplier", slug="widget-supply", attributes={"products": ["widget"]}
    )
    other_supplier = await make_caller(
        db, "supplier", slug="gizmo-supply", attributes={"products": ["widget", "gizmo"]}
    )
    vendor = await make_caller(db, "vendor", slug="quiet-vendor")
    mine = await make_customer(
        db,
        name="Ada Mine",
        email="ada@example.com",
        phone="+14155550101",
        consent_share_with_partners=True,
        consent_marketing_opt_in=True,
    )
    shared = await make_customer(
        db,
        name="Sam Shared",
        email="sam.shared@example.org",
        phone="+33 6 12 34 56 78",
        consent_share_with_partners=True,
        traits={"tier": "silver"},
    )
    theirs = await make_customer(
        db,
        name="Tom Theirs",
        email="tom@example.net",
        phone="+442071838750",
        consent_share_with_partners=True,
        consent_marketing_opt_in=True,
    )
    nobody = await make_customer(
        db,
        name="Nia Nobody",
        email="nia@example.com",
        phone="+4930901820",
        consent_share_with_partners=True,
    )
    private = await make_customer(
        db,
        name="Pia Private",
        email="pia@example.com",
        phone="+14155559999",
        consent_share_with_partners=False,
    )
    await assign(db, mine, partner.org, role="reseller")
    await assign(db, shared, partner.org, role="installer")
    await assign(db, shared, rival.org, role="supplier-of-record")
    await assign(db, theirs, rival.org)
    await assign(db, private, partner.org, role="reseller")

    async def fb(customer: Customer, caller: Caller, key: str, **values: Any) -> Feedback:
        return await make_feedback(db, customer, caller.org, text=key, **values)

    feedback = {
        "op-internal": await fb(mine, operator, "op-internal", product="widget"),
        "op-partners": await fb(
            mine, operator, "op-partners", visibility="partners", product="widget"
        ),
        "own-internal": await fb(mine, partner, "own-internal", kind="complaint"),
        "sales-partners": await fb(
            mine, sales, "sales-partners", visibility="partners", product="gizmo"
        ),
        "rival-partners": await fb(
            shared, rival, "rival-partners", visibility="partners", product="widget"
        ),
        "rival-internal": await fb(shared, rival, "rival-internal"),
        "marketing-own": await fb(shared, marketing, "marketing-own"),
        "theirs-partners": await fb(
            theirs, operator, "theirs-partners", visibility="partners", product="widget"
        ),
        "nobody-partners": await fb(nobody, operator, "nobody-partners", visibility="partners"),
        "private-partners": await fb(
            private, operator, "private-partners", visibility="partners", product="widget"
        ),
        "private-own": await fb(
            private, partner, "private-own", kind="complaint", product="widget"
        ),
    }
    interactions = {
        "own": await make_interaction(db, mine, partner.org, summary="own"),
        "op": await make_interaction(db, mine, operator.org, summary="op"),
        "sales-own": await make_interaction(db, mine, sales.org, summary="sales-own"),
        "rival-shared": await make_interaction(db, shared, rival.org, summary="rival-shared"),
        "own-shared": await make_interaction(db, shared, partner.org, summary="own-shared"),
        "marketing-own": await make_interaction(db, shared, marketing.org, summary="marketing-own"),
        "own-private": await make_interaction(db, private, partner.org, summary="own-private"),
    }
    purchases = {
        "own": await make_purchase(db, mine, partner.org, sku="OWN"),
        "op": await make_purchase(db, mine, operator.org, sku="OP"),
        "rival-shared": await make_purchase(db, shared, rival.org, sku="RIVAL"),
        "private": await make_purchase(db, private, operator.org, sku="PRIV"),
    }
    return World(
        operator,
        sales,
        marketing,
        department,
        partner,
        rival,
        supplier,
        other_supplier,
        vendor,
        mine,
        shared,
        theirs,
        nobody,
        private,
        feedback,
        interactions,
        purchases,
    )


def caller_of(world: World, who: str) -> Caller:
    caller: Caller = getattr(world, who)
    return caller


def names(connection: dict[str, Any]) -> set[str]:
    return {edge["node"]["name"] for edge in connection["edges"]}


def texts(connection: dict[str, Any]) -> set[str]:
    return {edge["node"]["text"] for edge in connection["edges"]}


async def post(
    http: httpx.AsyncClient, caller: Caller, query: str, variables: dict[str, Any] | None = None
) -> httpx.Response:
    """The raw HTTP answer (status, headers, exact body) to an operation."""
    token = caller.token or await token_for(http, caller)
    return await http.post(
        "/graphql",
        json={"query": query, "variables": variables or {}},
        headers={"Authorization": f"Bearer {token}", "Accept": GRAPHQL_RESPONSE},
    )


async def type_fields(http: httpx.AsyncClient, caller: Caller, type_name: str) -> set[str] | None:
    """The fields of ``type_name`` in the caller's schema (None: no such type there)."""
    body = await gql(
        http,
        caller,
        "query($n: String!) { __type(name: $n) { fields { name } } }",
        {"n": type_name},
    )
    found = body["data"]["__type"]
    return None if found is None else {field["name"] for field in found["fields"]}


# --- customers list and totalCount ----------------------------------------------------


@pytest.mark.parametrize("who", list(VISIBLE_CUSTOMERS))
async def test_customers_list_and_total_count_are_scoped(
    client: httpx.AsyncClient, world: World, who: str
) -> None:
    body = await gql(
        client,
        caller_of(world, who),
        "{ customers(first: 50) { totalCount edges { node { name } } } }",
    )
    expected = VISIBLE_CUSTOMERS[who]
    assert names(body["data"]["customers"]) == expected
    assert body["data"]["customers"]["totalCount"] == len(expected)


async def test_searching_a_non_consenting_customer_answers_like_a_missing_one(
    client: httpx.AsyncClient, world: World
) -> None:
    query = (
        "query($s: String!) { customers(filter: {search: $s}) "
        "{ totalCount edges { node { name } } } }"
    )
    empty = {"data": {"customers": {"totalCount": 0, "edges": []}}}
    for search in ("Pia", "Nia", "Tom", "Nobody-By-That-Name"):
        assert await gql(client, world.partner, query, {"s": search}) == empty, search
    found = await gql(client, world.partner, query, {"s": "Ada"})
    assert names(found["data"]["customers"]) == {"Ada Mine"}
    staff = await gql(client, world.operator, query, {"s": "Pia"})
    assert names(staff["data"]["customers"]) == {"Pia Private"}


def _cursor_values(body: dict[str, Any]) -> list[Any]:
    """Everything the cursors of a response carry (they are opaque only by convention)."""
    values: list[Any] = []

    def walk(data: Any) -> None:
        if isinstance(data, dict):
            for key, value in data.items():
                if key in ("cursor", "endCursor", "startCursor") and isinstance(value, str):
                    padded = value + "=" * (-len(value) % 4)
                    values.extend(json.loads(base64.urlsafe_b64decode(padded)))
                else:
                    walk(value)
        elif isinstance(data, list):
            for value in data:
                walk(value)

    walk(body.get("data"))
    return values


ORDERED = """query($field: CustomerOrderField!) {
  customers(orderBy: {field: $field}) {
    edges { cursor node { name } } pageInfo { endCursor }
  }
}"""


async def test_partner_cannot_order_by_a_field_it_does_not_see(
    client: httpx.AsyncClient, world: World
) -> None:
    # createdAt is not in a distributor's schema, nor the order value naming it: ordering
    # by it would reveal it (the order, and the values themselves in the cursors). README
    # "Sharing policies": "filtering or ordering by a field it does not see in clear is
    # refused". The value is refused exactly like one that does not exist.
    assert "createdAt" not in (await type_fields(client, world.partner, "Customer") or set())
    created = {c.created_at.isoformat() for c in (world.mine, world.shared)}
    body = await gql(client, world.partner, ORDERED, {"field": "CREATED_AT"}, expect_errors=True)
    assert not created & {str(v) for v in _cursor_values(body)}, "created_at leaked in cursors"
    assert body.get("data") is None
    unknown = await gql(client, world.partner, ORDERED, {"field": "CREATED_AX"}, expect_errors=True)
    assert json.dumps(body) == json.dumps(unknown).replace("CREATED_AX", "CREATED_AT")
    assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_USER_INPUT"]
    # Fields it sees in clear order as asked; staff order by anything.
    for field in ("NAME", "UPDATED_AT"):
        ordered = await gql(client, world.partner, ORDERED, {"field": field})
        assert names(ordered["data"]["customers"]) == {"Ada Mine", "Sam Shared"}
    staff = await gql(client, world.operator, ORDERED, {"field": "CREATED_AT"})
    assert [e["node"]["name"] for e in staff["data"]["customers"]["edges"]] == [
        "Ada Mine",
        "Sam Shared",
        "Tom Theirs",
        "Nia Nobody",
        "Pia Private",
    ]


# --- customer fields through every channel ----------------------------------------------


def _lookup(root: str) -> str:
    """Two aliased single-id lookups (a: mine, b: shared) through ``root``."""
    inner = "{ FIELDS }" if root == "customer" else "{ ... on Customer { FIELDS } }"
    return f"query($a: ID!, $b: ID!) {{ a: {root}(id: $a) {inner} b: {root}(id: $b) {inner} }}"


def _both(world: World, who: str) -> dict[str, Any]:
    return {"a": gid(world.mine), "b": gid(world.shared)}


def _feedback_seen_by(world: World, who: str) -> Feedback:
    """A feedback row the caller sees (departments see only their own)."""
    return world.feedback["marketing-own" if who == "marketing" else "sales-partners"]


FEEDBACK_CUSTOMERS = {
    "partner": {"Ada Mine", "Sam Shared"},
    "operator": ALL_NAMES,
    "sales": {"Ada Mine"},
    "marketing": {"Sam Shared"},
}

# (channel, query with FIELDS for the customer fields, variables, the customers answered)
Channel = tuple[str, str, Callable[[World, str], dict[str, Any]], Callable[[str], set[str]]]
CHANNELS: list[Channel] = [
    (
        "customers",
        "{ customers(first: 50) { totalCount edges { node { FIELDS } } } }",
        lambda w, who: {},
        lambda who: VISIBLE_CUSTOMERS[who],
    ),
    ("customer", _lookup("customer"), _both, lambda who: {"Ada Mine", "Sam Shared"}),
    ("node", _lookup("node"), _both, lambda who: {"Ada Mine", "Sam Shared"}),
    (
        "nodes",
        "query($ids: [ID!]!) { nodes(ids: $ids) { ... on Customer { FIELDS } } }",
        lambda w, who: {"ids": [gid(w.mine), gid(w.shared)]},
        lambda who: {"Ada Mine", "Sam Shared"},
    ),
    (
        "_entities",
        "query($r: [_Any!]!) { _entities(representations: $r) { ... on Customer { FIELDS } } }",
        lambda w, who: {
            "r": [
                {"__typename": "Customer", "id": gid(w.mine)},
                {"__typename": "Customer", "id": gid(w.shared)},
            ]
        },
        lambda who: {"Ada Mine", "Sam Shared"},
    ),
    (
        "Feedback.customer",
        "{ feedback(first: 50) { edges { node { customer { FIELDS } } } } }",
        lambda w, who: {},
        lambda who: FEEDBACK_CUSTOMERS[who],
    ),
    (
        "_entities Feedback.customer",
        "query($r: [_Any!]!) { _entities(representations: $r) "
        "{ ... on Feedback { customer { FIELDS } } } }",
        lambda w, who: {"r": [{"__typename": "Feedback", "id": gid(_feedback_seen_by(w, who))}]},
        lambda who: {"Sam Shared"} if who == "marketing" else {"Ada Mine"},
    ),
    (
        "node Feedback.customer",
        "query($id: ID!) { node(id: $id) { ... on Feedback { customer { FIELDS } } } }",
        lambda w, who: {"id": gid(_feedback_seen_by(w, who))},
        lambda who: {"Sam Shared"} if who == "marketing" else {"Ada Mine"},
    ),
]
CHANNEL_IDS = [c[0] for c in CHANNELS]

Path = tuple[str | int, ...]


def customers_in(data: Any, path: Path = ()) -> Iterator[tuple[Path, dict[str, Any]]]:
    """Every Customer object in a response's data, with its path."""
    if isinstance(data, dict):
        if data.get("__typename") == "Customer":
            yield path, data
        for key, value in data.items():
            yield from customers_in(value, (*path, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from customers_in(value, (*path, index))


def answered(world: World, body: dict[str, Any]) -> list[tuple[Path, dict[str, Any], Customer]]:
    found = [(p, c, world.customer_named(c["name"])) for p, c in customers_in(body["data"])]
    for _, shown, row in found:
        assert shown["id"] == gid(row)
    return found


@pytest.mark.parametrize(("channel", "query", "variables", "expected"), CHANNELS, ids=CHANNEL_IDS)
async def test_partner_gets_masks_of_the_true_contacts_and_no_hidden_field(
    client: httpx.AsyncClient,
    world: World,
    channel: str,
    query: str,
    variables: Callable[[World, str], dict[str, Any]],
    expected: Callable[[str], set[str]],
) -> None:
    visible = " ".join(f for f in CUSTOMER_FIELDS.split() if f not in NEVER_FOR_PARTNERS)
    body = await gql(
        client, world.partner, query.replace("FIELDS", visible), variables(world, "partner")
    )
    found = answered(world, body)
    assert {row.name for _, _, row in found} == expected("partner"), channel
    for _, shown, row in found:
        assert shown["email"] == partial_email(row.email)
        assert shown["phone"] == last4(row.phone)
        assert shown["email"] != row.email and shown["phone"] != row.phone
        assert shown["company"] == row.company
    if any(row.name == "Ada Mine" for _, _, row in found):
        ada = next(shown for _, shown, row in found if row.name == "Ada Mine")
        assert (ada["email"], ada["phone"]) == ("a***@example.com", "****0101")
    # Masked is not withheld: nothing to list.
    assert "extensions" not in body


@pytest.mark.parametrize("hidden", NEVER_FOR_PARTNERS)
@pytest.mark.parametrize(("channel", "query", "variables", "expected"), CHANNELS, ids=CHANNEL_IDS)
async def test_a_field_hidden_from_partners_answers_exactly_like_a_non_existent_one(
    client: httpx.AsyncClient,
    world: World,
    channel: str,
    query: str,
    variables: Callable[[World, str], dict[str, Any]],
    expected: Callable[[str], set[str]],
    hidden: str,
) -> None:
    unknown = hidden[:-1] + "x"  # same length: the same error locations
    answers = {}
    for name in (hidden, unknown):
        response = await post(
            client,
            world.partner,
            query.replace("FIELDS", f"id {name}"),
            variables(world, "partner"),
        )
        answers[name] = (response.status_code, response.headers["content-type"], response.text)
    status, media, text = answers[unknown]
    assert status == 400, text
    assert answers[hidden] == (status, media, text.replace(unknown, hidden)), channel
    body = json.loads(answers[hidden][2])
    asked = query.count("FIELDS")  # one error per place the field is asked for
    assert [e["extensions"]["code"] for e in body["errors"]] == [
        "GRAPHQL_VALIDATION_FAILED"
    ] * asked
    assert [e["message"] for e in body["errors"]] == [
        f"Cannot query field '{hidden}' on type 'Customer'."
    ] * asked
    assert "did you mean" not in text.lower()
    assert "data" not in body


async def test_partner_schema_has_exactly_the_fields_the_policy_shows(
    client: httpx.AsyncClient, world: World
) -> None:
    assert await type_fields(client, world.partner, "Customer") == {
        "id",
        "kind",
        "name",
        "email",
        "phone",
        "company",
        "city",
        "region",
        "country",
        "segment",
        "lifecycleStage",
        "consent",
        "version",
        "updatedAt",
        "feedback",
        "interactions",
        "partners",
    }
    assert await type_fields(client, world.partner, "Consent") == {"shareWithPartners"}
    assert await type_fields(client, world.partner, "Purchase") is None
    feedback_fields = await type_fields(client, world.partner, "Feedback")
    assert feedback_fields is not None
    assert "organization" not in feedback_fields and "customer" in feedback_fields
    operator_fields = await type_fields(client, world.operator, "Customer")
    assert operator_fields is not None
    assert {"lifetimeValue", "traits", "title", "createdAt", "purchases"} <= operator_fields


@pytest.mark.parametrize("who", ["operator", "sales"])
@pytest.mark.parametrize(("channel", "query", "variables", "expected"), CHANNELS, ids=CHANNEL_IDS)
async def test_staff_see_every_customer_field(
    client: httpx.AsyncClient,
    world: World,
    who: str,
    channel: str,
    query: str,
    variables: Callable[[World, str], dict[str, Any]],
    expected: Callable[[str], set[str]],
) -> None:
    body = await gql(
        client,
        caller_of(world, who),
        query.replace("FIELDS", CUSTOMER_FIELDS),
        variables(world, who),
    )
    found = answered(world, body)
    assert {row.name for _, _, row in found} == expected(who), channel
    for _, shown, row in found:
        assert shown["email"] == row.email
        assert shown["phone"] == row.phone
        assert shown["company"] == row.company
        assert shown["lifetimeValue"] == str(row.lifetime_value)
        assert shown["traits"] == row.traits
    assert "extensions" not in body


@pytest.mark.parametrize(("channel", "query", "variables", "expected"), CHANNELS, ids=CHANNEL_IDS)
async def test_marketing_gets_contacts_of_opted_in_customers_and_withheld_elsewhere(
    client: httpx.AsyncClient,
    world: World,
    channel: str,
    query: str,
    variables: Callable[[World, str], dict[str, Any]],
    expected: Callable[[str], set[str]],
) -> None:
    fields = " ".join(f for f in CUSTOMER_FIELDS.split() if f not in NEVER_FOR_PARTNERS)
    body = await gql(
        client, world.marketing, query.replace("FIELDS", fields), variables(world, "marketing")
    )
    found = answered(world, body)
    assert {row.name for _, _, row in found} == expected("marketing"), channel
    withheld: list[Path] = []
    for path, shown, row in found:
        assert shown["company"] == row.company
        if row.consent_marketing_opt_in:
            assert (shown["email"], shown["phone"]) == (row.email, row.phone)
        else:
            assert (shown["email"], shown["phone"]) == (None, None)
            withheld += [(*path, "email"), (*path, "phone")]
    assert withheld, f"{channel} answered no customer whose contacts are withheld"
    paths = body["extensions"]["withheld"]
    assert len(paths) == len(withheld)
    assert {tuple(p) for p in paths} == set(withheld)
    # An alias is the path's key, as in the data.
    if channel == "customer":
        assert paths == [["b", "email"], ["b", "phone"]]


async def test_marketing_schema_has_contacts_but_no_value_or_traits(
    client: httpx.AsyncClient, world: World
) -> None:
    fields = await type_fields(client, world.marketing, "Customer")
    assert fields is not None
    assert {"email", "phone", "name", "consent"} <= fields
    assert not fields & {"lifetimeValue", "traits", "purchases", "partners"}
    plain = await type_fields(client, world.department, "Customer")
    assert plain is not None
    assert {"name", "company"} <= plain
    assert not plain & {"email", "phone", "lifetimeValue", "traits"}
    # Opted-in customers only: no withheld value, no extensions.
    body = await gql(
        client,
        world.marketing,
        "query($id: ID!) { customer(id: $id) { email phone consent { marketingOptIn } } }",
        {"id": gid(world.theirs)},
    )
    assert body == {
        "data": {
            "customer": {
                "email": "tom@example.net",
                "phone": "+442071838750",
                "consent": {"marketingOptIn": True},
            }
        }
    }


# --- "not yours" answers exactly like "does not exist" --------------------------------

LOOKUPS = {
    "customer": "query($id: ID!) { customer(id: $id) { id name } }",
    "node": "query($id: ID!) { node(id: $id) { id ... on Customer { name } } }",
    "nodes": "query($id: ID!) { nodes(ids: [$id]) { id ... on Customer { name } } }",
    "_entities": "query($id: _Any!) { _entities(representations: [$id]) "
    "{ ... on Customer { id name } } }",
    "aliases": "query($id: ID!) { a: customer(id: $id) { name } b: node(id: $id) { id } }",
    "feedback filter": "query($id: ID!) { feedback(filter: {customerId: $id}) "
    "{ totalCount edges { node { text } } } }",
}


def _lookup_variables(channel: str, global_id: str) -> dict[str, Any]:
    if channel == "_entities":
        return {"id": {"__typename": "Customer", "id": global_id}}
    return {"id": global_id}


@pytest.mark.parametrize("channel", list(LOOKUPS))
async def test_unassigned_and_non_consenting_customers_answer_like_missing_and_garbage_ids(
    client: httpx.AsyncClient, world: World, channel: str
) -> None:
    query = LOOKUPS[channel]
    bodies = {}
    for label, global_id in {
        "unassigned": gid(world.nobody),
        "assigned, not consenting": gid(world.private),
        "rival's": gid(world.theirs),
        "missing": missing_gid(),
        "garbage": "not-an-id!",
        "another type's": gid(world.feedback["op-internal"]),
    }.items():
        bodies[label] = await gql(
            client, world.partner, query, _lookup_variables(channel, global_id)
        )
    reference = bodies["missing"]
    assert all(value in (None, 0, []) for value in _leaves(reference["data"])), reference
    for label, body in bodies.items():
        assert body == reference, label
    # ...while the operator does see those customers through the same channel.
    for customer in (world.nobody, world.private):
        seen = await gql(client, world.operator, query, _lookup_variables(channel, gid(customer)))
        assert seen != reference


def _leaves(data: Any) -> list[Any]:
    if isinstance(data, dict):
        return [leaf for value in data.values() for leaf in _leaves(value)]
    if isinstance(data, list) and data:
        return [leaf for value in data for leaf in _leaves(value)]
    return [data]


@pytest.mark.parametrize("who", ["partner", "rival"])
async def test_nodes_batch_mixes_visible_and_invisible_ids_in_order(
    client: httpx.AsyncClient, world: World, who: str
) -> None:
    ids = [
        gid(world.mine),
        gid(world.nobody),
        "garbage",
        gid(world.private),
        gid(world.theirs),
        gid(world.shared),
        gid(world.feedback["op-partners"]),
        gid(world.feedback["op-internal"]),
        gid(world.feedback["private-own"]),
        gid(world.feedback["rival-internal"]),
        gid(world.interactions["own"]),
        gid(world.interactions["own-private"]),
        gid(world.interactions["rival-shared"]),
        gid(world.purchases["own"]),
        gid(world.purchases["rival-shared"]),
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
        "rival": {
            gid(world.theirs),
            gid(world.shared),
            gid(world.feedback["rival-internal"]),
            gid(world.interactions["rival-shared"]),
        },
    }[who]
    assert got == [i if i in visible else None for i in ids]


# --- feedback -------------------------------------------------------------------------

FEEDBACK_QUERY = "{ feedback(first: 50) { totalCount edges { node { text } } } }"
EVERY_FEEDBACK = {
    "op-internal",
    "op-partners",
    "own-internal",
    "sales-partners",
    "rival-partners",
    "rival-internal",
    "marketing-own",
    "theirs-partners",
    "nobody-partners",
    "private-partners",
    "private-own",
}
SUPPLIER_FEEDBACK = {"op-internal", "op-partners", "rival-partners", "theirs-partners"}
FEEDBACK_SEEN = {
    # shared with partners or its own, on its assigned consenting customers
    "partner": {"op-partners", "own-internal", "sales-partners", "rival-partners"},
    "rival": {"rival-partners", "rival-internal", "theirs-partners"},
    "operator": EVERY_FEEDBACK,
    "sales": {"sales-partners"},  # departments: their own
    "marketing": {"marketing-own"},
    "department": set(),
    # its products (any visibility), consenting customers only
    "supplier": SUPPLIER_FEEDBACK,
    "other_supplier": SUPPLIER_FEEDBACK | {"sales-partners"},
}


@pytest.mark.parametrize("who", list(FEEDBACK_SEEN))
async def test_feedback_connection_follows_the_policy(
    client: httpx.AsyncClient, world: World, who: str
) -> None:
    body = await gql(client, caller_of(world, who), FEEDBACK_QUERY)
    feedback = body["data"]["feedback"]
    assert texts(feedback) == FEEDBACK_SEEN[who]
    assert feedback["totalCount"] == len(FEEDBACK_SEEN[who])


@pytest.mark.parametrize(
    ("who", "filter", "expected"),
    [
        ("partner", '{product: "widget"}', {"op-partners", "rival-partners"}),
        ("partner", "{kind: COMPLAINT}", {"own-internal"}),  # not private-own
        ("partner", '{kind: COMPLAINT, product: "widget"}', set()),
        ("rival", '{product: "widget"}', {"rival-partners", "theirs-partners"}),
        ("supplier", '{product: "widget"}', SUPPLIER_FEEDBACK),
        ("supplier", '{product: "gizmo"}', set()),  # not its product
        ("other_supplier", '{product: "gizmo"}', {"sales-partners"}),
        ("operator", "{kind: COMPLAINT}", {"own-internal", "private-own"}),
        (
            "operator",
            '{product: "widget"}',
            {
                "op-internal",
                "op-partners",
                "rival-partners",
                "theirs-partners",
                "private-partners",
                "private-own",
            },
        ),
    ],
)
async def test_feedback_filters_stay_within_the_policy(
    client: httpx.AsyncClient, world: World, who: str, filter: str, expected: set[str]
) -> None:
    query = (
        f"{{ feedback(first: 50, filter: {filter}) {{ totalCount edges {{ node {{ text }} }} }} }}"
    )
    body = await gql(client, caller_of(world, who), query)
    assert texts(body["data"]["feedback"]) == expected
    assert body["data"]["feedback"]["totalCount"] == len(expected)


async def test_feedback_filtered_by_a_customer_not_yours_is_empty(
    client: httpx.AsyncClient, world: World
) -> None:
    query = (
        "query($id: ID!) { feedback(filter: {customerId: $id}) "
        "{ totalCount edges { node { text } } } }"
    )
    empty = {"data": {"feedback": {"totalCount": 0, "edges": []}}}
    for customer in (world.nobody, world.theirs, world.private):
        assert await gql(client, world.partner, query, {"id": gid(customer)}) == empty
    body = await gql(client, world.partner, query, {"id": gid(world.mine)})
    assert texts(body["data"]["feedback"]) == {"op-partners", "own-internal", "sales-partners"}
    assert body["data"]["feedback"]["totalCount"] == 3
    staff = await gql(client, world.operator, query, {"id": gid(world.private)})
    assert texts(staff["data"]["feedback"]) == {"private-partners", "private-own"}


NESTED_PARTS = {
    "feedback": "feedback(first: 50) { totalCount edges { node { text } } }",
    "interactions": "interactions(first: 50) { totalCount edges { node { summary } } }",
    "purchases": "purchases(first: 50) { totalCount edges { node { sku } } }",
    "partners": "partners(first: 50) { totalCount edges { node { role organization { slug } } } }",
}


def _nested_query(parts: list[str]) -> str:
    selected = " ".join(NESTED_PARTS[p] for p in parts)
    return f"query($id: ID!) {{ customer(id: $id) {{ {selected} }} }}"


def _nested(customer: dict[str, Any]) -> dict[str, set[str]]:
    values: dict[str, Callable[[dict[str, Any]], str]] = {
        "feedback": lambda n: n["text"],
        "interactions": lambda n: n["summary"],
        "purchases": lambda n: n["sku"],
        "partners": lambda n: f"{n['organization']['slug']}:{n['role']}",
    }
    result = {}
    for name, connection in customer.items():
        result[name] = {values[name](e["node"]) for e in connection["edges"]}
        assert connection["totalCount"] == len(result[name]), name
    return result


@pytest.mark.parametrize(
    ("who", "customer", "expected"),
    [
        (
            "partner",
            "mine",
            {
                "feedback": {"op-partners", "own-internal", "sales-partners"},
                "interactions": {"own"},
                "partners": {"acme-distribution:reseller"},
            },
        ),
        (
            "partner",
            "shared",
            {
                "feedback": {"rival-partners"},
                "interactions": {"own-shared"},
                "partners": {"acme-distribution:installer"},
            },
        ),
        (
            "rival",
            "shared",
            {
                "feedback": {"rival-partners", "rival-internal"},
                "interactions": {"rival-shared"},
                "partners": {"rival-distribution:supplier-of-record"},
            },
        ),
        (
            "operator",
            "mine",
            {
                "feedback": {"op-internal", "op-partners", "own-internal", "sales-partners"},
                "interactions": {"own", "op", "sales-own"},
                "purchases": {"OWN", "OP"},
                "partners": {"acme-distribution:reseller"},
            },
        ),
        (
            "operator",
            "private",
            {
                "feedback": {"private-partners", "private-own"},
                "interactions": {"own-private"},
                "purchases": {"PRIV"},
                "partners": {"acme-distribution:reseller"},
            },
        ),
        (
            "sales",
            "mine",
            {
                "feedback": {"sales-partners"},
                "interactions": {"sales-own"},
                "purchases": {"OWN", "OP"},
                "partners": {"acme-distribution:reseller"},
            },
        ),
        (
            "sales",
            "shared",
            {
                "feedback": set(),
                "interactions": set(),
                "purchases": {"RIVAL"},
                "partners": {
                    "acme-distribution:installer",
                    "rival-distribution:supplier-of-record",
                },
            },
        ),
        (
            "marketing",
            "shared",
            {"feedback": {"marketing-own"}, "interactions": {"marketing-own"}},
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
    caller = caller_of(world, who)
    customer_id = gid(getattr(world, customer))
    body = await gql(client, caller, _nested_query(list(expected)), {"id": customer_id})
    assert _nested(body["data"]["customer"]) == expected
    # The connections it may never see are not in its schema at all.
    for part in set(NESTED_PARTS) - set(expected):
        refused = await gql(
            client, caller, _nested_query([part]), {"id": customer_id}, expect_errors=True
        )
        assert [e["message"] for e in refused["errors"]] == [
            f"Cannot query field '{part}' on type 'Customer'."
        ]


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
        "Ada Mine": (
            {"op-partners", "own-internal", "sales-partners"},
            3,
            {"own"},
            1,
            ["acme-distribution"],
            1,
        ),
        "Sam Shared": ({"rival-partners"}, 1, {"own-shared"}, 1, ["acme-distribution"], 1),
    }


FEEDBACK_BY_ID = """query($id: ID!, $r: [_Any!]!) {
    node(id: $id) { ... on Feedback { text } }
    nodes(ids: [$id]) { ... on Feedback { text } }
    _entities(representations: $r) { ... on Feedback { text } }
}"""


@pytest.mark.parametrize("who", ["partner", "supplier", "sales"])
@pytest.mark.parametrize("key", sorted(EVERY_FEEDBACK))
async def test_feedback_by_id_follows_the_policy(
    client: httpx.AsyncClient, world: World, who: str, key: str
) -> None:
    feedback_id = gid(world.feedback[key])
    variables = {"id": feedback_id, "r": [{"__typename": "Feedback", "id": feedback_id}]}
    body = await gql(client, caller_of(world, who), FEEDBACK_BY_ID, variables)
    node = {"text": key} if key in FEEDBACK_SEEN[who] else None
    assert body["data"] == {"node": node, "nodes": [node], "_entities": [node]}
    staff = await gql(client, world.operator, FEEDBACK_BY_ID, variables)
    assert staff["data"]["node"] == {"text": key}


@pytest.mark.parametrize("who", ["partner", "supplier"])
async def test_invisible_feedback_answers_like_missing_feedback(
    client: httpx.AsyncClient, world: World, who: str
) -> None:
    query = "query($r: [_Any!]!) { _entities(representations: $r) { ... on Feedback { text } } }"
    ids = [
        gid(world.feedback["op-internal" if who == "partner" else "own-internal"]),
        gid(world.feedback["private-partners"]),  # not consenting to partner sharing
        gid(world.feedback["private-own"]),
        missing_gid("Feedback"),
        gid(world.mine),  # another type's
        "garbage",
    ]
    for feedback_id in ids:
        body = await gql(
            client,
            caller_of(world, who),
            query,
            {"r": [{"__typename": "Feedback", "id": feedback_id}]},
        )
        assert body == {"data": {"_entities": [None]}}, feedback_id


# --- activity by id ---------------------------------------------------------------------

ACTIVITY_SEEN = {
    "partner": {("interactions", "own"), ("interactions", "own-shared")},
    "sales": {("interactions", "sales-own")}
    | {("purchases", k) for k in ("own", "op")}
    | {("purchases", "rival-shared"), ("purchases", "private")},
    "marketing": {("interactions", "marketing-own")},
}


@pytest.mark.parametrize("who", list(ACTIVITY_SEEN))
@pytest.mark.parametrize(
    ("kind", "key"),
    [
        ("interactions", "own"),
        ("interactions", "op"),
        ("interactions", "sales-own"),
        ("interactions", "rival-shared"),
        ("interactions", "own-shared"),
        ("interactions", "marketing-own"),
        ("interactions", "own-private"),
        ("purchases", "own"),
        ("purchases", "op"),
        ("purchases", "rival-shared"),
        ("purchases", "private"),
    ],
)
async def test_activity_by_id_follows_the_policy(
    client: httpx.AsyncClient, world: World, who: str, kind: str, key: str
) -> None:
    row = getattr(world, kind)[key]
    query = "query($id: ID!) { node(id: $id) { id } nodes(ids: [$id]) { id } }"
    body = await gql(client, caller_of(world, who), query, {"id": gid(row)})
    node = {"id": gid(row)} if (kind, key) in ACTIVITY_SEEN[who] else None
    assert body["data"] == {"node": node, "nodes": [node]}
    staff = await gql(client, world.operator, query, {"id": gid(row)})
    assert staff["data"]["node"] == {"id": gid(row)}


async def test_partner_sees_no_purchase_type_and_unknown_like_missing(
    client: httpx.AsyncClient, world: World
) -> None:
    query = "query($id: ID!) { node(id: $id) { id } }"
    answers = [
        await gql(client, world.partner, query, {"id": i})
        for i in (gid(world.purchases["own"]), missing_gid("Purchase"), "garbage")
    ]
    assert answers == [{"data": {"node": None}}] * 3
    template = '{{ node(id: "x") {{ ... on {name} {{ id }} }} }}'
    refused = {
        name: await post(client, world.partner, template.format(name=name))
        for name in ("Purchase", "Purchasx")
    }
    assert refused["Purchase"].status_code == refused["Purchasx"].status_code == 400
    assert refused["Purchase"].text == refused["Purchasx"].text.replace("Purchasx", "Purchase")


# --- suppliers: their products' feedback, the customer as a pseudonym -------------------

SUPPLIER_REFS = "{ feedback(first: 50) { edges { node { id text customerRef } } } }"


async def _refs(client: httpx.AsyncClient, caller: Caller) -> dict[str, str]:
    body = await gql(client, caller, SUPPLIER_REFS)
    return {e["node"]["text"]: e["node"]["customerRef"] for e in body["data"]["feedback"]["edges"]}


async def test_supplier_sees_a_stable_pseudonym_instead_of_the_customer(
    client: httpx.AsyncClient, world: World
) -> None:
    first = await _refs(client, world.supplier)
    again = await _refs(client, world.supplier)
    assert set(first) == SUPPLIER_FEEDBACK
    assert first == again  # stable across requests
    # The same customer, the same pseudonym; another customer, another.
    assert first["op-internal"] == first["op-partners"]
    assert len({first["op-partners"], first["rival-partners"], first["theirs-partners"]}) == 3
    # It is the pseudonym mask of the true customer id, for this supplier...
    secret = access.rules.pseudonym_secret
    customer_of = {
        "op-internal": world.mine,
        "op-partners": world.mine,
        "rival-partners": world.shared,
        "theirs-partners": world.theirs,
    }
    for key, customer in customer_of.items():
        assert first[key] == pseudonym(customer.id, secret=secret, partner="widget-supply")
        # ...never the customer's id, in any form.
        assert first[key] not in (gid(customer), str(customer.id), customer.id.hex)
        assert customer.id.hex not in first[key] and gid(customer) not in first[key]
    # Another supplier gets another pseudonym for the same customer.
    other = await _refs(client, world.other_supplier)
    for key in SUPPLIER_FEEDBACK:
        assert other[key] != first[key]
        assert other[key] == pseudonym(customer_of[key].id, secret=secret, partner="gizmo-supply")
    # A distributor that sees the customer gets its global ID instead.
    partner = await _refs(client, world.partner)
    assert partner["op-partners"] == gid(world.mine)


@pytest.mark.parametrize("channel", ["node", "nodes", "_entities"])
async def test_supplier_pseudonym_is_the_same_through_every_channel(
    client: httpx.AsyncClient, world: World, channel: str
) -> None:
    listed = await _refs(client, world.supplier)
    feedback = world.feedback["rival-partners"]
    fields = "{ ... on Feedback { text customerRef } }"
    by_channel: dict[str, tuple[str, dict[str, Any]]] = {
        "node": (f"query($id: ID!) {{ x: node(id: $id) {fields} }}", {"id": gid(feedback)}),
        "nodes": (f"query($id: ID!) {{ x: nodes(ids: [$id]) {fields} }}", {"id": gid(feedback)}),
        "_entities": (
            f"query($r: [_Any!]!) {{ x: _entities(representations: $r) {fields} }}",
            {"r": [{"__typename": "Feedback", "id": gid(feedback)}]},
        ),
    }
    query, variables = by_channel[channel]
    body = await gql(client, world.supplier, query, variables)
    found = body["data"]["x"]
    node = found[0] if isinstance(found, list) else found
    assert node == {"text": "rival-partners", "customerRef": listed["rival-partners"]}
    assert "extensions" not in body


async def test_supplier_schema_knows_no_customer(client: httpx.AsyncClient, world: World) -> None:
    assert await type_fields(client, world.supplier, "Customer") is None
    assert await type_fields(client, world.supplier, "Feedback") == {
        "id",
        "channel",
        "kind",
        "scale",
        "score",
        "text",
        "product",
        "tags",
        "createdAt",
        "customerRef",
    }
    query_fields = await type_fields(client, world.supplier, "Query")
    assert query_fields is not None
    assert "feedback" in query_fields
    assert not query_fields & {"customers", "customer"}
    for template, hidden, unknown in [
        ("{{ {name} {{ totalCount }} }}", "customers", "customerx"),
        ("{{ feedback {{ edges {{ node {{ {name} {{ id }} }} }} }} }}", "customer", "customex"),
        ("{{ feedback {{ edges {{ node {{ {name} }} }} }} }}", "visibility", "visibilitx"),
        (
            '{{ feedback(filter: {{{name}: "x"}}) {{ totalCount }} }}',
            "customerId",
            "customerIx",
        ),
    ]:
        bodies = {
            name: (await post(client, world.supplier, template.format(name=name))).text
            for name in (hidden, unknown)
        }
        assert bodies[hidden] == bodies[unknown].replace(unknown, hidden), hidden
        assert "GRAPHQL_VALIDATION_FAILED" in bodies[hidden]
    # Customers as federation entities: refused exactly like a type that does not exist.
    entities = "query($r: [_Any!]!) { _entities(representations: $r) { __typename } }"
    refused = {
        typename: await gql(
            client,
            world.supplier,
            entities,
            {"r": [{"__typename": typename, "id": gid(world.mine)}]},
            expect_errors=True,
        )
        for typename in ("Customer", "NoSuchType")
    }
    assert refused["Customer"] == refused["NoSuchType"]
    assert refused["Customer"]["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "Ada" not in json.dumps(refused["Customer"])
    # A customer's id answers like a missing one.
    node = "query($id: ID!) { node(id: $id) { id } }"
    for customer_id in (gid(world.mine), missing_gid(), "garbage"):
        assert await gql(client, world.supplier, node, {"id": customer_id}) == {
            "data": {"node": None}
        }


# --- vendors: nothing ---------------------------------------------------------------------


async def test_vendor_schema_has_no_customers_nor_feedback(
    client: httpx.AsyncClient, world: World
) -> None:
    query_fields = await type_fields(client, world.vendor, "Query")
    assert query_fields is not None
    assert not query_fields & {"customers", "customer", "feedback"}
    for type_name in ("Customer", "Feedback", "Interaction", "Purchase", "CustomerPartner"):
        assert await type_fields(client, world.vendor, type_name) is None, type_name
    for hidden, unknown in [("customers", "customerx"), ("feedback", "feedbacx")]:
        bodies = {
            name: await post(client, world.vendor, f"{{ {name} {{ totalCount }} }}")
            for name in (hidden, unknown)
        }
        assert bodies[hidden].status_code == bodies[unknown].status_code == 400
        assert bodies[hidden].text == bodies[unknown].text.replace(unknown, hidden)
        assert [e["message"] for e in bodies[hidden].json()["errors"]] == [
            f"Cannot query field '{hidden}' on type 'Query'."
        ]
    query = "query($id: ID!) { node(id: $id) { id } nodes(ids: [$id]) { id } }"
    nothing = {"data": {"node": None, "nodes": [None]}}
    rows: list[Customer | Feedback | Interaction | Purchase] = [
        world.mine,
        world.nobody,
        world.feedback["op-partners"],
        world.interactions["own"],
        world.purchases["op"],
    ]
    for row in rows:
        assert await gql(client, world.vendor, query, {"id": gid(row)}) == nothing


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
    # Without the scope, feedback is not in the caller's schema (DESIGN §5).
    assert {e["extensions"]["code"] for e in body["errors"]} == {"GRAPHQL_VALIDATION_FAILED"}
    assert all(e["message"].startswith("Cannot query field 'feedback'") for e in body["errors"])
    # ...while its customers still answer.
    listed = await gql(client, caller, "{ customers { totalCount } }")
    assert listed["data"]["customers"]["totalCount"] == (5 if kind == "operator" else 1)


async def test_customers_still_readable_without_feedback_scope(
    client: httpx.AsyncClient, world: World, db: Database
) -> None:
    caller = await make_caller(db, "operator", scopes=["customers:read"])
    body = await gql(client, caller, "{ customers { totalCount } }")
    assert body["data"]["customers"]["totalCount"] == 5


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
    # Without the scope, the mutation is not in the caller's schema (DESIGN §5).
    assert [e["extensions"]["code"] for e in body["errors"]] == ["GRAPHQL_VALIDATION_FAILED"]
    assert "data" not in body
    assert await count_rows(db, Customer) == before


async def test_scope_narrowed_at_the_token_endpoint_is_enforced(
    client: httpx.AsyncClient, world: World
) -> None:
    await token_for(client, world.operator, scope="customers:read")
    body = await gql(client, world.operator, "{ feedback { totalCount } }", expect_errors=True)
    assert [e["extensions"]["code"] for e in body["errors"]] == ["GRAPHQL_VALIDATION_FAILED"]
