"""The per-audience schema: each caller validates, introspects and executes against a schema
without the fields and types its access never shows (DESIGN §5).

How it plugs into strawberry: an audience's schema is a shallow copy of the
:class:`~schema.HubSchema` whose graphql-core schema (``_schema``) is the pruned one
(:func:`schema._prune.prune_schema`). strawberry validates (through
:class:`~schema.limits.OperationLimitsExtension`), answers introspection and executes with
``self._schema``, so all three see the audience's schema, while the copy keeps everything
else: extensions, configuration, error processing, the context and its DataLoaders. The
pruned schema shares the resolvers, scalars, enums and strawberry definitions of the full
one, so a field executes the same in every audience. A hidden field is simply unknown to
validation: its error is the one of a field that does not exist.

Each audience schema is built once, on its first request, and kept in a bounded LRU keyed
by ``access.audience(principal)``; publishing new rules (another ``access.rules`` object,
or another ``access.rules.version``) empties it. Choosing the schema of a request is the
audience key and a dict lookup.

Federation: the full schema is the hub's, extended with the fields of the accepted remote
subgraphs (:class:`schema.federation.Composer`, rebuilt with the rules, which change
whenever the subgraphs do); a remote field is shown to an audience exactly when some rule
shows it. ``_service { sdl }`` answers the SDL of the caller's audience, so a partner
cannot read hidden fields there either. Composing the company supergraph therefore needs
the SDL fetched with a hub administrator's token (the full schema); an operator client
without ``hub:admin`` gets every data field but no admin field, which composes too.
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

from graphql import GraphQLFieldResolver, GraphQLResolveInfo, GraphQLSchema
from strawberry.printer import print_schema

from hub.access import Resource, access
from hub.federation.state import federation
from hub.principal import Principal
from schema import HubSchema
from schema._prune import prune_schema
from schema.audience import FEEDERS, TYPE_RESOURCES, hidden_coordinates
from schema.federation import Composer
from schema.withheld import withholding

MAX_AUDIENCES = 256
_BACKREF = "strawberry-definition"  # GraphQLCoreConverter.DEFINITION_BACKREF

_WITHHOLDABLE = frozenset(c for c in FEEDERS if c.split(".")[0] in TYPE_RESOURCES)


def _wrapper(sdl: GraphQLFieldResolver) -> Callable[..., Any]:
    """The resolver wrapping of one audience: withholding on the fields that may be
    withheld, and ``_Service.sdl`` printing this audience's schema."""

    def wrap(type_name: str, field_name: str, resolve: GraphQLFieldResolver | None) -> Any:
        if f"{type_name}.{field_name}" in _WITHHOLDABLE:
            return withholding(resolve)
        if (type_name, field_name) == ("_Service", "sdl"):
            return sdl
        return resolve

    return wrap


def _printer() -> GraphQLFieldResolver:
    printed: list[str] = []

    def sdl(_root: Any, info: GraphQLResolveInfo[Any]) -> str:
        if not printed:
            printed.append(print_schema(info.schema._strawberry_schema))  # type: ignore[attr-defined]
        return printed[0]

    return sdl


def with_graphql_schema(full: HubSchema, pruned: GraphQLSchema) -> HubSchema:
    """A shallow copy of ``full`` that validates, introspects and executes with ``pruned``
    (strawberry reads ``self._schema`` for all three; ``info.schema`` leads back here)."""
    schema = copy.copy(full)
    schema._schema = pruned
    pruned._strawberry_schema = schema  # type: ignore[attr-defined]
    pruned.extensions[_BACKREF] = schema
    return schema


class AudienceSchemas:
    """The schema of each audience, built on first use (bounded LRU)."""

    def __init__(self, full: HubSchema, maxsize: int = MAX_AUDIENCES) -> None:
        self.composer = Composer(full, with_graphql_schema)
        self.full = full
        self.remote: dict[str, tuple[Resource, str]] = {}
        self.maxsize = maxsize
        self._schemas: OrderedDict[Hashable, HubSchema] = OrderedDict()
        self._rules: object = None
        self._version: object = None

    def for_principal(self, principal: Principal) -> HubSchema:
        rules = access.rules
        version = getattr(rules, "version", None)
        if rules is not self._rules or version != self._version:
            # New rules: every audience may see another schema (and old keys may be reused).
            # New subgraphs come with new rules (their fields are in the policy catalog).
            self._schemas.clear()
            self._rules, self._version = rules, version
            current = federation.current
            self.full = self.composer.schema(current)
            self.remote = {c: (f.resource, f.name) for c, f in current.fields.items()}
        key = access.audience(principal)
        schema = self._schemas.get(key)
        if schema is None:
            schema = self._build(principal)
            self._schemas[key] = schema
            if len(self._schemas) > self.maxsize:
                self._schemas.popitem(last=False)
        else:
            self._schemas.move_to_end(key)
        return schema

    def _build(self, principal: Principal) -> HubSchema:
        full = self.full._schema
        hidden = hidden_coordinates(full, principal, self.remote)
        pruned = prune_schema(full, hidden, _wrapper(_printer()))
        return with_graphql_schema(self.full, pruned)
