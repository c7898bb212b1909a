"""The hub's graph with the subgraphs' contributions, as graphql-core sees it.

:func:`extension_document` is what the GraphQL layer applies to the hub's schema
(``graphql.extend_schema``): each hub entity extended with its remote fields (made
nullable: a subgraph that is down answers ``null`` with an error, never a failed
parent), plus the subgraphs' own types those fields reach. :func:`composition_problems`
checks the subgraphs compose with each other and with the hub's entities before an SDL
is accepted; the GraphQL layer applies the extension to the full schema, where a clash
with any other hub type is refused too (that subgraph is then left out, and logged).
"""

from __future__ import annotations

from collections.abc import Sequence

from graphql import (
    DefinitionNode,
    DocumentNode,
    FieldDefinitionNode,
    GraphQLError,
    NamedTypeNode,
    NameNode,
    NonNullTypeNode,
    ObjectTypeDefinitionNode,
    ObjectTypeExtensionNode,
    TypeNode,
    build_ast_schema,
    parse,
)

from hub.federation.sdl import ENTITIES, SubgraphShape, _without_directives


def _nullable(type_: TypeNode) -> TypeNode:
    return type_.type if isinstance(type_, NonNullTypeNode) else type_


def extension_document(shapes: Sequence[SubgraphShape]) -> DocumentNode:
    """``extend type Customer { ... }`` and the own types, without federation's
    directives (they mean nothing in the hub's schema)."""
    by_type: dict[str, list[FieldDefinitionNode]] = {}
    definitions: list[DefinitionNode] = []
    for shape in shapes:
        for field in shape.fields:
            node = field.definition
            by_type.setdefault(field.type_name, []).append(
                FieldDefinitionNode(
                    description=node.description,
                    name=node.name,
                    arguments=(),
                    type=_nullable(node.type),
                    directives=(),
                )
            )
        definitions.extend(_without_directives(t) for t in shape.types)
    extensions = [
        ObjectTypeExtensionNode(
            name=NameNode(value=type_name), interfaces=(), directives=(), fields=tuple(fields)
        )
        for type_name, fields in by_type.items()
    ]
    return DocumentNode(definitions=(*extensions, *definitions))


def composition_problems(shapes: Sequence[SubgraphShape]) -> list[str]:
    """Whether the subgraphs' contributions build, together, on the hub's entities."""
    base = [
        ObjectTypeDefinitionNode(
            name=NameNode(value=type_name),
            interfaces=(),
            directives=(),
            fields=(
                FieldDefinitionNode(
                    name=NameNode(value="id"),
                    arguments=(),
                    directives=(),
                    type=NonNullTypeNode(type=NamedTypeNode(name=NameNode(value="ID"))),
                ),
            ),
        )
        for type_name in ENTITIES
    ]
    query = parse("type Query { _entities: [String] }").definitions[0]
    extension = extension_document(shapes)
    try:
        build_ast_schema(DocumentNode(definitions=(*base, query, *extension.definitions)))
    except (GraphQLError, TypeError) as error:
        return [f"the subgraphs do not compose: {error}"]
    return []
