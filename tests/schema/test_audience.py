"""Per-audience schema (DESIGN §5): a caller's introspection, validation errors and
suggestions are those of a schema without what its access never shows; fields withheld on
one row answer null and are named in ``extensions.withheld``."""

from __future__ import annotations

import asyncio
import copy
import importlib
import json
import uuid
from typing import Any

import httpx
import pytest
from graphql import (
    GraphQLSchema,
    Undefined,
    get_introspection_query,
    is_required_input_field,
    parse,
    print_schema,
    print_type,
    validate,
)

from hub import customers, feedback, related, sharing
from hub.access import FIELDS, WITHHELD, Action, Resource, access
from hub.db import Database
from hub.models import OrgKind
from hub.pagination import Page
from hub.principal import Principal
from hub.settings import Settings
from schema import build_schema
from schema._prune import prune_schema
from schema.audience import (
    CLASSIFIED,
    DATA_TYPES,
    ENUM_VALUES,
    FEEDERS,
    FEEDS,
    PUBLIC,
    RESOURCE_PARTS,
    WRITES,
    data_coordinates,
    hidden_coordinates,
    withheld_fields,
)
from schema.compiled.plan import Unsupported
from schema.ids import to_global_id
from schema.visibility import AudienceSchemas
from schema.withheld import withheld_paths
from tests.conftest import ALL_SCOPES, Caller, gql, make_caller, token_for

ADMIN_SCOPES = [*ALL_SCOPES, "hub:admin"]
GRAPHQL_RESPONSE = "application/graphql-response+json"
# Never shown to a partner (traits by a guardrail); email and phone depend on the policy.
PARTNER_HIDDEN = ("lifetimeValue", "traits")
STAFF_ONLY = ("email", "phone", "lifetimeValue", "traits")
DERIVED = {"customer_ref", "organization"}  # catalog fields computed for policies


def principal_of(caller: Caller, scopes: list[str] | None = None) -> Principal:
    return Principal(
        client_id=caller.client_id,
        organization_id=caller.org.id,
        organization_slug=caller.org.slug,
        organization_kind=OrgKind(caller.org.kind),
        scopes=frozenset(ALL_SCOPES if scopes is None else scopes),
    )


async def post(http: httpx.AsyncClient, caller: Caller, query: str, **extra: Any) -> httpx.Response:
    token = caller.token or await token_for(http, caller)
    return await http.post(
        "/graphql",
        json={"query": query, **extra},
        headers={"Authorization": f"Bearer {token}", "Accept": GRAPHQL_RESPONSE},
    )


async def introspect(http: httpx.AsyncClient, caller: Caller) -> dict[str, dict[str, set[str]]]:
    """``{type: {"fields": names, "inputFields": names, "possibleTypes": names}}``."""
    body = await gql(http, caller, get_introspection_query())
    found = {}
    for type_ in body["data"]["__schema"]["types"]:
        found[type_["name"]] = {
            key: {item["name"] for item in type_.get(key) or ()}
            for key in ("fields", "inputFields", "possibleTypes")
        }
    return found


@pytest.fixture
def full_schema(settings: Settings) -> Any:
    return build_schema(settings)


@pytest.fixture
async def partner(db: Database) -> Caller:
    return await make_caller(db, "distributor", slug="acme-distribution")


@pytest.fixture
async def admin(db: Database) -> Caller:
    return await make_caller(db, "operator", scopes=ADMIN_SCOPES, slug="operator")


# --- the map covers the catalog and the schema ----------------------------------------------


def test_every_catalog_field_is_mapped() -> None:
    for resource in Resource:
        assert set(FEEDS[resource]) >= FIELDS[resource], resource
        assert set(FEEDS[resource]) - FIELDS[resource] <= DERIVED, resource


def test_every_policy_catalog_field_is_mapped() -> None:
    catalog = pytest.importorskip("hub.access.catalog")
    for resource, types in catalog.TYPES.items():
        assert set(types) <= set(FEEDS[resource]), resource


def test_every_coordinate_of_the_map_is_in_the_schema(full_schema: Any) -> None:
    schema = full_schema._schema
    named = set(FEEDERS) | PUBLIC | set(WRITES)
    named |= {c for parts in RESOURCE_PARTS.values() for c in parts}
    for coordinate in sorted(named):
        type_name, _, field = coordinate.partition(".")
        assert type_name in schema.type_map, coordinate
        if field:
            assert field in schema.type_map[type_name].fields, coordinate
    for coordinate in ENUM_VALUES:
        type_name, _, value = coordinate.partition(".")
        assert value in schema.type_map[type_name].values, coordinate


