"""From a validated operation to a plan (DESIGN §11).

A plan is what the operation asks of the hub, decided once: for each root field, which
records (a page of customers, one customer), and for each record type the response keys
to emit with a small function each (a value read from the projected record and
serialized as its GraphQL type would, a global id, a ``__typename``, a nested connection
of related records). Fields are collected as graphql-core collects them: fragments
(named and inline, with their type conditions), aliases, ``@skip``/``@include`` and
the merging of equal response keys, in document order.

Anything a plan does not cover raises :class:`Unsupported` while planning, and the
operation runs on the resolver path instead; so does anything unusual found while running
(see :mod:`schema.compiled.execute`). The plan never widens what the caller may see: it is
built against the caller's own (pruned) schema, after validation, and every record it
emits comes from the access module's projection.
"""

from __future__ import annotations

import enum
import uuid
import weakref
from collections.abc import Callable, Container, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLEnumType,
    GraphQLField,
    GraphQLIncludeDirective,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLScalarType,
    GraphQLSchema,
    GraphQLSkipDirective,
    GraphQLString,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    get_named_type,
    get_nullable_type,
)
from graphql.execution.values import (
    VariableValues,
    get_argument_values,
    get_directive_values,
)
from sqlalchemy import ColumnElement
from strawberry.types.arguments import convert_arguments
from strawberry.types.base import has_object_definition

from hub import customers, related
from hub.access import REGISTRY, Record, Resource
from hub.access.registry import NODES
from hub.federation.sdl import RemoteField
from hub.federation.state import federation
from hub.organizations import OrganizationRef
from hub.pagination import Ordering
from hub.principal import Principal
from schema.customers.queries import CustomerFilter
from schema.customers.types import PROVENANCE_PATHS
from schema.federation.fetch import selection_text
from schema.ids import customer_reference, expect_id, from_global_id, to_global_id

Path = tuple[str | int, ...]
Emit = Callable[[Record], Any]
"""Computes one response value from a projected record (withholding is decided apart)."""


class Unsupported(Exception):
    """The compiled path does not cover this operation (or this run of it): the resolver
    path answers it. The message says what, for the logs."""


@dataclass(slots=True)
class ObjectPlan:
    """The response keys of one record type at one place of the operation, in response
    order: (response key, GraphQL field name, what to emit): an :data:`Emit` for a value,
    an :class:`ObjectPlan` for the customer's ``consent``, a :class:`ConnectionPlan` for
    related records (loaded for all records of the level at once before anything is
    emitted)."""

    type_name: str
    resource: Resource
    entries: list[
        tuple[
            str, str, Emit | ObjectPlan | ConnectionPlan | LinkPlan | OrganizationPlan | RemotePlan
        ]
    ] = field(default_factory=list)

    @property
    def nested(self) -> list[ConnectionPlan]:
        return [sub for _, _, sub in self.entries if isinstance(sub, ConnectionPlan)]

    @property
    def links(self) -> list[LinkPlan]:
        return [sub for _, _, sub in self.entries if isinstance(sub, LinkPlan)]

    @property
    def organizations(self) -> list[OrganizationPlan]:
        return [sub for _, _, sub in self.entries if isinstance(sub, OrganizationPlan)]

    @property
    def remotes(self) -> list[tuple[str, RemotePlan]]:
        return [(key, sub) for key, _, sub in self.entries if isinstance(sub, RemotePlan)]


@dataclass(slots=True)
class RemotePlan:
    """A field a remote subgraph provides (``Customer.loyaltyTier``,
    :mod:`hub.federation`): fetched after the local records are known, for the rows whose
    decision shows it, one ``_entities`` request per subgraph and ``level`` (the depth of
    the record's object in the operation), as the resolver path fetches it.

    ``selection`` is the sub-selection the subgraph receives, printed as the resolver
    path prints it; ``complete`` turns the (masked) value into its response value as
    graphql-core completes it; ``nodes`` are the field's nodes, for the locations of an
    error."""

    remote: RemoteField
    selection: str
    level: int
    complete: Callable[[Any], Any]
    nodes: tuple[FieldNode, ...]


@dataclass(slots=True)
class LinkPlan:
    """A link to one record of another resource by a field holding its id
    (``Feedback.customer`` by ``customer_id``): ``null`` when the field is not in the
    record (hidden, withheld) or the record is not the caller's."""

    feeder: str
    resource: Resource
    object: ObjectPlan


