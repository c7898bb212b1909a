"""The resource registry (hub/access/registry.py) against everything it declares: the
operator's GraphQL schema, the policy catalog, the table models and the migrated database
(nothing missing either way), and the lists derived from it against a snapshot.

The snapshot (``tests/hub/data/registry_views.json``) was taken from the hand-kept lists
before they were derived from the registry; a change to a declaration shows up there as a
reviewable diff. Regenerate after a deliberate change with::

    HUB_UPDATE_SNAPSHOTS=1 pytest tests/hub/test_registry.py
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import pytest
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLObjectType,
    GraphQLSchema,
    get_named_type,
)
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import create_async_engine

from hub import customers
from hub.access import REGISTRY, Action, Resource
from hub.access.catalog import CATALOG
from hub.access.registry import NODES, check
from hub.access.specs import FieldSpec, Order, RelationSpec, ResourceSpec
from hub.models import metadata
from hub.models._sealed import EncryptedText
from policies import FieldType, Relation
from schema import build_schema
from schema.audience import PUBLIC
from schema.node import NODE_CLASSES
from schema.policies.types import PolicyResource
from tests.conftest import make_settings

SNAPSHOT = Path(__file__).parent / "data" / "registry_views.json"
UPDATE = os.environ.get("HUB_UPDATE_SNAPSHOTS") == "1"

# API fields of a resource's types that are not one of its fields, and why. Everything
# else on those types must be a registry field's output (or a relation's connection).
NOT_FIELDS = {"Customer.consent": "a container: each Consent field is declared"}


@pytest.fixture(scope="module")
def operator_schema() -> GraphQLSchema:
    """The operator's full schema (what hub administrators see)."""
    return build_schema(make_settings("sqlite+aiosqlite://"))._schema


def _type(schema: GraphQLSchema, name: str) -> Any:
    found = schema.type_map.get(name)
    assert found is not None, f"{name} is not a type of the schema"
    return found


def _has(schema: GraphQLSchema, coordinate: str) -> bool:
    type_name, _, field = coordinate.partition(".")
    found = schema.type_map.get(type_name)
    return isinstance(found, GraphQLObjectType | GraphQLInputObjectType) and field in found.fields


# --- the lists derived from the registry ----------------------------------------------------


def derived_views() -> dict[str, Any]:
    """Every list derived from the registry, in a form that compares by meaning: maps as
    objects, sets sorted; only orders that show (catalog fields, enums) are kept."""
    from hub import related
    from hub.access import catalog, enforce, resources, rules
    from schema import audience, ids

    def by_resource(mapping: Any, value: Any = lambda v: v) -> dict[str, Any]:
        return {str(r): value(v) for r, v in mapping.items()}

    return {
        "catalog": {
            "resources": {
                name: {
                    "fields": [[f, t.value] for f, t in spec.fields.items()],
                    "relations": {
                        r: {"resource": rel.resource, "many": rel.many}
                        for r, rel in spec.relations.items()
                    },
                    "opaque": dict(spec.opaque),
                }
                for name, spec in CATALOG.resources.items()
            },
            "subject_attributes": {k: v.value for k, v in CATALOG.subject_attributes.items()},
            "subject_kinds": sorted(CATALOG.subject_kinds),
            "subject_roles": sorted(CATALOG.subject_roles),
        },
        "resources": [[r.name, r.value] for r in Resource],
        "actions": [[a.name, a.value] for a in Action],
        "FIELDS": by_resource(resources.FIELDS, sorted),
        "MODELS": by_resource(resources.MODELS, lambda m: m.__tablename__),
        "API_ENUMS": by_resource(catalog.API_ENUMS, sorted),
        "DERIVED": dict(catalog.DERIVED),
        "REQUIRED_SCOPE": sorted(
            [str(r), str(a), str(s)] for (r, a), s in rules.REQUIRED_SCOPE.items()
        ),
        "DATA_SCOPES": sorted(str(s) for s in rules.DATA_SCOPES),
        "CONDITION_ONLY": sorted(enforce._CONDITION_ONLY),
        "FEEDS": by_resource(audience.FEEDS, lambda fs: {f: sorted(c) for f, c in fs.items()}),
        "RESOURCE_PARTS": by_resource(audience.RESOURCE_PARTS, list),
        "WRITES": {c: [str(r), str(a)] for c, (r, a) in audience.WRITES.items()},
        "WRITE_INPUTS": {c: [str(r), str(a)] for c, (r, a) in audience.WRITE_INPUTS.items()},
        "ENUM_VALUES": {c: [str(r), f] for c, (r, f) in audience.ENUM_VALUES.items()},
        "PUBLIC": sorted(audience.PUBLIC),
        "TYPE_RESOURCES": {t: str(r) for t, r in audience.TYPE_RESOURCES.items()},
        "CLASSIFIED": sorted(audience.CLASSIFIED),
        "DATA_TYPES": sorted(audience.DATA_TYPES),
        "NODE_TYPES": sorted(ids.NODE_TYPES),
        "PolicyResource": [[m.name, m.value] for m in PolicyResource],
        "TIME_COLUMN": by_resource(related.TIME_COLUMN),
        "CUSTOMER_FILTER_FIELDS": {
            k: list(v) for k, v in REGISTRY[Resource.CUSTOMER].filters.items()
        },
        "CustomerOrderField": [[m.name, m.value] for m in customers.CustomerOrderField],
    }