def test_every_field_of_a_data_type_is_classified(full_schema: Any) -> None:
    # A field added to Customer, Feedback... (or an input) without a mapping must fail
    # here; unclassified root fields are for administrators (hidden from everyone else).
    unclassified = [c for c in data_coordinates(full_schema._schema) if c not in CLASSIFIED]
    assert [c for c in unclassified if c.split(".")[0] not in ("Query", "Mutation")] == []
    assert {"Query.organizations", "Mutation.createOrganization"} <= set(unclassified)
    assert "Customer" in DATA_TYPES and "CustomerInput" in DATA_TYPES


# --- what each audience sees ----------------------------------------------------------------


async def test_partner_introspection_lists_only_shown_fields(
    client: httpx.AsyncClient, partner: Caller
) -> None:
    types = await introspect(client, partner)
    shown = {r: access.shown_fields(principal_of(partner), r) for r in Resource}
    for type_name, kinds in types.items():
        for name in kinds["fields"] | kinds["inputFields"]:
            coordinate = f"{type_name}.{name}"
            feeders = FEEDERS.get(coordinate)
            if feeders is not None and coordinate not in PUBLIC:
                assert any(f in shown[r] for r, f in feeders), coordinate
    for name in PARTNER_HIDDEN:
        assert all(name not in k["fields"] | k["inputFields"] for k in types.values()), name
    assert "organizations" not in types["Query"]["fields"]
    assert types["Mutation"]["fields"] <= {c.split(".")[1] for c in WRITES}
    for admin_type in ("AdminOrganization", "OAuthClient", "StaffUser", "CreateOrganizationInput"):
        assert admin_type not in types


async def test_partner_type_introspection(client: httpx.AsyncClient, partner: Caller) -> None:
    query = '{ __type(name: "Customer") { fields { name } } }'
    body = await gql(client, partner, query)
    names = {field["name"] for field in body["data"]["__type"]["fields"]}
    assert "name" in names and "id" in names
    assert not names & set(PARTNER_HIDDEN)
    full = await gql(client, partner, '{ __type(name: "Consent") { fields { name } } }')
    assert full["data"]["__type"] is not None


async def test_admin_sees_the_full_schema(
    client: httpx.AsyncClient, admin: Caller, full_schema: Any
) -> None:
    body = await gql(client, admin, "{ _service { sdl } }")
    assert body["data"]["_service"]["sdl"] == full_schema.as_str()
    types = await introspect(client, admin)
    assert set(STAFF_ONLY) <= types["Customer"]["fields"]
    assert "organizations" in types["Query"]["fields"]


async def test_operator_without_hub_admin_gets_the_operator_audience(
    client: httpx.AsyncClient, db: Database, partner: Caller
) -> None:
    operator = await make_caller(db, "operator")
    types = await introspect(client, operator)
    assert set(STAFF_ONLY) <= types["Customer"]["fields"]
    assert "organizations" not in types["Query"]["fields"]
    assert "createOrganization" not in types["Mutation"]["fields"]
    sdl = (await gql(client, operator, "{ _service { sdl } }"))["data"]["_service"]["sdl"]
    assert "lifetimeValue" in sdl and "createOrganization" not in sdl
    partner_sdl = (await gql(client, partner, "{ _service { sdl } }"))["data"]["_service"]["sdl"]
    assert "lifetimeValue" not in partner_sdl and "type Customer" in partner_sdl


@pytest.mark.parametrize(
    ("scopes", "gone", "kept"),
    [
        (
            ["customers:read", "customers:write"],
            {"Query.feedback", "Customer.feedback", "Feedback", "Mutation.submitFeedback"},
            {"Query.customers", "Mutation.createCustomer", "Customer.partners"},
        ),
        (
            ["customers:read", "feedback:read"],
            {"Mutation.createCustomer", "Mutation.submitFeedback", "CustomerInput"},
            {"Query.feedback", "Customer.feedback", "Feedback.customerRef"},
        ),
        (
            ["feedback:read", "feedback:write"],
            {"Query.customers", "Customer", "Feedback.customer", "Customer.partners"},
            {"Query.feedback", "Mutation.submitFeedback", "Feedback.customerRef"},
        ),
    ],
)
async def test_scopes_shape_the_schema(
    client: httpx.AsyncClient, db: Database, scopes: list[str], gone: set[str], kept: set[str]
) -> None:
    caller = await make_caller(db, "operator", scopes=scopes)
    types = await introspect(client, caller)

    def present(coordinate: str) -> bool:
        type_name, _, field = coordinate.partition(".")
        kinds = types.get(type_name)
        return kinds is not None and (not field or field in kinds["fields"] | kinds["inputFields"])

    assert {c for c in gone if present(c)} == set()
    assert {c for c in kept if not present(c)} == set()