@dataclass(slots=True)
class ProvenancePlan:
    """``Customer.provenance``: who set each field the row shows, from the record's
    ``provenance`` stamps (per field: organization, connector, time, approver), as
    :func:`schema.customers.types._provenance` lists them. ``parts``: (response key,
    ``FieldProvenance`` field or ``__typename``, how its value is serialized). Called
    with a projected record it is the record path's :data:`Emit`; the SQL path reads the
    stamps in SQL and calls :meth:`entries` with the fields the row shows."""

    parts: list[tuple[str, str, Callable[[Any], Any] | None]]

    def __call__(self, record: Record) -> list[dict[str, Any]] | None:
        return self.entries(record.get("provenance"), record)

    def entries(self, stamps: Any, shown: Container[str]) -> list[dict[str, Any]] | None:
        """The entries of ``stamps`` for the fields in ``shown``, by field name."""
        if not isinstance(stamps, dict):
            return None
        out: list[dict[str, Any]] = []
        for name in sorted(stamps):
            stamp = stamps[name]
            if name not in shown or not isinstance(stamp, dict):
                continue
            entry: dict[str, Any] = {}
            for key, part, serialize in self.parts:
                if serialize is None:
                    entry[key] = _PROVENANCE_TYPE
                    continue
                if part == "field":
                    value: Any = PROVENANCE_PATHS.get(name, name)
                elif part == "at":
                    at = stamp.get("at")
                    value = datetime.fromisoformat(at) if isinstance(at, str) else None
                else:
                    value = stamp.get(_PROVENANCE_KEYS.get(part, part))
                entry[key] = serialize(value)
            out.append(entry)
        return out


@dataclass(slots=True)
class OrganizationPlan:
    """A link to the organization a field holds the id of (``Feedback.organization``,
    ``Case.assignedTo``): its name and kind, which any caller seeing the id may know
    (:class:`hub.organizations.OrganizationRef`); ``null`` when the field is not in the
    record. ``parts``: (response key, ``slug`` | ``name`` | ``kind`` | ``__typename``,
    how the value is serialized)."""

    feeder: str
    type_name: str
    parts: list[tuple[str, str, GraphQLOutputType | None]]
    serializers: list[Callable[[Any], Any] | None] = field(default_factory=list)

    def emit(self, ref: OrganizationRef) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for (key, name, _), serialize in zip(self.parts, self.serializers, strict=True):
            out[key] = self.type_name if serialize is None else serialize(getattr(ref, name))
        return out


ORGANIZATION_FIELDS = ("slug", "name", "kind")
"""The fields of an organization a link shows (those of ``OrganizationRef``)."""


@dataclass(slots=True)
class EdgePlan:
    type_name: str
    parts: list[tuple[str, str, ObjectPlan | None]]
    """(response key, ``node`` | ``cursor`` | ``__typename``, the node's plan)."""


@dataclass(slots=True)
class PageInfoPlan:
    parts: list[tuple[str, str]]
    """(response key, field name)."""


@dataclass(slots=True)
class ConnectionPlan:
    """A connection: which page of which resource, and the keys of its response."""

    type_name: str
    resource: Resource
    first: int | None
    after: str | None
    parts: list[tuple[str, str, EdgePlan | PageInfoPlan | None]]
    """(response key, ``edges`` | ``pageInfo`` | ``totalCount`` | ``__typename``, ...)."""

    @property
    def counted(self) -> bool:
        return any(part == "totalCount" for _, part, _ in self.parts)

    @property
    def objects(self) -> list[ObjectPlan]:
        found: list[ObjectPlan] = []
        for _, part, sub in self.parts:
            if part == "edges" and isinstance(sub, EdgePlan):
                found.extend(node for _, kind, node in sub.parts if node is not None)
        return found


@runtime_checkable
class ListFilter(Protocol):
    """The filter input of a root list other than ``customers`` (``feedback(filter:)``):
    what the list selects for a caller, as its resolver's hub function selects it.

    Example (a list whose hub module has ``filter_conditions``)::

        @strawberry.input
        class OrderFilter:
            status: OrderStatus | None = None

            def to_hub(self) -> orders.OrderFilter: ...

            def conditions(self, principal: Principal) -> list[ColumnElement[bool]]:
                return orders.filter_conditions(principal, self.to_hub())
    """

    def conditions(self, principal: Principal) -> list[ColumnElement[bool]]:
        """The row policy and the filter (raising as the list would refuse it)."""
        ...


