"""The vocabulary of the resource registry: what one resource declaration says.

A :class:`ResourceSpec` declares a resource once (DESIGN §10): its table, its fields with
their type and API names, its relations, the OAuth scope of each action, its default
order, and the API shapes that show, filter and write it. Every per-resource list of the
hub and the schema is derived from these declarations (:mod:`hub.access.registry`).

API names are plain strings: ``hub`` never imports the schema. A *coordinate* is
``"Type.field"``; tests/hub/test_registry.py checks each one against the GraphQL schema,
and each field against the table and the policy catalog.

Example (a field shown as ``Customer.lifecycleStage``, set by two inputs, filtered by
``CustomerFilter.lifecycleStage``, typed as an enum by the API)::

    FieldSpec(
        "lifecycle_stage",
        FieldType.STRING,
        values=LIFECYCLE_STAGES,
        inputs=("CustomerInput", "CustomerPatch"),
        filters=("lifecycle_stage",),
    )
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlmodel import SQLModel

from hub.oauth.scopes import Scope
from policies import FieldType

ENCRYPTED = "encrypted at rest"
"""Why a sealed field is opaque to policy conditions."""


class Action(enum.StrEnum):
    READ = "read"
    CREATE = "create"
    UPDATE = "update"


def camel(name: str) -> str:
    """The API spelling of a snake_case name (as strawberry converts field names)."""
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


@dataclass(frozen=True)
class FieldSpec:
    """One field of a resource: a column of its table, or *derived* from one.

    ``api``: the output fields showing it; an entry without a dot is a field of the
    resource's own type, ``"Consent.source"`` names another type; ``None`` (the default)
    means the camelCase name on the resource's own type, ``()`` not in the API.
    ``inputs``: the mutation input fields setting it, ``"Type.field"`` or just ``"Type"``
    for the camelCase name. ``filters``: the fields of the resource's filter input that
    reveal it (snake_case, as the hub's filter takes them). ``values``: the values of the
    enum the API types it as (no mask output can be one). ``sealed``: stored encrypted,
    so a policy condition may only test it with ``is_null``. ``derived_from``: the column
    a derived field is computed from (``organization`` is that organization's slug, any
    other derived field the column's value). ``orderable``: a value of the resource's
    order enum.
    """

    name: str
    type: FieldType
    api: tuple[str, ...] | None = None
    inputs: tuple[str, ...] = ()
    filters: tuple[str, ...] = ()
    values: tuple[str, ...] = ()
    sealed: bool = False
    derived_from: str | None = None
    orderable: bool = False

    @property
    def column(self) -> str:
        """The table column holding (or computing) the value."""
        return self.derived_from or self.name

    @property
    def opaque(self) -> str | None:
        """Why only ``is_null`` may test the field in a condition, or ``None``."""
        return ENCRYPTED if self.sealed else None


@dataclass(frozen=True)
class RelationSpec:
    """A relation a policy's dotted path may cross (``customer.region``): the rows of
    ``target`` whose ``remote`` column equals this row's ``local`` column; ``many`` for
    one-to-many (a condition across it then means "any")."""

    name: str
    target: str
    local: str
    remote: str
    many: bool = False


@dataclass(frozen=True)
class Order:
    """A resource's default list order (ties broken by ``id``)."""

    field: str
    descending: bool = False


@dataclass(frozen=True)
class ResourceSpec:
    """One resource, declared once.

    ``api_type`` is its GraphQL output type; ``node``: a Relay node whose global ids
    name ``api_type``; ``reached_by``: the root and connection fields returning it (they
    go from a schema that shows none of its fields). ``mutations`` (``Mutation`` field
    names) and ``inputs`` (input type names) say which action each performs.
    ``filter_type`` and ``order_enum`` name its filter input and its order-field enum.
    ``internal``: columns of the table that are never shown (blind indexes).
    ``entity``: a federation entity keyed by ``id`` (``@key(fields: "id")``), which
    remote subgraphs may extend with fields of their own (:mod:`hub.federation`).
    """

    table: type[SQLModel]
    api_type: str
    fields: tuple[FieldSpec, ...]
    scopes: Mapping[Action, Scope]
    default_order: Order
    node: bool = False
    entity: bool = False
    reached_by: tuple[str, ...] = ()
    relations: tuple[RelationSpec, ...] = ()
    mutations: Mapping[str, Action] = field(default_factory=dict)
    inputs: Mapping[str, Action] = field(default_factory=dict)
    filter_type: str | None = None
    order_enum: str | None = None
    internal: frozenset[str] = frozenset()

    @property
    def table_name(self) -> str:
        return str(self.table.__tablename__)

    def field_named(self, name: str) -> FieldSpec:
        for spec in self.fields:
            if spec.name == name:
                return spec
        raise KeyError(f"{self.api_type} has no field {name!r}")

    def relation_named(self, name: str) -> RelationSpec:
        for spec in self.relations:
            if spec.name == name:
                return spec
        raise KeyError(f"{self.api_type} has no relation {name!r}")

    @property
    def stored(self) -> frozenset[str]:
        """The fields that are columns (not derived): what a projection may carry."""
        return frozenset(f.name for f in self.fields if f.derived_from is None)

    def outputs(self, spec: FieldSpec) -> tuple[str, ...]:
        """The output coordinates showing ``spec``."""
        names = (camel(spec.name),) if spec.api is None else spec.api
        return tuple(name if "." in name else f"{self.api_type}.{name}" for name in names)

    def input_fields(self, spec: FieldSpec) -> tuple[str, ...]:
        """The mutation input coordinates setting ``spec``."""
        return tuple(name if "." in name else f"{name}.{camel(spec.name)}" for name in spec.inputs)

    def filter_fields(self, spec: FieldSpec) -> tuple[str, ...]:
        """The filter input coordinates revealing ``spec``."""
        return tuple(f"{self.filter_type}.{camel(name)}" for name in spec.filters)

    def coordinates(self, spec: FieldSpec) -> tuple[str, ...]:
        """Every schema coordinate ``spec`` feeds: outputs, inputs and filters."""
        return (*self.outputs(spec), *self.input_fields(spec), *self.filter_fields(spec))

    @property
    def filters(self) -> dict[str, tuple[str, ...]]:
        """Filter field -> the fields it reveals (all must be readable to use it)."""
        found: dict[str, tuple[str, ...]] = {}
        for spec in self.fields:
            for name in spec.filters:
                found[name] = (*found.get(name, ()), spec.name)
        return found

    @property
    def orderable(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields if f.orderable)
