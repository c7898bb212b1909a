"""Registered resource types, node classes and the connections made from the registry
(schema/resource_types.py), and the areas the root types are merged from (schema/areas.py)."""

from __future__ import annotations

import dataclasses
import uuid

import pytest
import strawberry
from graphql import GraphQLObjectType, GraphQLSchema, get_named_type

import schema
from hub.access import REGISTRY, Resource
from schema import build_schema
from schema.areas import Area
from schema.common import Node
from schema.resource_types import API_TYPES, NODE_CLASSES, registry_connections, resource_type
from tests.conftest import make_settings


@pytest.fixture(scope="module")
def full() -> GraphQLSchema:
    return build_schema(make_settings("sqlite+aiosqlite://"))._schema


def test_every_resource_has_its_registered_type() -> None:
    assert set(API_TYPES) == set(REGISTRY)
    for resource, cls in API_TYPES.items():
        assert cls.__strawberry_definition__.name == REGISTRY[resource].api_type  # type: ignore[attr-defined]
    assert list(NODE_CLASSES) == [r for r, spec in REGISTRY.items() if spec.node]


def test_customer_connections_come_from_the_registry(full: GraphQLSchema) -> None:
    customer = full.type_map["Customer"]
    assert isinstance(customer, GraphQLObjectType)
    listed = {
        coordinate.split(".")[1]: spec.api_type
        for spec in REGISTRY.values()
        for coordinate in spec.reached_by
        if coordinate.startswith("Customer.")
    }
    for name, api_type in listed.items():
        field = customer.fields[name]
        assert get_named_type(field.type).name == f"{api_type}Connection", name
        assert list(field.args) == ["first", "after"], name
    # The generated ones before the hand-written resolvers, in registry order.
    assert list(customer.fields)[-5:] == [
        "feedback",
        "interactions",
        "purchases",
        "cases",
        "partners",
    ]
    assert (
        customer.fields["cases"].description == "Support cases about this customer, newest first."
    )
    assert customer.fields["feedback"].description is None


def test_root_fields_are_merged_from_every_area_in_position_order() -> None:
    assert [a.position for a in schema.AREAS] == sorted(a.position for a in schema.AREAS)
    assert len({a.position for a in schema.AREAS}) == len(schema.AREAS)
    assert all(isinstance(a, Area) for a in schema.AREAS)


def test_a_type_must_be_registered_under_its_registry_name() -> None:
    with pytest.raises(TypeError, match="the registry's api_type"):

        @resource_type(Resource.FEEDBACK)
        @strawberry.type(name="NotFeedback")
        class Elsewhere:
            id: strawberry.ID


def test_a_connection_needs_a_parent_relation_to_its_type(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spec = REGISTRY[Resource.FEEDBACK]
    monkeypatch.setitem(
        REGISTRY,
        Resource.FEEDBACK,
        dataclasses.replace(spec, reached_by=(*spec.reached_by, "Interaction.feedback")),
    )

    class Interaction(Node):
        uuid: strawberry.Private[uuid.UUID]

    with pytest.raises(TypeError, match="Feedback has no parent relation to Interaction"):
        registry_connections(Interaction)