@dataclass(slots=True)
class ListRoot:
    """A root list of a resource (``customers``, ``feedback``: every ``Query.<field>``
    the registry says reaches it whose type is a connection). ``filter`` is the strawberry
    input as the resolver receives it (its default when not given), ``order`` the
    customers' ``orderBy``."""

    connection: ConnectionPlan
    resource: Resource
    filter: Any
    order: Any = None

    def query(self, principal: Principal) -> tuple[list[ColumnElement[bool]], Ordering]:
        """The list's conditions (its row policy among them) and its keyset order."""
        if self.resource is Resource.CUSTOMER:
            flt = (self.filter or CustomerFilter()).to_hub()
            order = None if self.order is None else self.order.to_hub()
            return customers.filter_conditions(principal, flt), customers.ordering_for(
                principal, order
            )
        if not isinstance(self.filter, ListFilter):
            raise Unsupported(f"the filter of a {self.resource.value} list")
        return self.filter.conditions(principal), related.ordering(self.resource)


@dataclass(slots=True)
class RecordRoot:
    """One record by id (``customer(id)``, ``node(id)``): ``record_id`` is ``None``
    for an id that names no record the caller's schema has (the answer is ``null``)."""

    resource: Resource
    record_id: uuid.UUID | None
    object: ObjectPlan | None


@dataclass(slots=True)
class NodesRoot:
    """``nodes(ids)``: one record per id, in order."""

    items: list[RecordRoot]


@dataclass(slots=True)
class TypenameRoot:
    type_name: str


Root = ListRoot | RecordRoot | NodesRoot | TypenameRoot


@dataclass(slots=True)
class Plan:
    roots: list[tuple[str, Root]]


# --- the fields a record type emits, read from the registry -------------------------------

_OWN: dict[str, dict[str, str]] = {}
"""Output type -> GraphQL field -> the record key it shows, for fields one catalog field
feeds (every registry output coordinate ``Type.field`` with a single feeder)."""
_feeders: dict[str, list[str]] = {}
for _resource, _spec in REGISTRY.items():
    for _field in _spec.fields:
        for _coordinate in _spec.outputs(_field):
            _feeders.setdefault(_coordinate, []).append(_field.name)
_CUSTOMER_REFS: frozenset[tuple[str, str]] = frozenset(
    tuple(c.split(".", 1))  # type: ignore[misc]
    for c, names in _feeders.items()
    if sorted(names) == ["customer_id", "customer_ref"]
)
"""Fields showing the customer a record is about, or its pseudonym (``customerRef``)."""
for _coordinate, _names in _feeders.items():
    if len(_names) == 1:
        _type, _, _name = _coordinate.partition(".")
        _OWN.setdefault(_type, {})[_name] = _names[0]
del _feeders

_RESOURCE_OF_TYPE: dict[str, Resource] = {spec.api_type: r for r, spec in REGISTRY.items()}

_ROOTS: dict[str, Resource] = {
    coordinate.removeprefix("Query."): resource
    for resource, spec in REGISTRY.items()
    for coordinate in spec.reached_by
    if coordinate.startswith("Query.")
}
"""Root field -> the resource it reads (``customers``, ``customer``, ``feedback``)."""

_ORGANIZATION_TYPE = "Organization"

_CONNECTIONS: dict[str, Resource] = {
    coordinate: resource
    for resource, spec in REGISTRY.items()
    for coordinate in spec.reached_by
    if not coordinate.startswith("Query.")
}
"""``Type.field`` -> the related resource its connection lists (``Customer.feedback``)."""

_CONSENT_TYPE = "Consent"
_PROVENANCE_TYPE = "FieldProvenance"
_PROVENANCE_KEYS = {"approvedBy": "approved_by"}
"""The stamp's key of a ``FieldProvenance`` field, where the two differ."""

CONSENT_FIELDS = (
    "consent_share_with_partners",
    "consent_marketing_opt_in",
    "consent_given_at",
    "consent_source",
)
"""The record keys feeding ``Customer.consent`` (as ``Customer.from_record`` reads them)."""


def _enum_names(type_: GraphQLEnumType) -> dict[Any, str]:
    names: dict[Any, str] = {}
    for name, value in type_.values.items():
        raw = value.value.value if isinstance(value.value, enum.Enum) else value.value
        names[raw] = name
    return names


