"""Fields withheld on one row: ``null`` in the data, their paths in the response extensions.

A policy may hide a field of the caller's schema on some rows only (the access module lists
them under :data:`hub.access.WITHHELD` in the record). The types keep the GraphQL names of
those fields in a private ``withheld`` attribute (:func:`schema.audience.withheld_fields`);
each audience schema wraps the resolvers of the fields that can be withheld with
:func:`withholding`, which answers ``null`` and notes the response path in the context.
The HTTP view lists the paths still in the data under ``extensions.withheld``, so a client
tells "withheld" from "empty". When nothing is withheld the cost is one attribute test per
such field.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from graphql import GraphQLFieldResolver, GraphQLResolveInfo, default_field_resolver

PathItem = str | int


def withholding(resolve: GraphQLFieldResolver | None) -> GraphQLFieldResolver:
    """``resolve``, answering ``null`` (and noting the path) for a withheld field."""
    inner = resolve or default_field_resolver

    def resolve_unless_withheld(source: Any, info: GraphQLResolveInfo[Any], **args: Any) -> Any:
        withheld = source.withheld
        if withheld and info.field_name in withheld:
            paths: list[list[PathItem]] | None = getattr(info.context, "withheld", None)
            if paths is not None:
                paths.append(info.path.as_list())
            return None
        return inner(source, info, **args)

    return resolve_unless_withheld


def _at(data: Any, path: list[PathItem]) -> tuple[bool, Any]:
    """Whether ``path`` is in ``data``, and the value there."""
    for key in path:
        if isinstance(key, int):
            if not isinstance(data, list) or key >= len(data):
                return False, None
        elif not isinstance(data, dict) or key not in data:
            return False, None
        data = data[key]
    return True, data


def _order(path: list[PathItem]) -> list[tuple[int, int, str]]:
    return [(1, key, "") if isinstance(key, int) else (0, 0, key) for key in path]


def withheld_paths(noted: Iterable[list[PathItem]], data: Any) -> list[list[PathItem]]:
    """The noted paths that are in the response (a parent nulled by an error, or a field
    skipped by a directive, is not), each once, in a stable order."""
    found: dict[tuple[PathItem, ...], list[PathItem]] = {}
    for path in noted:
        present, value = _at(data, path)
        if present and value is None:
            found[tuple(path)] = path
    return sorted(found.values(), key=_order)
