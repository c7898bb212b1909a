"""The strawberry type of each registry resource, and the connections made from the registry.

The resource registry (:mod:`hub.access.registry`) names each resource's API type as a
string; the type itself is a hand-written strawberry class in its area
(``schema/<area>/types.py``), which registers it here with :func:`resource_type`. From
those registrations, and without naming any resource:

- :data:`NODE_CLASSES`: the type of every Relay node (``node``/``nodes``, the schema's
  extra types);
- :func:`registry_connections`: on a parent type, a connection field for every resource
  the registry says is reached by ``Parent.<field>`` (``Customer.feedback``), paged
  along the resource's parent relation (:mod:`hub.related`, ``Loaders.pages``).

:func:`complete` runs once every area is imported (``schema/__init__.py``): it checks
that every resource has a type, fills :data:`NODE_CLASSES` and gives each generated
connection the description its resource's type declared.

Example (an ``Order`` resource whose registry entry says ``reached_by=("Query.orders",
"Customer.orders")``, in ``schema/orders/types.py``)::

    @resource_type(Resource.ORDER, connections={"Customer.orders": "Orders, newest first."})
    @strawberry.type(description="An order a customer placed.")
    class Order(Node):
        uuid: strawberry.Private[uuid.UUID]
        ...

        @classmethod
        def from_record(cls, record: Record) -> Order: ...
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from typing import Any, Protocol, TypeVar

import strawberry
from strawberry.types.field import StrawberryField
from strawberry.types.info import Info
from strawberry.types.lazy_type import LazyType

from hub.access import REGISTRY, Record, Resource
from hub.access.specs import camel
from schema.common import Connection, connection
from schema.context import Context

T = TypeVar("T")
C = TypeVar("C", bound=type)


class FromRecord(Protocol):
    """A resource's API type: built from a record the access module projected."""

    @classmethod
    def from_record(cls, record: Record) -> Any: ...


API_TYPES: dict[Resource, type[FromRecord]] = {}
"""Resource -> its strawberry type, as the areas registered them (:func:`resource_type`)."""

NODE_CLASSES: dict[Resource, type[FromRecord]] = {}
"""The strawberry type of each node of the registry (:data:`hub.access.registry.NODES`),
in registry order; filled by :func:`complete`. tests/hub/test_registry.py checks it, the
registry and the schema's ``Node`` implementations agree."""

_DESCRIPTIONS: dict[str, str] = {}  # "Parent.field" -> its description, from the registrations
_GENERATED: dict[str, StrawberryField] = {}  # "Parent.field" -> the generated field


def resource_type(
    resource: Resource, *, connections: Mapping[str, str] | None = None
) -> Callable[[C], C]:
    """Register a strawberry type (applied above ``@strawberry.type``) as the API type of
    ``resource``; its GraphQL name must be the registry's ``api_type``. ``connections``
    describes the connections listing the resource (``{"Customer.orders": "..."}``) that
    :func:`registry_connections` generates on their parent types."""

    def register(cls: C) -> C:
        definition = getattr(cls, "__strawberry_definition__", None)
        expected = REGISTRY[resource].api_type
        if definition is None or definition.name != expected:
            raise TypeError(
                f"@resource_type({resource.name}) goes above @strawberry.type on the type "
                f"named {expected!r} (the registry's api_type)"
            )
        if API_TYPES.setdefault(resource, cls) is not cls:
            raise TypeError(f"{resource.name} already has the type {API_TYPES[resource]!r}")
        for coordinate, text in (connections or {}).items():
            if coordinate not in REGISTRY[resource].reached_by:
                raise TypeError(
                    f"{coordinate} does not list {resource.value}: the registry's reached_by "
                    f"of {resource.value} does not name it"
                )
            _DESCRIPTIONS[coordinate] = text
        return cls

    return register