def test_the_derived_lists_match_the_snapshot() -> None:
    views = derived_views()
    if UPDATE:
        SNAPSHOT.write_text(json.dumps(views, indent=1, sort_keys=True) + "\n")
    expected = json.loads(SNAPSHOT.read_text())
    for name in sorted(expected.keys() | views.keys()):
        assert json.loads(json.dumps(views.get(name))) == expected.get(name), name


# --- the registry's own check -------------------------------------------------------------------


def test_the_registry_fits_its_tables() -> None:
    assert check(REGISTRY) == []


def _with(resource: Resource, **changes: Any) -> dict[Resource, ResourceSpec]:
    return {**REGISTRY, resource: dataclasses.replace(REGISTRY[resource], **changes)}


def _fields(resource: Resource, drop: str = "", *add: FieldSpec) -> tuple[FieldSpec, ...]:
    return (*(f for f in REGISTRY[resource].fields if f.name != drop), *add)


_C, _F = Resource.CUSTOMER, Resource.FEEDBACK


@pytest.mark.parametrize(
    ("registry", "problem"),
    [
        (
            _with(_C, fields=_fields(_C, "", FieldSpec("nickname", FieldType.STRING))),
            "no column 'nickname'",
        ),
        (_with(_C, fields=_fields(_C, "title")), "columns ['title'] of customer are not declared"),
        (
            _with(_C, fields=_fields(_C, "email", FieldSpec("email", FieldType.STRING))),
            "sealed must say whether customer.email",
        ),
        (
            _with(
                _C, fields=_fields(_C, "title", FieldSpec("title", FieldType.STRING, sealed=True))
            ),
            "sealed must say whether customer.title",
        ),
        (
            _with(
                _F,
                fields=_fields(
                    _F,
                    "organization",
                    FieldSpec("organization", FieldType.STRING, derived_from="customer_id"),
                ),
            ),
            "computed from the same column",
        ),
        (_with(_C, internal=frozenset({"email_index"})), "columns ['phone_index'] of customer"),
        (
            _with(_F, relations=(RelationSpec("customer", _C, local="customer", remote="id"),)),
            "joins feedback.customer to customer.id",
        ),
        (
            _with(
                _F, relations=(RelationSpec("customer", "Order", local="customer_id", remote="id"),)
            ),
            "no resource 'Order'",
        ),
        (_with(_F, default_order=Order("received_at")), "default order by unknown field"),
        (
            _with(_F, scopes={Action.READ: REGISTRY[_F].scopes[Action.READ]}),
            "no OAuth scope declared for create",
        ),
        (_with(_F, filter_type=None), "has filters but Feedback has no filter_type"),
        (_with(_C, order_enum=None), "is orderable but Customer has no order_enum"),
        ({r: s for r, s in REGISTRY.items() if r is not _F}, "Feedback: no declaration"),
    ],
)
def test_the_check_names_what_is_out_of_step(
    registry: dict[Resource, ResourceSpec], problem: str
) -> None:
    problems = check(registry)
    assert any(problem in p for p in problems), problems


# --- the policy catalog and the tables ---------------------------------------------------------


def test_the_policy_catalog_is_the_registry() -> None:
    assert list(CATALOG.resources) == [r.value for r in REGISTRY]
    for resource, spec in REGISTRY.items():
        catalog = CATALOG.resources[resource.value]
        assert dict(catalog.fields) == {f.name: f.type for f in spec.fields}, resource
        assert dict(catalog.relations) == {
            r.name: Relation(r.target, r.many) for r in spec.relations
        }, resource
        assert set(catalog.opaque) == {f.name for f in spec.fields if f.sealed}, resource


def test_every_table_column_is_declared_and_every_field_is_a_column() -> None:
    for resource, spec in REGISTRY.items():
        table = metadata.tables[spec.table_name]
        assert table is spec.table.__table__, resource  # type: ignore[attr-defined]
        columns = {c.name for c in table.columns}
        assert columns == spec.stored | spec.internal, resource
        assert {f.derived_from for f in spec.fields if f.derived_from} <= columns, resource
        sealed = {c.name for c in table.columns if isinstance(c.type, EncryptedText)}
        assert sealed == {f.name for f in spec.fields if f.sealed}, resource


@pytest.mark.db
async def test_the_migrated_database_has_the_registry_columns(database_url: str) -> None:
    # The migrations, not the models, make the tables: each backend's must match too.
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            found = await conn.run_sync(
                lambda sync: {
                    spec.table_name: {c["name"] for c in inspect(sync).get_columns(spec.table_name)}
                    for spec in REGISTRY.values()
                }
            )
    finally:
        await engine.dispose()
    for resource, spec in REGISTRY.items():
        assert found[spec.table_name] == spec.stored | spec.internal, resource


# --- the operator's GraphQL schema --------------------------------------------------------------