# --- hidden answers like non-existent ---------------------------------------------------------

HIDDEN_VS_UNKNOWN = [
    # (caller, query with {name}, hidden name, unknown name)
    ("partner", "{{ customers {{ edges {{ node {{ id {name} }} }} }} }}", "traits", "traitx"),
    ("partner", '{{ customer(id: "x") {{ {name} }} }}', "lifetimeValue", "lifetimeValux"),
    ("partner", "{{ {name} {{ slug }} }}", "organizations", "organizationz"),
    (
        "partner",
        'mutation {{ {name}(input: {{slug: "a", name: "b", kind: VENDOR}}) {{ __typename }} }}',
        "createOrganization",
        "createOrganizatiox",
    ),
    (
        "partner",
        'mutation {{ createCustomer(input: {{name: "a", {name}: "1"}}) {{ __typename }} }}',
        "lifetimeValue",
        "lifetimeValux",
    ),
    (
        "no-feedback",
        "{{ customers {{ edges {{ node {{ id ... on {name} {{ id }} }} }} }} }}",
        "Feedback",
        "Feedbacx",
    ),
    ("no-feedback", "{{ {name} {{ totalCount }} }}", "feedback", "feedbacx"),
    (
        "feedback-only",
        "query ($n: Int, $f: CustomerFilter) {{ {name}(first: $n) {{ totalCount }} }}",
        "customers",
        "customerz",
    ),
    (
        "no-feedback",
        "{{ customers {{ edges {{ node {{ {name} {{ totalCount }} }} }} }} }}",
        "feedback",
        "feedbacx",
    ),
]


@pytest.mark.parametrize(
    ("who", "template", "hidden", "unknown"),
    HIDDEN_VS_UNKNOWN,
    ids=[f"{case[0]}-{case[2]}" for case in HIDDEN_VS_UNKNOWN],
)
async def test_a_hidden_name_answers_exactly_like_an_unknown_one(
    client: httpx.AsyncClient,
    db: Database,
    partner: Caller,
    who: str,
    template: str,
    hidden: str,
    unknown: str,
) -> None:
    caller = partner
    if who == "no-feedback":
        caller = await make_caller(db, "operator", scopes=["customers:read", "customers:write"])
    elif who == "feedback-only":
        caller = await make_caller(db, "operator", scopes=["feedback:read"])
    answers = {}
    for name in (hidden, unknown):
        response = await post(client, caller, template.format(name=name))
        answers[name] = (response.status_code, response.headers["content-type"], response.text)
    status, media, text = answers[unknown]
    assert status == 400, text
    assert answers[hidden] == (status, media, text.replace(unknown, hidden))
    assert "did you mean" not in answers[hidden][2].lower()


@pytest.mark.parametrize(
    ("query", "hidden"),
    [
        ("{ customers { edges { node { lifetimeValu } } } }", "lifetimeValue"),
        ("{ customers { edges { node { trait } } } }", "traits"),
        ("{ organization { slug } }", "organizations"),
        (
            'mutation { createCustomer(input: {name: "a", lifetimeVal: 1}) { __typename } }',
            "lifetimeValue",
        ),
        ("query ($f: CustomerInput) { __typename }", "traits"),
    ],
)
async def test_suggestions_never_name_hidden_fields(
    client: httpx.AsyncClient, partner: Caller, full_schema: Any, query: str, hidden: str
) -> None:
    schemas = AudienceSchemas(full_schema)
    audience = schemas.for_principal(principal_of(partner))
    # graphql-core's own suggestions, before any stripping, know only the audience schema.
    assert not any(hidden in e.message for e in validate(audience._schema, parse(query)))
    response = await post(client, partner, query, variables={"f": {"name": "a", "trait": {}}})
    assert response.json()["errors"], response.text
    assert hidden not in response.text
    assert "did you mean" not in response.text.lower()