def serializer(type_: GraphQLOutputType) -> Callable[[Any], Any]:
    """How graphql-core completes a leaf value of ``type_`` (as the resolvers return it
    from a record: enums as their stored value, converted as ``enum_or_none`` does)."""
    nullable = get_nullable_type(type_)
    if isinstance(nullable, GraphQLList):
        item = serializer(nullable.of_type)

        def serialize_list(value: Any) -> Any:
            return None if value is None else [item(v) for v in value]

        return serialize_list
    if isinstance(nullable, GraphQLEnumType):
        names = _enum_names(nullable)

        def serialize_enum(value: Any) -> Any:
            if value is None:
                return None
            try:
                return names[value]
            except (KeyError, TypeError):
                raise Unsupported(f"{nullable.name} has no value {value!r}") from None

        return serialize_enum
    if isinstance(nullable, GraphQLScalarType):
        serialize = nullable.serialize
        if nullable.name in ("String", "ID"):

            def serialize_text(value: Any) -> Any:
                return value if value is None or type(value) is str else serialize(value)

            return serialize_text

        def serialize_scalar(value: Any) -> Any:
            return None if value is None else serialize(value)

        return serialize_scalar
    raise Unsupported(f"{type_} is not a leaf")


class Field:
    """How a leaf is computed, for compilers: ``kind`` is ``value`` (the record's ``key``
    serialized as ``graphql_type``), ``global_id``, ``customer_ref`` or ``constant``."""

    __slots__ = ("constant", "graphql_type", "key", "kind")

    def __init__(
        self,
        kind: str,
        key: str = "",
        graphql_type: GraphQLOutputType | None = None,
        constant: str = "",
    ) -> None:
        self.kind = kind
        self.key = key
        self.graphql_type = graphql_type
        self.constant = constant


FIELDS: weakref.WeakKeyDictionary[Emit, Field] = weakref.WeakKeyDictionary()
"""What each leaf's emit function computes (compilers read it; the record path calls it)."""


def _value(key: str, type_: GraphQLOutputType) -> Emit:
    serialize = serializer(type_)

    def emit(record: Record) -> Any:
        return serialize(record.get(key))

    FIELDS[emit] = Field("value", key, type_)
    return emit


def _global_id(type_name: str) -> Emit:
    def emit(record: Record) -> Any:
        return to_global_id(type_name, record["id"])

    FIELDS[emit] = Field("global_id", "id")
    return emit


def customer_ref(record: Record) -> Any:
    """``customerRef``: the pseudonym a policy masks it to, or the customer's global id
    (as ``Feedback.customer_ref`` and ``Case.customer_ref`` resolve it)."""
    return customer_reference(record.get("customer_id"), record.get("customer_ref"))


def _constant(value: str) -> Emit:
    def emit(record: Record) -> Any:
        del record
        return value

    FIELDS[emit] = Field("constant", constant=value)
    return emit


# --- collecting fields as graphql-core does -----------------------------------------------


class _Collector:
    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: Mapping[str, FragmentDefinitionNode],
        variables: VariableValues,
    ) -> None:
        self.schema = schema
        self.fragments = fragments
        self.variables = variables

    def include(self, node: FieldNode | FragmentSpreadNode | InlineFragmentNode) -> bool:
        if not node.directives:
            return True
        skip = get_directive_values(GraphQLSkipDirective, node, self.variables)
        if skip and skip.get("if") is True:
            return False
        include = get_directive_values(GraphQLIncludeDirective, node, self.variables)
        return not (include and include.get("if") is False)

    def applies(self, condition: str | None, runtime: GraphQLObjectType) -> bool:
        if condition is None or condition == runtime.name:
            return True
        conditional = self.schema.get_type(condition)
        if conditional is None or isinstance(conditional, GraphQLObjectType):
            return False
        return self.schema.is_sub_type(conditional, runtime)  # type: ignore[arg-type]

    def collect(
        self, runtime: GraphQLObjectType, selection_sets: list[SelectionSetNode]
    ) -> dict[str, list[FieldNode]]:
        grouped: dict[str, list[FieldNode]] = {}
        visited: set[str] = set()
        for selection_set in selection_sets:
            self._visit(runtime, selection_set, grouped, visited)
        return grouped

    def _visit(
        self,
        runtime: GraphQLObjectType,
        selection_set: SelectionSetNode,
        grouped: dict[str, list[FieldNode]],
        visited: set[str],
    ) -> None:
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                if self.include(selection):
                    key = selection.alias.value if selection.alias else selection.name.value
                    grouped.setdefault(key, []).append(selection)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                if self.include(selection) and self.applies(
                    None if condition is None else condition.name.value, runtime
                ):
                    self._visit(runtime, selection.selection_set, grouped, visited)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                if name in visited or not self.include(selection):
                    continue
                visited.add(name)
                fragment = self.fragments.get(name)
                if fragment is None or not self.applies(
                    fragment.type_condition.name.value, runtime
                ):
                    continue
                self._visit(runtime, fragment.selection_set, grouped, visited)


