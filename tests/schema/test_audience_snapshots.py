"""The schema of each organization kind under the default policy, as snapshots.

Each snapshot (``tests/schema/snapshots/<audience>.txt``) lists every type of the
caller's schema with its fields, input fields, enum values or members: what the caller
can name, and nothing it may not use. A change to the default policy or to the schema
shows up here as a reviewable diff. Regenerate after a deliberate change with::

    HUB_UPDATE_SNAPSHOTS=1 pytest tests/schema/test_audience_snapshots.py

The run-time checks are the reference: every order value offered is one the hub accepts
to order by, and every data mutation offered is one the access module lets through.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import pytest
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    GraphQLUnionType,
    get_named_type,
    is_introspection_type,
)

from hub import customers, sharing
from hub.access import PolicyRules, Resource, access
from hub.errors import BadInputError, ForbiddenError
from hub.models import OrgKind
from hub.principal import Principal
from policies import parse
from schema import HubSchema, build_schema
from schema.audience import ENUM_VALUES, WRITES
from schema.visibility import AudienceSchemas
from tests.conftest import ALL_SCOPES, make_settings

SNAPSHOTS = Path(__file__).parent / "snapshots"
UPDATE = os.environ.get("HUB_UPDATE_SNAPSHOTS") == "1"

# Every organization kind, and each department role the default policy distinguishes.
AUDIENCES: dict[str, tuple[OrgKind, dict[str, Any]]] = {
    "operator": (OrgKind.OPERATOR, {}),
    "department-sales": (OrgKind.DEPARTMENT, {"roles": ["sales"]}),
    "department-support": (OrgKind.DEPARTMENT, {"roles": ["support"]}),
    "department-marketing": (OrgKind.DEPARTMENT, {"roles": ["marketing"]}),
    "supplier": (OrgKind.SUPPLIER, {"products": ["p-1"]}),
    "vendor": (OrgKind.VENDOR, {}),
    "distributor": (OrgKind.DISTRIBUTOR, {}),
}


def principal(name: str) -> Principal:
    """A client of the audience's organization holding every data scope."""
    kind, attributes = AUDIENCES[name]
    return Principal(
        client_id=f"client-{name}",
        organization_id=uuid.uuid4(),
        organization_slug=name,
        organization_kind=kind,
        scopes=frozenset(ALL_SCOPES),
        attributes=attributes,
    )


@pytest.fixture(autouse=True)
def default_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    """The default policy in force, whatever another test left in the process."""
    document = parse(sharing.default_source())
    rules = PolicyRules(
        1,
        document,
        [*sharing.operator_guardrails(), *document.guardrails],
        pseudonym_secret=b"snapshots" * 4,
    )
    monkeypatch.setattr(access, "rules", rules)


@pytest.fixture(scope="module")
def full() -> HubSchema:
    # No database is touched: the schema needs the settings' limits only.
    return build_schema(make_settings("sqlite+aiosqlite:///:memory:"))


def audience_schema(full: HubSchema, name: str) -> GraphQLSchema:
    return AudienceSchemas(full).for_principal(principal(name))._schema


