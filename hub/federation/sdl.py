"""Reading a subgraph's SDL: which fields it adds to the hub's entities, and which of its
own types those fields reach (DESIGN §7).

A subgraph contributes by extending a hub entity (:data:`ENTITIES`: ``Customer``,
``Feedback``, ``Case``) keyed exactly as the hub keys it, ``@key(fields: "id")``::

    type Customer @key(fields: "id") {
      id: ID!
      loyaltyTier: String          # a remote field of Customer
      loyalty: LoyaltyAccount      # ... reaching the subgraph's own type
    }

Its own types reachable from those fields (objects, enums, scalars) come with them; the
rest of the subgraph (its root fields, other types) stays its own business and is not
composed. Refused, with a message naming the type and field: an SDL that does not parse
or does not build as a schema, an entity of the hub keyed otherwise, a field the hub
already has, a remote field with arguments, ``@requires``/``@external``/``@provides``,
an own type that leads back into a hub entity, interfaces and unions among the own types.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from graphql import (
    DefinitionNode,
    DirectiveDefinitionNode,
    DirectiveNode,
    DocumentNode,
    EnumTypeDefinitionNode,
    FieldDefinitionNode,
    GraphQLError,
    ListTypeNode,
    NamedTypeNode,
    NonNullTypeNode,
    ObjectTypeDefinitionNode,
    ObjectTypeExtensionNode,
    ScalarTypeDefinitionNode,
    SchemaDefinitionNode,
    SchemaExtensionNode,
    StringValueNode,
    TypeDefinitionNode,
    TypeNode,
    build_ast_schema,
    parse,
)

from hub.access.registry import REGISTRY, Resource
from policies import FieldType

ENTITIES: Mapping[str, Resource] = {
    spec.api_type: resource for resource, spec in REGISTRY.items() if spec.entity
}
"""The hub's federation entities (``@key(fields: "id")``), by API type: what a subgraph
may extend (the registry's ``entity`` flag). ``tests/schema/test_federation_entities.py``
checks it against the schema's ``_Entity`` union."""

BUILT_IN_SCALARS = frozenset({"String", "Int", "Float", "Boolean", "ID"})
_UNSUPPORTED_DIRECTIVES = frozenset({"requires", "external", "provides", "override"})
_POLICY_TYPES = {
    "String": FieldType.STRING,
    "ID": FieldType.STRING,
    "Int": FieldType.INTEGER,
    "Float": FieldType.NUMBER,
    "Boolean": FieldType.BOOLEAN,
}


class SubgraphRefused(Exception):
    """A subgraph's SDL cannot be composed; ``problems`` says why, one line each."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = list(problems)


@dataclass(frozen=True)
class RemoteField:
    """A field a subgraph adds to a hub entity."""

    subgraph: str
    type_name: str
    resource: Resource
    name: str
    definition: FieldDefinitionNode
    policy_type: FieldType

    @property
    def coordinate(self) -> str:
        return f"{self.type_name}.{self.name}"


@dataclass(frozen=True)
class SubgraphShape:
    """What one subgraph's SDL contributes: its remote fields and its own types."""

    name: str
    sdl: str
    fields: tuple[RemoteField, ...]
    types: tuple[TypeDefinitionNode, ...]

    @property
    def type_names(self) -> frozenset[str]:
        return frozenset(t.name.value for t in self.types)


def reserved_fields(type_name: str) -> frozenset[str]:
    """The fields the hub's own ``type_name`` has (a subgraph may not add them again):
    every API field the registry declares on it and the connections reaching from it."""
    resource = ENTITIES[type_name]
    spec = REGISTRY[resource]
    names = {"id", "consent", "customerRef"}
    for coordinates in (
        [c for f in spec.fields for c in spec.outputs(f)],
        [c for s in REGISTRY.values() for c in s.reached_by],
    ):
        names.update(c.split(".", 1)[1] for c in coordinates if c.startswith(f"{type_name}."))
    return frozenset(names)


def analyse(name: str, sdl: str) -> SubgraphShape:
    """What subgraph ``name`` contributes, or :class:`SubgraphRefused`."""
    try:
        document = parse(sdl)
    except GraphQLError as error:
        raise SubgraphRefused([f"the SDL does not parse: {error.message}"]) from None
    _builds(document)
    problems: list[str] = []
    definitions = _own_definitions(document)
    fields: list[RemoteField] = []
    for node in document.definitions:
        if not isinstance(node, ObjectTypeDefinitionNode | ObjectTypeExtensionNode):
            continue
        type_name = node.name.value
        resource = ENTITIES.get(type_name)
        if resource is None:
            continue
        keys = [_key_fields(d) for d in node.directives or () if d.name.value == "key"]
        if keys != ["id"]:
            problems.append(
                f'{type_name}: the hub keys it by @key(fields: "id") only; the subgraph '
                f"declares {', '.join(repr(k) for k in keys) or 'no @key'}"
            )
            continue
        reserved = reserved_fields(type_name)
        for field in node.fields or ():
            field_name = field.name.value
            where = f"{type_name}.{field_name}"
            if field_name == "id":
                if _named(field.type) != "ID":
                    problems.append(f"{where}: the key must be an ID")
                continue
            if field_name in reserved:
                problems.append(f"{where}: the hub already has this field")
                continue
            used = {d.name.value for d in field.directives or ()} & _UNSUPPORTED_DIRECTIVES
            if used:
                problems.append(f"{where}: @{', @'.join(sorted(used))} is not supported")
                continue
            if field.arguments:
                problems.append(f"{where}: fields with arguments are not supported")
                continue
            fields.append(
                RemoteField(name, type_name, resource, field_name, field, _policy_type(field.type))
            )
    if not fields and not problems:
        problems.append(
            "the subgraph adds no field to a hub entity (extend "
            f'{" or ".join(sorted(ENTITIES))} with @key(fields: "id"))'
        )
    own = _reachable([f.definition for f in fields], definitions, problems)
    if problems:
        raise SubgraphRefused(problems)
    return SubgraphShape(name, sdl, tuple(fields), tuple(own))


def check_together(shapes: Iterable[SubgraphShape]) -> list[str]:
    """Problems of composing these subgraphs with each other: a field of a hub entity or
    an own type name that two of them define."""
    problems: list[str] = []
    fields: dict[str, str] = {}
    types: dict[str, str] = {}
    for shape in shapes:
        for field in shape.fields:
            other = fields.setdefault(field.coordinate, shape.name)
            if other != shape.name:
                problems.append(
                    f"{field.coordinate} is defined by both '{other}' and '{shape.name}'"
                )
        for type_name in shape.type_names:
            other = types.setdefault(type_name, shape.name)
            if other != shape.name:
                problems.append(f"type {type_name} is defined by both '{other}' and '{shape.name}'")
    return problems


def _builds(document: DocumentNode) -> None:
    """The SDL must build as a schema (every type it names defined): federation's
    directives are set aside first, since the SDL may import them by link alone."""
    kept: list[DefinitionNode] = []
    for node in document.definitions:
        if isinstance(node, SchemaDefinitionNode | SchemaExtensionNode | DirectiveDefinitionNode):
            continue
        kept.append(_without_directives(node))
    stripped = DocumentNode(definitions=tuple(kept))
    if not any(isinstance(n, ObjectTypeDefinitionNode) and n.name.value == "Query" for n in kept):
        stripped = DocumentNode(
            definitions=(*kept, parse("type Query { _placeholder: Boolean }").definitions[0])
        )
    try:
        build_ast_schema(stripped)
    except (GraphQLError, TypeError) as error:
        raise SubgraphRefused([f"the SDL does not build a schema: {error}"]) from None


def _without_directives(node: DefinitionNode) -> DefinitionNode:
    """``node`` with no directive on it or its fields (federation's, which the SDL links)."""
    make: Any = node.__class__
    fields = getattr(node, "fields", None)
    if fields is not None:
        fields = tuple(f.__class__(**{**_attrs(f), "directives": ()}) for f in fields)
        result: DefinitionNode = make(**{**_attrs(node), "directives": (), "fields": fields})
        return result
    if hasattr(node, "directives"):
        result = make(**{**_attrs(node), "directives": ()})
        return result
    return node


def _attrs(node: object) -> dict[str, object]:
    return {key: getattr(node, key) for key in node.keys if key != "loc"}  # type: ignore[attr-defined]


def _key_fields(directive: DirectiveNode) -> str:
    for argument in directive.arguments or ():
        if argument.name.value == "fields" and isinstance(argument.value, StringValueNode):
            return " ".join(argument.value.value.split())
    return ""


def _named(type_: TypeNode) -> str:
    while isinstance(type_, NonNullTypeNode | ListTypeNode):
        type_ = type_.type
    assert isinstance(type_, NamedTypeNode)
    return type_.name.value


def _policy_type(type_: TypeNode) -> FieldType:
    inner = type_.type if isinstance(type_, NonNullTypeNode) else type_
    if isinstance(inner, ListTypeNode):
        item = _named(inner.type)
        return FieldType.STRING_LIST if item in ("String", "ID") else FieldType.JSON
    return _POLICY_TYPES.get(_named(inner), FieldType.JSON)


def _own_definitions(document: DocumentNode) -> dict[str, TypeDefinitionNode]:
    return {
        node.name.value: node
        for node in document.definitions
        if isinstance(node, TypeDefinitionNode) and node.name.value not in ENTITIES
    }


def _reachable(
    roots: Sequence[FieldDefinitionNode],
    definitions: Mapping[str, TypeDefinitionNode],
    problems: list[str],
) -> list[TypeDefinitionNode]:
    """The subgraph's own types the remote fields reach, in the order first reached."""
    found: dict[str, TypeDefinitionNode] = {}
    pending = [(f.name.value, _named(f.type)) for f in roots]
    while pending:
        where, type_name = pending.pop(0)
        if type_name in BUILT_IN_SCALARS or type_name in found:
            continue
        if type_name in ENTITIES:
            problems.append(f"{where}: the subgraph's own types may not lead back to {type_name}")
            continue
        node = definitions.get(type_name)
        if isinstance(node, ObjectTypeDefinitionNode):
            found[type_name] = node
            pending += [(f"{type_name}.{f.name.value}", _named(f.type)) for f in node.fields or ()]
        elif isinstance(node, EnumTypeDefinitionNode | ScalarTypeDefinitionNode):
            found[type_name] = node
        else:
            problems.append(f"{where}: {type_name} must be an object, enum or scalar type")
    return list(found.values())