async def related_connection(
    info: Info[Context, None],
    resource: Resource,
    parent_id: uuid.UUID,
    first: int | None,
    after: str | None,
    convert: Callable[[Record], T],
) -> Connection[T]:
    """One page of ``resource`` hanging off ``parent_id`` (its registry parent relation),
    batched with the other parents of the request (``Loaders.pages``, ``Loaders.counts``)."""
    loaders = info.context.loaders
    page = await loaders.pages.load((resource, parent_id, first, after))
    return connection(page, convert, lambda: loaders.counts.load((resource, parent_id)))


def registry_connections(cls: C) -> C:
    """Class decorator, applied below ``@strawberry.type``: give ``cls`` a connection
    field for each resource whose registry ``reached_by`` names ``<cls name>.<field>``
    and whose parent relation leads to ``cls``'s resource, unless the class defines that
    field itself. Arguments ``first`` and ``after``; the rows come from
    :func:`related_connection` (``cls`` must hold its record's id as ``uuid``).

    The generated fields come after the class's plain fields and before its own
    resolvers, in registry order, so the schema's field order does not depend on which
    area defined a field."""
    parent = cls.__name__
    own = {
        name: value
        for name, value in vars(cls).items()
        if isinstance(value, StrawberryField) and value.base_resolver is not None
    }
    own_names = {value.graphql_name or camel(name) for name, value in own.items()}
    for name in own:
        delattr(cls, name)  # re-added below, after the generated fields
    parent_resource = next((r for r, s in REGISTRY.items() if s.api_type == parent), None)
    for resource, spec in REGISTRY.items():
        for coordinate in spec.reached_by:
            type_name, _, field_name = coordinate.partition(".")
            if type_name != parent or field_name in own_names:
                continue
            relation = next((r for r in spec.relations if not r.many), None)
            if parent_resource is None or relation is None or relation.target != parent_resource:
                raise TypeError(
                    f"{coordinate}: {resource.value} has no parent relation to {parent} to "
                    "list it by; declare one in the registry or write the field by hand"
                )
            field = _connection_field(resource, field_name)
            _GENERATED[coordinate] = field
            setattr(cls, _snake(field_name), field)
    for name, value in own.items():
        setattr(cls, name, value)
    return cls


class _Registered(LazyType[str, str]):
    """The registered type of a resource, found when the schema is built: a parent type is
    defined before the areas whose types its generated connections list register them."""

    def resolve_type(self) -> type[Any]:
        found = [t for r, t in API_TYPES.items() if REGISTRY[r].api_type == self.type_name]
        if not found:
            raise TypeError(f"no strawberry type registered for {self.type_name}")
        return found[0]


def _connection_field(resource: Resource, name: str) -> StrawberryField:
    async def resolve(
        root: Any, info: Info[Context, None], first: int | None = None, after: str | None = None
    ) -> Any:
        convert = API_TYPES[resource].from_record
        return await related_connection(info, resource, root.uuid, first, after, convert)

    listed = _Registered(REGISTRY[resource].api_type, __name__)
    field: StrawberryField = strawberry.field(
        resolver=resolve,
        name=name,
        graphql_type=Connection[listed],  # type: ignore[valid-type]
    )
    return field


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)


def complete() -> None:
    """Check the registrations once every area is imported: every registry resource has a
    type, every generated connection a registered type and parent column; fill
    :data:`NODE_CLASSES` and the generated connections' descriptions."""
    missing = [r.value for r in REGISTRY if r not in API_TYPES]
    if missing:
        raise TypeError(
            f"no strawberry type registered for {', '.join(missing)}: decorate each in its "
            "area's types.py with @resource_type (schema/resource_types.py)"
        )
    unused = sorted(set(_DESCRIPTIONS) - set(_GENERATED))
    if unused:
        raise TypeError(f"descriptions for connections that are written by hand: {unused}")
    for coordinate, field in _GENERATED.items():
        field.description = _DESCRIPTIONS.get(coordinate)
    NODE_CLASSES.clear()
    NODE_CLASSES.update({r: API_TYPES[r] for r, spec in REGISTRY.items() if spec.node})