def test_every_registry_field_has_its_api_fields(operator_schema: GraphQLSchema) -> None:
    for resource, spec in REGISTRY.items():
        assert isinstance(_type(operator_schema, spec.api_type), GraphQLObjectType), resource
        for f in spec.fields:
            for coordinate in spec.coordinates(f):
                assert _has(operator_schema, coordinate), f"{resource}.{f.name}: {coordinate}"
            for coordinate in spec.input_fields(f):
                assert coordinate.split(".")[0] in spec.inputs, f"{resource}.{f.name}: {coordinate}"
        for coordinate in spec.reached_by:
            assert _has(operator_schema, coordinate), coordinate
        for name in spec.mutations:
            assert _has(operator_schema, f"Mutation.{name}"), f"{resource}: {name}"
        for name in spec.inputs:
            found = operator_schema.type_map.get(name)
            assert isinstance(found, GraphQLInputObjectType), f"{resource}: {name}"


def test_every_api_field_of_a_resource_type_is_a_registry_field(
    operator_schema: GraphQLSchema,
) -> None:
    reached = {c for spec in REGISTRY.values() for c in spec.reached_by}
    for resource, spec in REGISTRY.items():
        outputs = {c for f in spec.fields for c in spec.outputs(f)}
        types = {spec.api_type} | {c.split(".")[0] for c in outputs}
        for type_name in sorted(types):
            for name in _type(operator_schema, type_name).fields:
                coordinate = f"{type_name}.{name}"
                assert coordinate in outputs | reached | NOT_FIELDS.keys(), (
                    f"{coordinate} is not declared in the registry ({resource})"
                )


def test_every_input_and_filter_field_is_declared(operator_schema: GraphQLSchema) -> None:
    for resource, spec in REGISTRY.items():
        inputs = {c for f in spec.fields for c in spec.input_fields(f)}
        for type_name in spec.inputs:
            for name in _type(operator_schema, type_name).fields:
                coordinate = f"{type_name}.{name}"
                # References to rows the caller sees and request metadata are not data.
                assert coordinate in inputs | PUBLIC, f"{coordinate} ({resource})"
        if spec.filter_type is not None:
            filters = {c for f in spec.fields for c in spec.filter_fields(f)}
            declared = {
                f"{spec.filter_type}.{n}" for n in _type(operator_schema, spec.filter_type).fields
            }
            assert declared == filters, resource


def test_every_mutation_taking_a_resource_input_is_declared(
    operator_schema: GraphQLSchema,
) -> None:
    declared = {name for spec in REGISTRY.values() for name in spec.mutations}
    inputs = {name for spec in REGISTRY.values() for name in spec.inputs}
    mutation = _type(operator_schema, "Mutation")
    for name, field in mutation.fields.items():
        arguments = {get_named_type(a.type).name for a in field.args.values()}
        if arguments & inputs:
            assert name in declared, f"Mutation.{name} writes a resource but is not in the registry"


def test_enum_values_are_the_api_enums(operator_schema: GraphQLSchema) -> None:
    # A field the API types as an enum must declare its values (no mask output may fit
    # there), and they must be the enum's; a field with values must be an enum.
    for resource, spec in REGISTRY.items():
        for f in spec.fields:
            for coordinate in spec.outputs(f) + spec.input_fields(f):
                type_name, _, name = coordinate.partition(".")
                named = get_named_type(_type(operator_schema, type_name).fields[name].type)
                if isinstance(named, GraphQLEnumType):
                    values = {v.value for v in named.values.values()}
                    assert values == set(f.values), f"{coordinate} ({resource})"
                else:
                    assert not f.values, f"{coordinate} is not an enum ({resource})"


def test_order_fields_are_the_orderable_fields(operator_schema: GraphQLSchema) -> None:
    for resource, spec in REGISTRY.items():
        if spec.order_enum is None:
            assert not spec.orderable, resource
            continue
        enum = _type(operator_schema, spec.order_enum)
        assert {v.value for v in enum.values.values()} == set(spec.orderable), resource
        assert set(enum.values) == {n.upper() for n in spec.orderable}, resource
    # The hub's own enum and default order (hub.customers) agree with the registry.
    assert {m.value for m in customers.CustomerOrderField} == set(REGISTRY[_C].orderable)
    assert REGISTRY[_C].default_order == Order(customers.CustomerOrder().field.value)


def test_nodes_are_the_registry_nodes(operator_schema: GraphQLSchema) -> None:
    node = _type(operator_schema, "Node")
    implementations = {t.name for t in operator_schema.get_possible_types(node)}
    assert implementations == set(NODES)
    assert {REGISTRY[r].api_type for r in NODE_CLASSES} == set(NODES)
    assert {cls.__name__ for cls in NODE_CLASSES.values()} == set(NODES)


def test_policy_admin_enum_names_every_resource(operator_schema: GraphQLSchema) -> None:
    enum = _type(operator_schema, "PolicyResource")
    assert [v.value for v in enum.values.values()] == [r.value for r in Resource]
    assert {v.value for v in enum.values.values()} == set(CATALOG.resources)