def summary(schema: GraphQLSchema) -> str:
    """One line per named type: its kind, name and the names a caller can use in it."""
    lines = []
    for name in sorted(schema.type_map):
        type_ = schema.type_map[name]
        if is_introspection_type(type_):
            continue
        if isinstance(type_, GraphQLObjectType | GraphQLInterfaceType):
            keyword = "type" if isinstance(type_, GraphQLObjectType) else "interface"
            names = list(type_.fields)
        elif isinstance(type_, GraphQLInputObjectType):
            keyword, names = "input", list(type_.fields)
        elif isinstance(type_, GraphQLEnumType):
            keyword, names = "enum", list(type_.values)
        elif isinstance(type_, GraphQLUnionType):
            keyword, names = "union", [member.name for member in type_.types]
        else:
            assert isinstance(type_, GraphQLScalarType)
            keyword, names = "scalar", []
        lines.append(" ".join([keyword, name, *names]).rstrip())
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("name", sorted(AUDIENCES))
def test_schema_of_each_audience_matches_its_snapshot(full: HubSchema, name: str) -> None:
    if UPDATE and os.environ.get("CI"):
        pytest.fail("HUB_UPDATE_SNAPSHOTS is for local runs: review and commit the snapshots")
    printed = summary(audience_schema(full, name))
    path = SNAPSHOTS / f"{name}.txt"
    if UPDATE:
        SNAPSHOTS.mkdir(exist_ok=True)
        path.write_text(printed)
    assert path.exists(), f"no snapshot {path.name}: run with HUB_UPDATE_SNAPSHOTS=1"
    assert printed == path.read_text(), (
        f"the {name} schema changed; if that is intended, regenerate the snapshots with "
        "HUB_UPDATE_SNAPSHOTS=1 and review the diff"
    )


def test_the_distributor_schema_offers_only_what_it_may_use(full: HubSchema) -> None:
    schema = audience_schema(full, "distributor")
    order = schema.type_map["CustomerOrderField"]
    assert isinstance(order, GraphQLEnumType)
    # createdAt is hidden from distributors: ordering by it would reveal it.
    assert list(order.values) == ["NAME", "UPDATED_AT"]
    assert schema.mutation_type is not None
    mutations = set(schema.mutation_type.fields)
    assert mutations == {"submitFeedback", "updateCustomer"}
    assert not mutations & {"createCustomer", "upsertCustomer", "updateFeedbackStatus"}
    # The inputs of the mutations it lost went with them.
    for gone in ("CustomerInput", "LogInteractionInput", "ReportPurchaseInput"):
        assert gone not in schema.type_map, gone
    assert "CustomerPatch" in schema.type_map and "SubmitFeedbackInput" in schema.type_map


def test_an_audience_without_any_write_has_no_mutation_type(full: HubSchema) -> None:
    # Suppliers write since issue 10 §4 (notes on their cases, resolving them).
    for name in ("vendor",):
        schema = audience_schema(full, name)
        assert schema.mutation_type is None, name
        assert "Mutation" not in schema.type_map, name
    assert "updateFeedbackStatus" not in summary(audience_schema(full, "vendor"))


@pytest.mark.parametrize("name", sorted(AUDIENCES))
def test_order_values_are_exactly_those_the_hub_accepts(full: HubSchema, name: str) -> None:
    schema = audience_schema(full, name)
    offered = schema.type_map.get("CustomerOrderField")
    values = set(offered.values) if isinstance(offered, GraphQLEnumType) else set()
    caller = principal(name)
    accepted = set()
    for field in customers.CustomerOrderField:
        try:
            customers._ordering_for(caller, customers.CustomerOrder(field=field))
        except BadInputError:
            continue
        accepted.add(field.name)
    assert values == accepted
    assert {c.split(".")[1] for c in ENUM_VALUES} == {f.name for f in customers.CustomerOrderField}


@pytest.mark.parametrize("name", sorted(AUDIENCES))
def test_mutations_are_exactly_those_the_access_module_lets_through(
    full: HubSchema, name: str
) -> None:
    schema = audience_schema(full, name)
    offered = set(schema.mutation_type.fields) if schema.mutation_type else set()
    caller = principal(name)
    allowed = set()
    for coordinate, (resource, action) in WRITES.items():
        try:
            access.require(caller, Resource(resource), action)
        except ForbiddenError:
            continue
        allowed.add(coordinate.split(".")[1])
    assert offered <= allowed
    # A mutation the access module would let through is left out only when its input lost
    # a required field the caller may neither see nor set (the distributor's recordConsent:
    # the consent source), so that no call of it could pass the field check either.
    mutation = full._schema.mutation_type
    assert mutation is not None
    for lost in allowed - offered:
        inputs = {get_named_type(arg.type).name for arg in mutation.fields[lost].args.values()}
        assert inputs and not inputs & set(schema.type_map), lost
