"""The hub's full schema with the accepted subgraphs' fields (graphql-core).

:meth:`Composer.schema` extends the full :class:`~schema.HubSchema` with
:func:`hub.federation.compose.extension_document` (``graphql.extend_schema``), gives each
remote field its resolver (:func:`schema.federation.fetch.remote_resolver`) and each of
the subgraphs' own types resolvers reading the subgraph's answer by response key, and
returns a copy of the HubSchema executing with it (:func:`schema.visibility`'s
``with_graphql_schema``). Built once per set of accepted SDLs. A subgraph whose
contribution does not extend the hub's schema (a type name the hub has: the store's
checks know the entities' fields, not every hub type) is left out and logged; the rest
still composes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from graphql import (
    GraphQLEnumType,
    GraphQLError,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLResolveInfo,
    GraphQLSchema,
    GraphQLUnionType,
    extend_schema,
)

from hub.federation.compose import extension_document
from hub.federation.sdl import SubgraphShape
from hub.federation.state import Federation
from schema.federation.fetch import remote_resolver

logger = logging.getLogger(__name__)

Copy = Callable[[Any, GraphQLSchema], Any]


def _by_response_key(source: Any, info: GraphQLResolveInfo[Any]) -> Any:
    """A field of a subgraph's own type: its value in the subgraph's answer, which was
    asked with the client's own aliases."""
    return source.get(info.path.key) if isinstance(source, dict) else None


def _union_resolver(original: GraphQLUnionType | GraphQLInterfaceType) -> Any:
    """strawberry's type resolver checks the member it finds against the union (or
    interface) it was built for: ask it about that one (graphql-core checks the name in
    the copy)."""
    resolve = original.resolve_type
    if resolve is None:
        return None

    def resolve_type(value: Any, info: GraphQLResolveInfo[Any], abstract: Any) -> Any:
        del abstract
        return resolve(value, info, original)

    return resolve_type


def extended(base: GraphQLSchema, shapes: Sequence[SubgraphShape]) -> GraphQLSchema:
    """``base`` with the subgraphs' fields and types, resolvers set; raises
    :class:`graphql.GraphQLError` (or ``TypeError``) when they do not fit."""
    schema = extend_schema(base, extension_document(shapes))
    for name, type_ in schema.type_map.items():
        original = base.type_map.get(name)
        abstract = (GraphQLUnionType, GraphQLInterfaceType)
        if isinstance(type_, abstract) and isinstance(original, abstract):
            type_.resolve_type = _union_resolver(original)
        elif (
            isinstance(type_, GraphQLEnumType)
            and isinstance(original, GraphQLEnumType)
            and type(type_) is not type(original)
        ):
            # extend_schema rebuilds enums as plain GraphQLEnumType; strawberry's subclass
            # serializes its Python enum members (``Segment.SMB``): keep its class.
            type_.__class__ = type(original)
            type_.__dict__.update(
                {k: v for k, v in original.__dict__.items() if k not in type_.__dict__}
            )
    for shape in shapes:
        for remote in shape.fields:
            owner = schema.type_map[remote.type_name]
            assert isinstance(owner, GraphQLObjectType)
            owner.fields[remote.name].resolve = remote_resolver(remote)
        for node in shape.types:
            own = schema.type_map[node.name.value]
            if isinstance(own, GraphQLObjectType):
                for field in own.fields.values():
                    field.resolve = _by_response_key
    return schema


class Composer:
    """The full schema for each :class:`~hub.federation.state.Federation` (the last one
    kept: replicas serve one set of subgraphs at a time)."""

    def __init__(self, full: Any, copy: Copy) -> None:
        self.full = full
        self._copy = copy
        self._identity: object = ()
        self._composed: Any = full

    def schema(self, federation: Federation) -> Any:
        if federation.identity == self._identity:
            return self._composed
        shapes = list(federation.shapes)
        base: GraphQLSchema = self.full._schema
        graph: GraphQLSchema | None = None
        while shapes:
            try:
                graph = extended(base, shapes)
                break
            except (GraphQLError, TypeError) as error:
                # Find the subgraph that does not fit, leave it out, compose the rest.
                culprit = next((s for s in shapes if not _fits(base, s)), shapes[-1])
                logger.error("subgraph %s left out of the schema: %s", culprit.name, error)
                shapes.remove(culprit)
        self._composed = self.full if graph is None else self._copy(self.full, graph)
        self._identity = federation.identity
        return self._composed


def _fits(base: GraphQLSchema, shape: SubgraphShape) -> bool:
    try:
        extended(base, [shape])
    except (GraphQLError, TypeError):
        return False
    return True