async def test_circular_introspection_is_refused_for_partners(
    client: httpx.AsyncClient, partner: Caller
) -> None:
    query = "{ __schema { types { fields { type { fields { type { fields { name } } } } } } } }"
    response = await post(client, partner, query)
    assert response.status_code == 400
    assert [e["extensions"]["code"] for e in response.json()["errors"]] == ["MAX_DEPTH_EXCEEDED"]


async def test_a_hidden_entity_type_is_refused_like_an_unknown_one(
    client: httpx.AsyncClient, db: Database
) -> None:
    caller = await make_caller(db, "operator", scopes=["customers:read"])
    query = "query ($r: [_Any!]!) { _entities(representations: $r) { __typename } }"
    bodies = []
    for typename in ("Feedback", "NoSuchType"):
        response = await post(
            client, caller, query, variables={"r": [{"__typename": typename, "id": "x"}]}
        )
        bodies.append(response.json())
    assert bodies[0] == bodies[1]
    assert bodies[0]["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "Feedback" not in json.dumps(bodies[0])
    node = await gql(
        client, caller, f'{{ node(id: "{to_global_id("Feedback", uuid.uuid4())}") {{ id }} }}'
    )
    assert node == {"data": {"node": None}}


# --- the cache --------------------------------------------------------------------------------


def _principal(kind: str, scopes: list[str]) -> Principal:
    return Principal(
        client_id=f"c-{uuid.uuid4().hex[:6]}",
        organization_id=uuid.uuid4(),
        organization_slug=f"{kind}-{uuid.uuid4().hex[:6]}",
        organization_kind=OrgKind(kind),
        scopes=frozenset(scopes),
    )


def test_one_schema_per_audience_built_once(
    full_schema: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    schemas = AudienceSchemas(full_schema)
    first = schemas.for_principal(_principal("distributor", ALL_SCOPES))
    same = schemas.for_principal(_principal("distributor", ALL_SCOPES))
    assert same is first
    assert schemas.for_principal(_principal("distributor", ["customers:read"])) is not first
    admin = schemas.for_principal(_principal("operator", ADMIN_SCOPES))
    assert admin is schemas.for_principal(_principal("department", ADMIN_SCOPES))
    assert admin is not schemas.for_principal(_principal("operator", ALL_SCOPES))
    # New rules (another object, or another version of them): every audience is rebuilt.
    monkeypatch.setattr(access, "rules", access.rules)
    assert schemas.for_principal(_principal("distributor", ALL_SCOPES)) is first
    monkeypatch.setattr(access, "rules", copy.copy(access.rules))
    assert schemas.for_principal(_principal("distributor", ALL_SCOPES)) is not first


def test_the_cache_is_bounded(full_schema: Any) -> None:
    schemas = AudienceSchemas(full_schema, maxsize=2)
    for scopes in (["customers:read"], ["feedback:read"], ALL_SCOPES):
        schemas.for_principal(_principal("operator", scopes))
    assert len(schemas._schemas) == 2


def test_pruning_nothing_keeps_the_schema(full_schema: Any) -> None:
    def printed(schema: GraphQLSchema) -> dict[str, str]:
        return {name: print_type(type_) for name, type_ in schema.type_map.items()}

    assert printed(prune_schema(full_schema._schema, ())) == printed(full_schema._schema)


# --- withheld fields ----------------------------------------------------------------------


def test_withheld_catalog_fields_map_to_graphql_fields() -> None:
    record = {"id": uuid.uuid4(), "name": "x", WITHHELD: frozenset({"email", "consent_source"})}
    assert withheld_fields("Customer", record) == {"email"}
    assert withheld_fields("Consent", record) == {"source"}
    assert withheld_fields("Customer", {"id": uuid.uuid4(), "name": "x"}) == frozenset()
    # customerRef is fed by customer_ref, or else customer_id: withheld only when neither is
    # there to show.
    masked = {"id": 1, "customer_ref": "p-1", WITHHELD: frozenset({"customer_id"})}
    assert withheld_fields("Feedback", masked) == {"customer"}
    bare = {"id": 1, WITHHELD: frozenset({"customer_id"})}
    assert withheld_fields("Feedback", bare) == {"customer", "customerRef"}


def test_withheld_paths_are_those_in_the_data() -> None:
    data = {"a": [{"b": None}, {"b": None, "c": None}], "d": {"e": 1}}
    noted: list[list[str | int]] = [
        ["a", 1, "c"],
        ["a", 0, "b"],
        ["a", 1, "c"],
        ["d", "e"],
        ["x", "y"],
        ["a", 5, "b"],
    ]
    assert withheld_paths(noted, data) == [["a", 0, "b"], ["a", 1, "c"]]


def _page(records: list[dict[str, Any]]) -> Page[Any]:
    return Page(items=records, keys=[(str(i),) for i in range(len(records))], ordering_key="k")


@pytest.fixture
def stub_records(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[dict[str, Any]]]:
    """Records the customer and feedback lists return instead of the database's."""
    stubs: dict[str, list[dict[str, Any]]] = {"customers": [], "feedback": []}

    async def list_customers(*args: Any, **kwargs: Any) -> Page[Any]:
        return _page(stubs["customers"])

    async def list_feedback(*args: Any, **kwargs: Any) -> Page[Any]:
        return _page(stubs["feedback"])

    monkeypatch.setattr(customers, "list_customers", list_customers)
    monkeypatch.setattr(feedback, "list_feedback", list_feedback)
    # The compiled path reads the feedback list through the function list_feedback calls.
    monkeypatch.setattr(related, "page_of", list_feedback)

    async def no_sql(*args: Any, **kwargs: Any) -> Any:
        # The stubs stand in for the record functions: compiled plans must run from those
        # records, not as SQL against the (empty) tables.
        raise Unsupported("records stubbed by the test")

    monkeypatch.setattr(importlib.import_module("schema.compiled.execute"), "execute_sql", no_sql)
    return stubs


async def test_withheld_fields_answer_null_with_their_paths(
    client: httpx.AsyncClient, db: Database, stub_records: dict[str, list[dict[str, Any]]]
) -> None:
    operator = await make_caller(db, "operator")
    plain = {"id": uuid.uuid4(), "name": "Plain", "email": "p@example.com"}
    withheld = {
        "id": uuid.uuid4(),
        "name": "Withheld",
        "consent_marketing_opt_in": True,
        WITHHELD: frozenset({"email", "consent_share_with_partners"}),
    }
    stub_records["customers"] = [plain, withheld]
    query = """{ customers { edges { node { name mail: email
        consent { shareWithPartners marketingOptIn } } } } }"""
    body = await gql(client, operator, query)
    nodes = [edge["node"] for edge in body["data"]["customers"]["edges"]]
    assert nodes == [
        {"name": "Plain", "mail": "p@example.com", "consent": None},
        {
            "name": "Withheld",
            "mail": None,
            "consent": {"shareWithPartners": None, "marketingOptIn": True},
        },
    ]
    assert body["extensions"] == {
        "withheld": [
            ["customers", "edges", 1, "node", "consent", "shareWithPartners"],
            ["customers", "edges", 1, "node", "mail"],
        ]
    }
    # Nothing withheld among the fields asked for: no extensions at all.
    assert "extensions" not in await gql(
        client, operator, "{ customers { edges { node { name } } } }"
    )


async def test_withheld_feedback_customer(
    client: httpx.AsyncClient, db: Database, stub_records: dict[str, list[dict[str, Any]]]
) -> None:
    operator = await make_caller(db, "operator")
    customer_id = uuid.uuid4()
    stub_records["feedback"] = [
        {"id": uuid.uuid4(), "text": "a", "customer_id": customer_id},
        {"id": uuid.uuid4(), "text": "b", "customer_ref": "pseudo-1", WITHHELD: {"customer_id"}},
        {"id": uuid.uuid4(), "text": "c", WITHHELD: frozenset({"customer_id", "text"})},
    ]
    body = await gql(
        client, operator, "{ feedback { edges { node { text customerRef customer { id } } } } }"
    )
    nodes = [edge["node"] for edge in body["data"]["feedback"]["edges"]]
    assert [(n["text"], n["customerRef"]) for n in nodes] == [
        ("a", to_global_id("Customer", customer_id)),
        ("b", "pseudo-1"),
        (None, None),
    ]
    assert [n["customer"] for n in nodes[1:]] == [None, None]
    prefix = ["feedback", "edges"]
    assert body["extensions"]["withheld"] == [
        [*prefix, 1, "node", "customer"],
        [*prefix, 2, "node", "customer"],
        [*prefix, 2, "node", "customerRef"],
        [*prefix, 2, "node", "text"],
    ]


def test_mutation_inputs_keep_fields_shown_or_writable(
    full_schema: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A distributor reporting sell-through it may not read back: purchase fields are
    # writable, not shown. Customer fields it sees but may not set stay (refused at run time
    # with a user error); those it may neither see nor set are gone.
    shown = {Resource.CUSTOMER: frozenset({"id", "name", "company"})}
    writable = {(Resource.PURCHASE, Action.CREATE): frozenset({"customer_id", "sku", "quantity"})}
    monkeypatch.setattr(access, "shown_fields", lambda p, r: shown.get(r, frozenset()))
    monkeypatch.setattr(
        access, "writable_fields", lambda p, r, a: writable.get((r, a), frozenset())
    )
    # Every write granted (that mutations go without a grant is tested apart).
    monkeypatch.setattr(access, "may", lambda p, r, a: True)
    principal = _principal("distributor", ALL_SCOPES)
    pruned = prune_schema(full_schema._schema, hidden_coordinates(full_schema._schema, principal))
    types: dict[str, Any] = dict(pruned.type_map)
    assert set(types["CustomerInput"].fields) == {"name", "company", "idempotencyKey"}
    assert "Purchase" not in types
    # amount and currency are required and neither shown nor writable: no such mutation;
    # with them writable, there it is (its payload without a Purchase to show).
    assert "ReportPurchaseInput" not in types
    assert "reportPurchase" not in types["Mutation"].fields
    writable[(Resource.PURCHASE, Action.CREATE)] |= {"amount", "currency"}
    pruned = prune_schema(full_schema._schema, hidden_coordinates(full_schema._schema, principal))
    types = dict(pruned.type_map)
    assert set(types["ReportPurchaseInput"].fields) == {
        "customerId",
        "sku",
        "quantity",
        "amount",
        "currency",
        "idempotencyKey",  # request metadata: shown with its mutation (schema/audience.py)
    }
    assert "reportPurchase" in types["Mutation"].fields
    assert set(types["PurchasePayload"].fields) == {"userErrors"}


# --- order values and mutations the caller may not use -------------------------------------

ORDER_LITERAL = "{{ customers(orderBy: {{field: {name}}}) {{ totalCount }} }}"
ORDER_VARIABLE = "query ($o: CustomerOrder) { customers(orderBy: $o) { totalCount } }"
ORDER_VALUES = '{ __type(name: "CustomerOrderField") { enumValues { name } } }'


async def test_a_hidden_order_value_answers_exactly_like_an_unknown_one(
    client: httpx.AsyncClient, partner: Caller
) -> None:
    # A distributor never reads createdAt, so it may not order by it either.
    body = await gql(client, partner, ORDER_VALUES)
    assert [v["name"] for v in body["data"]["__type"]["enumValues"]] == ["NAME", "UPDATED_AT"]
    hidden, unknown = "CREATED_AT", "CREATED_AX"
    answers: dict[str, list[tuple[int, str]]] = {}
    for name in (hidden, unknown):
        literal = await post(client, partner, ORDER_LITERAL.format(name=name))
        variable = await post(client, partner, ORDER_VARIABLE, variables={"o": {"field": name}})
        answers[name] = [(r.status_code, r.text) for r in (literal, variable)]
    for (status, text), (hidden_status, hidden_text) in zip(
        answers[unknown], answers[hidden], strict=True
    ):
        assert status == 400, text
        assert (hidden_status, hidden_text) == (status, text.replace(unknown, hidden))
        assert "did you mean" not in hidden_text.lower()
    codes = {e["extensions"]["code"] for e in json.loads(answers[hidden][0][1])["errors"]}
    assert codes == {"GRAPHQL_VALIDATION_FAILED"}
    # The values it reads in clear still order, as literals and as variables (parsed into
    # the hub's enum by the audience's own copy of the enum type).
    await gql(client, partner, ORDER_LITERAL.format(name="UPDATED_AT"))
    await gql(client, partner, ORDER_VARIABLE, {"o": {"field": "NAME", "direction": "DESC"}})


def test_an_order_default_the_caller_may_not_use_is_dropped(
    full_schema: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    readable = {"updated_at"}
    shown = frozenset({"id", "name", "updated_at"})
    monkeypatch.setattr(
        access, "shown_fields", lambda p, r: shown if r is Resource.CUSTOMER else frozenset()
    )
    monkeypatch.setattr(
        access,
        "readable_fields",
        lambda p, r: frozenset(readable) if r is Resource.CUSTOMER else frozenset(),
    )
    principal = _principal("distributor", ALL_SCOPES)
    pruned = prune_schema(full_schema._schema, hidden_coordinates(full_schema._schema, principal))
    types: dict[str, Any] = dict(pruned.type_map)
    assert list(types["CustomerOrderField"].values) == ["UPDATED_AT"]
    # Its default (NAME) is gone: the caller must choose the one value it has.
    field = types["CustomerOrder"].fields["field"]
    assert field.default_value is Undefined and is_required_input_field(field)
    assert "= NAME" not in print_schema(pruned)
    errors = validate(pruned, parse("{ customers(orderBy: {direction: DESC}) { totalCount } }"))
    assert [e.message for e in errors] == [
        "Expected value of type 'CustomerOrder' to include required field 'field', "
        "found: { direction: DESC }."
    ]
    assert validate(pruned, parse(ORDER_LITERAL.format(name="UPDATED_AT"))) == []
    # Nothing readable in clear: no order at all.
    readable.clear()
    pruned = prune_schema(full_schema._schema, hidden_coordinates(full_schema._schema, principal))
    assert {"CustomerOrder", "CustomerOrderField"}.isdisjoint(pruned.type_map)
    assert pruned.query_type is not None
    assert "orderBy" not in pruned.query_type.fields["customers"].args


MUTATIONS = "{ __schema { mutationType { fields { name } } } }"
PUBLISH = """mutation($source: String!, $reason: String!) {
  publishPolicy(source: $source, reason: $reason) {
    version { number } problems { message } userErrors { message } } }"""
ROLLBACK = """mutation($version: Int!, $reason: String!) {
  rollbackPolicy(version: $version, reason: $reason) {
    version { number } problems { message } userErrors { message } } }"""
VENDOR_TRIAGE = (
    "\n  - name: vendors-triage-own-feedback\n"
    "    subjects: [{kind: vendor}]\n"
    "    resource: Feedback\n"
    "    rows:\n"
    "      and:\n"
    "        - organization: {eq: $subject.org}\n"
    "        - customer.consent_share_with_partners: {eq: true}\n"
    "    read: {visible: [id, status]}\n"
    "    write: {fields: [status], check: {organization: {eq: $subject.org}}}\n"
)


async def mutations_of(client: httpx.AsyncClient, caller: Caller) -> set[str] | None:
    body = await gql(client, caller, MUTATIONS)
    mutation_type = body["data"]["__schema"]["mutationType"]
    return None if mutation_type is None else {f["name"] for f in mutation_type["fields"]}


async def eventual_mutations(
    client: httpx.AsyncClient, caller: Caller, expected: set[str] | None
) -> set[str] | None:
    """The caller's mutations once they are ``expected`` (the hub's policy refresh puts a
    published version in force within seconds), or after 5 seconds."""
    for _ in range(50):
        seen = await mutations_of(client, caller)
        if seen == expected:
            break
        await asyncio.sleep(0.1)
    return seen


async def test_publishing_a_grant_shows_its_mutation_and_rolling_back_hides_it(
    client: httpx.AsyncClient, db: Database, admin: Caller, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(access, "rules", access.rules)  # the versions published stay here
    vendor = await make_caller(db, "vendor")
    # The default policy grants vendors nothing: no mutation at all, though the token has
    # every write scope.
    assert await mutations_of(client, vendor) is None
    default = sharing.default_source()
    source = default.replace("\nexpect:\n", VENDOR_TRIAGE + "\nexpect:\n")
    assert source != default
    body = await gql(client, admin, PUBLISH, {"source": source, "reason": "vendors triage"})
    assert body["data"]["publishPolicy"]["version"] == {"number": 2}, body
    assert await eventual_mutations(client, vendor, {"updateFeedbackStatus"}) == {
        "updateFeedbackStatus"
    }
    body = await gql(client, admin, ROLLBACK, {"version": 1, "reason": "back"})
    assert body["data"]["rollbackPolicy"]["version"] == {"number": 3}, body
    assert await eventual_mutations(client, vendor, None) is None