def _sub_selections(nodes: list[FieldNode]) -> list[SelectionSetNode]:
    return [node.selection_set for node in nodes if node.selection_set is not None]


def _object_type(type_: GraphQLOutputType) -> GraphQLObjectType:
    nullable = get_nullable_type(type_)
    if not isinstance(nullable, GraphQLObjectType):
        raise Unsupported(f"{type_} is not an object type")
    return nullable


class Planner:
    """Builds the :class:`Plan` of one operation with its variables (coerced by
    graphql-core). ``strawberry_schema`` converts root arguments to the inputs the
    resolvers take."""

    def __init__(
        self,
        strawberry_schema: Any,
        operation: OperationDefinitionNode,
        fragments: Mapping[str, FragmentDefinitionNode],
        variables: VariableValues,
        max_ids: int,
    ) -> None:
        self.strawberry = strawberry_schema
        self.schema: GraphQLSchema = strawberry_schema._schema
        self.operation = operation
        self.variables = variables
        self.collector = _Collector(self.schema, fragments, variables)
        self.fragments = fragments
        self.max_ids = max_ids
        self.remote_fields = federation.current.fields
        self.depth = 0

    def plan(self) -> Plan:
        if self.operation.operation.value != "query":
            raise Unsupported(f"{self.operation.operation.value} operations")
        query = self.schema.query_type
        assert query is not None
        roots: list[tuple[str, Root]] = []
        for key, nodes in self.collector.collect(query, [self.operation.selection_set]).items():
            name = nodes[0].name.value
            if name == "__typename":
                roots.append((key, TypenameRoot(query.name)))
                continue
            definition = query.fields.get(name)
            if definition is None:
                raise Unsupported(f"Query.{name}")
            if name == "node":
                args = self._arguments(definition, nodes[0])
                roots.append((key, self._node(str(args["id"]), nodes)))
            elif name == "nodes":
                args = self._arguments(definition, nodes[0])
                ids = [str(i) for i in args["ids"]]
                if len(ids) > self.max_ids:
                    raise Unsupported("more ids than nodes accepts")
                roots.append((key, NodesRoot([self._node(i, nodes) for i in ids])))
            elif name == "_entities":
                roots.append((key, self._entities(definition, nodes)))
            elif name in _ROOTS:
                roots.append((key, self._root(_ROOTS[name], definition, nodes)))
            else:
                raise Unsupported(f"Query.{name}")
        return Plan(roots)

    def _root(self, resource: Resource, definition: GraphQLField, nodes: list[FieldNode]) -> Root:
        """A root field the registry says reaches ``resource``: one record by ``id``
        (``customer(id)``), or a list (a connection, ``feedback(first, after, filter)``)."""
        args = self._arguments(definition, nodes[0])
        api_type = REGISTRY[resource].api_type
        returned = get_nullable_type(definition.type)
        if isinstance(returned, GraphQLObjectType) and returned.name == api_type:
            if set(args) != {"id"}:
                raise Unsupported(f"{api_type} by {sorted(args)}")
            record_id = expect_id(str(args["id"]), api_type)
            return RecordRoot(resource, record_id, self._object(definition.type, nodes))
        if set(args) - {"first", "after", "filter", "order_by"}:
            raise Unsupported(f"a {api_type} list by {sorted(args)}")
        connection = self._connection(definition.type, resource, nodes, args)
        flt = args.get("filter")
        if resource is not Resource.CUSTOMER:
            if flt is None:
                flt = _default_input(definition, "filter")
            if not isinstance(flt, ListFilter):
                raise Unsupported(f"a {api_type} list without a ListFilter")
        return ListRoot(connection, resource, flt, args.get("order_by"))

    def _entities(self, definition: GraphQLField, nodes: list[FieldNode]) -> NodesRoot:
        """Federation ``_entities(representations)`` as ``HubSchema.entities_resolver``
        and each type's ``resolve_reference`` answer it: a representation is
        ``{__typename, id}`` of a member of the caller's ``_Entity`` union; its record
        by id (``null`` when the id is not one of that type's, missing or not yours).
        Anything else is refused (or fails) there, worded by the resolver path."""
        raw = get_argument_values(definition, nodes[0], self.variables)
        representations = raw.get("representations")
        union = self.schema.type_map.get("_Entity")
        members = {t.name for t in getattr(union, "types", ())}
        if not isinstance(representations, list) or len(representations) > self.max_ids:
            raise Unsupported("representations")
        items: list[RecordRoot] = []
        for rep in representations:
            if not (
                isinstance(rep, dict)
                and set(rep) == {"__typename", "id"}
                and rep["__typename"] in members
                and isinstance(rep["id"], str)
            ):
                raise Unsupported("a representation the resolvers refuse")
            type_name = rep["__typename"]
            runtime = self.schema.type_map[type_name]
            resource = _RESOURCE_OF_TYPE.get(type_name)
            if resource is None or not isinstance(runtime, GraphQLObjectType):
                raise Unsupported(f"entities of {type_name}")
            record_id = expect_id(rep["id"], type_name)
            items.append(RecordRoot(resource, record_id, self._object(runtime, nodes)))
        return NodesRoot(items)

    def _node(self, global_id: str, nodes: list[FieldNode]) -> RecordRoot:
        """``node(id)`` as ``schema.node.load_node`` resolves it: an id that is not a node
        id, or names a type the caller's schema does not have, answers ``null``."""
        parsed = from_global_id(global_id)
        if parsed is None or parsed[0] not in self.schema.type_map:
            return RecordRoot(Resource.CUSTOMER, None, None)
        type_name, record_id = parsed
        runtime = self.schema.type_map[type_name]
        assert isinstance(runtime, GraphQLObjectType)
        return RecordRoot(NODES[type_name], record_id, self._object(runtime, nodes))

    def _arguments(self, definition: GraphQLField, node: FieldNode) -> dict[str, Any]:
        raw = get_argument_values(definition, node, self.variables)
        strawberry_field = definition.extensions.get("strawberry-definition")
        if strawberry_field is None:
            raise Unsupported("a field without a strawberry definition")
        converted: dict[str, Any] = convert_arguments(
            raw,
            strawberry_field.arguments,
            scalar_registry=self.strawberry.schema_converter.scalar_registry,
            config=self.strawberry.config,
        )
        return converted

    def _connection(
        self,
        type_: GraphQLOutputType,
        resource: Resource,
        nodes: list[FieldNode],
        args: Mapping[str, Any],
    ) -> ConnectionPlan:
        connection_type = _object_type(type_)
        parts: list[tuple[str, str, EdgePlan | PageInfoPlan | None]] = []
        grouped = self.collector.collect(connection_type, _sub_selections(nodes))
        for key, fields in grouped.items():
            name = fields[0].name.value
            if name in ("__typename", "totalCount"):
                parts.append((key, name, None))
            elif name == "edges":
                edge_type = _object_type(
                    _list_item(connection_type.fields[name].type)  # [Edge!]!
                )
                parts.append((key, name, self._edge(edge_type, resource, fields)))
            elif name == "pageInfo":
                info_type = _object_type(connection_type.fields[name].type)
                info_parts = [
                    (k, f[0].name.value)
                    for k, f in self.collector.collect(info_type, _sub_selections(fields)).items()
                ]
                parts.append((key, name, PageInfoPlan(info_parts)))
            else:
                raise Unsupported(f"{connection_type.name}.{name}")
        return ConnectionPlan(
            connection_type.name,
            resource,
            args.get("first"),
            args.get("after"),
            parts,
        )

    def _edge(
        self, edge_type: GraphQLObjectType, resource: Resource, nodes: list[FieldNode]
    ) -> EdgePlan:
        parts: list[tuple[str, str, ObjectPlan | None]] = []
        for key, fields in self.collector.collect(edge_type, _sub_selections(nodes)).items():
            name = fields[0].name.value
            if name in ("__typename", "cursor"):
                parts.append((key, name, None))
            elif name == "node":
                parts.append((key, name, self._object(edge_type.fields[name].type, fields)))
            else:
                raise Unsupported(f"{edge_type.name}.{name}")
        del resource
        return EdgePlan(edge_type.name, parts)

    def _object(self, type_: GraphQLOutputType, nodes: list[FieldNode]) -> ObjectPlan:
        object_type = _object_type(type_)
        type_name = object_type.name
        resource = _RESOURCE_OF_TYPE.get(type_name)
        if resource is None:
            raise Unsupported(f"records of {type_name}")
        plan = ObjectPlan(type_name, resource)
        own = _OWN.get(type_name, {})
        self.depth += 1
        try:
            self._entries(plan, object_type, own, nodes)
        finally:
            self.depth -= 1
        return plan

    def _entries(
        self,
        plan: ObjectPlan,
        object_type: GraphQLObjectType,
        own: Mapping[str, str],
        nodes: list[FieldNode],
    ) -> None:
        type_name = object_type.name
        for key, fields in self.collector.collect(object_type, _sub_selections(nodes)).items():
            name = fields[0].name.value
            definition = object_type.fields.get(name)
            if name == "__typename":
                plan.entries.append((key, name, _constant(type_name)))
            elif definition is None:
                raise Unsupported(f"{type_name}.{name}")
            elif (
                name in own
                and get_named_type(definition.type).name in _RESOURCE_OF_TYPE
                and isinstance(get_named_type(definition.type), GraphQLObjectType)
            ):
                target = _RESOURCE_OF_TYPE[get_named_type(definition.type).name]
                link = LinkPlan(own[name], target, self._object(definition.type, fields))
                plan.entries.append((key, name, link))
            elif name in own and get_named_type(definition.type).name == _ORGANIZATION_TYPE:
                plan.entries.append(
                    (key, name, self._organization(own[name], definition.type, fields))
                )
            elif (type_name, name) == ("Customer", "provenance"):
                plan.entries.append((key, name, self._provenance(definition.type, fields)))
            elif name == "id" and get_named_type(definition.type).name == "ID":
                # Every record type's ``id`` is its global id (``from_record`` encodes it),
                # nodes or not (``CaseNote``).
                plan.entries.append((key, name, _global_id(type_name)))
            elif name in own:
                plan.entries.append((key, name, _value(own[name], definition.type)))
            elif (type_name, name) in _CUSTOMER_REFS:
                plan.entries.append((key, name, customer_ref))
            elif (type_name, name) == ("Customer", "consent"):
                plan.entries.append((key, name, self._consent(definition.type, fields)))
            elif f"{type_name}.{name}" in _CONNECTIONS:
                related = _CONNECTIONS[f"{type_name}.{name}"]
                args = self._arguments(definition, fields[0])
                plan.entries.append(
                    (key, name, self._connection(definition.type, related, fields, args))
                )
            elif f"{type_name}.{name}" in self.remote_fields:
                remote = self.remote_fields[f"{type_name}.{name}"]
                plan.entries.append((key, name, self._remote(remote, definition, fields)))
            else:
                raise Unsupported(f"{type_name}.{name}")

    def _remote(
        self, remote: RemoteField, definition: GraphQLField, nodes: list[FieldNode]
    ) -> RemotePlan:
        """A remote field of a hub record, ``Customer``, ``Feedback`` or ``Case`` (see
        :class:`RemotePlan`). The read audit notes it as a field of its record, which the
        plan's local part has noted already with the customer it is about."""
        if definition.args:
            raise Unsupported(f"arguments on {remote.coordinate}")
        # The resolver path prints it from its resolve info: the same nodes, fragments
        # and variables.
        info: Any = _SelectionSource(tuple(nodes), self.fragments, self.variables)
        return RemotePlan(
            remote,
            selection_text(info),
            self.depth,
            self._completer(definition.type, nodes),
            tuple(nodes),
        )

    def _completer(self, type_: GraphQLOutputType, nodes: list[FieldNode]) -> Callable[[Any], Any]:
        """How graphql-core completes a remote value of ``type_`` (the subgraph's answer,
        keyed by the client's response keys, read as ``_by_response_key`` reads it). A
        non-null type anywhere is left to the resolver path (a null there is an error
        that nulls the parent)."""
        if isinstance(type_, GraphQLNonNull):
            raise Unsupported(f"a non-null remote type {type_}")
        if isinstance(type_, GraphQLList):
            item = self._completer(type_.of_type, nodes)

            def complete_list(value: Any) -> Any:
                if value is None:
                    return None
                if not isinstance(value, list):
                    raise Unsupported("a remote list value that is not a list")
                return [item(v) for v in value]

            return complete_list
        if type_ is GraphQLString:

            def complete_string(value: Any) -> Any:
                # A page's worth of these: a str is its own serialization (as
                # GraphQLString.serialize answers it), anything else goes through it.
                if value is None or type(value) is str:
                    return value
                serialized = GraphQLString.serialize(value)
                if serialized is None:
                    raise Unsupported("a remote value String cannot show")
                return serialized

            return complete_string
        if isinstance(type_, GraphQLScalarType | GraphQLEnumType):
            leaf = type_

            def complete_leaf(value: Any) -> Any:
                if value is None:
                    return None
                serialized = leaf.serialize(value)
                if serialized is None:
                    raise Unsupported(f"a remote value {leaf.name} cannot show")
                return serialized

            return complete_leaf
        if isinstance(type_, GraphQLObjectType):
            object_type = type_
            parts: list[tuple[str, Callable[[Any], Any] | None]] = []
            for key, fields in self.collector.collect(object_type, _sub_selections(nodes)).items():
                name = fields[0].name.value
                if name == "__typename":
                    parts.append((key, None))
                    continue
                definition = object_type.fields.get(name)
                if definition is None or definition.args:
                    raise Unsupported(f"{object_type.name}.{name}")
                parts.append((key, self._completer(definition.type, fields)))

            def complete_object(value: Any) -> Any:
                if value is None:
                    return None
                if not isinstance(value, dict):
                    raise Unsupported("a remote object value that is not an object")
                return {
                    key: object_type.name if part is None else part(value.get(key))
                    for key, part in parts
                }

            return complete_object
        raise Unsupported(f"a remote value of {type_}")

    def _organization(
        self, feeder: str, type_: GraphQLOutputType, nodes: list[FieldNode]
    ) -> OrganizationPlan:
        organization_type = _object_type(type_)
        plan = OrganizationPlan(feeder, organization_type.name, [])
        for key, fields in self.collector.collect(
            organization_type, _sub_selections(nodes)
        ).items():
            name = fields[0].name.value
            if name == "__typename":
                plan.parts.append((key, name, None))
                plan.serializers.append(None)
            elif name in ORGANIZATION_FIELDS:
                field_type = organization_type.fields[name].type
                plan.parts.append((key, name, field_type))
                plan.serializers.append(serializer(field_type))
            else:
                raise Unsupported(f"{organization_type.name}.{name}")
        return plan

    def _provenance(self, type_: GraphQLOutputType, nodes: list[FieldNode]) -> ProvenancePlan:
        entry_type = get_named_type(type_)
        if not isinstance(entry_type, GraphQLObjectType):
            raise Unsupported(f"{type_} is not a list of objects")
        plan = ProvenancePlan([])
        for key, fields in self.collector.collect(entry_type, _sub_selections(nodes)).items():
            name = fields[0].name.value
            if name == "__typename":
                plan.parts.append((key, name, None))
            elif name in entry_type.fields:
                plan.parts.append((key, name, serializer(entry_type.fields[name].type)))
            else:
                raise Unsupported(f"{entry_type.name}.{name}")
        return plan

    def _consent(self, type_: GraphQLOutputType, nodes: list[FieldNode]) -> ObjectPlan:
        consent_type = _object_type(type_)
        own = _OWN.get(_CONSENT_TYPE, {})
        plan = ObjectPlan(_CONSENT_TYPE, Resource.CUSTOMER)
        for key, fields in self.collector.collect(consent_type, _sub_selections(nodes)).items():
            name = fields[0].name.value
            if name == "__typename":
                plan.entries.append((key, name, _constant(_CONSENT_TYPE)))
            elif name in own:
                plan.entries.append((key, name, _value(own[name], consent_type.fields[name].type)))
            else:
                raise Unsupported(f"{_CONSENT_TYPE}.{name}")
        return plan


@dataclass(frozen=True, slots=True)
class _SelectionSource:
    """What :func:`schema.federation.fetch.selection_text` reads of a resolve info."""

    field_nodes: tuple[FieldNode, ...]
    fragments: Mapping[str, FragmentDefinitionNode]
    variable_values: VariableValues


def _default_input(definition: GraphQLField, argument: str) -> Any:
    """The input a resolver's ``argument`` is when not given, built as strawberry would
    convert an empty one (``FeedbackFilter()``)."""
    strawberry_field = definition.extensions.get("strawberry-definition")
    for given in getattr(strawberry_field, "arguments", ()):
        if given.python_name == argument:
            type_ = given.type
            origin = getattr(type_, "of_type", type_)  # StrawberryOptional
            if isinstance(origin, type) and has_object_definition(origin):
                return origin()
    raise Unsupported(f"no {argument} input to default")


def _list_item(type_: GraphQLOutputType) -> GraphQLOutputType:
    nullable = get_nullable_type(type_)
    if not isinstance(nullable, GraphQLList):
        raise Unsupported(f"{type_} is not a list")
    item: GraphQLOutputType = nullable.of_type
    return item.of_type if isinstance(item, GraphQLNonNull) else item
