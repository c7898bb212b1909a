"""Resolvers of remote fields: what the row's decision shows, fetched through the
request's :class:`hub.federation.fetch.RemoteFetcher` (batched per subgraph and level).

A remote field resolves on an entity built from a projected record (``Customer``,
``Feedback``, ``Case``): its ``remote`` attribute holds the decisions of the remote
fields the row may show (:data:`hub.access.REMOTE`). A field the caller's schema has but
this row does not show answers ``null`` and is listed as withheld, like any field
withheld on a row. The sub-selection is forwarded as the client wrote it (aliases kept;
fragments inlined; variables replaced by their values; ``@skip``/``@include`` applied).
"""

from __future__ import annotations

from typing import Any

from graphql import (
    BooleanValueNode,
    FieldNode,
    FloatValueNode,
    FragmentSpreadNode,
    GraphQLIncludeDirective,
    GraphQLResolveInfo,
    GraphQLSkipDirective,
    InlineFragmentNode,
    IntValueNode,
    ListValueNode,
    NameNode,
    NullValueNode,
    ObjectFieldNode,
    ObjectValueNode,
    SelectionNode,
    SelectionSetNode,
    StringValueNode,
    ValueNode,
    VariableNode,
    print_ast,
)
from graphql.execution.values import get_directive_values

from hub.federation.sdl import RemoteField
from schema.ids import from_global_id

_Resolver = Any


def remote_resolver(remote: RemoteField) -> _Resolver:
    """The resolver of one remote field (see the module docstring)."""

    async def resolve(source: Any, info: GraphQLResolveInfo[Any]) -> Any:
        decisions = getattr(source, "remote", None)
        decision = decisions.get(remote.name) if decisions else None
        if decision is None:
            withheld: list[Any] | None = getattr(info.context, "withheld", None)
            if withheld is not None:
                withheld.append(info.path.as_list())
            return None
        entity_id = str(source.id)
        parsed = from_global_id(entity_id)
        if parsed is None:  # pragma: no cover - entities carry their own global ids
            return None
        return await info.context.remote.get(
            remote,
            entity_id,
            decision,
            selection_text(info),
            record_id=parsed[1],
            customer_id=getattr(source, "customer_id", None),
        )

    return resolve


def selection_text(info: GraphQLResolveInfo[Any]) -> str:
    """The field's sub-selection as the subgraph is to receive it ("" for a leaf)."""
    selections: list[SelectionNode] = []
    for node in info.field_nodes:
        if node.selection_set is not None:
            selections += _selections(node.selection_set, info)
    if not selections:
        return ""
    printed = print_ast(SelectionSetNode(selections=tuple(selections)))
    return " " + " ".join(line.strip() for line in printed.splitlines())


def _selections(
    selection_set: SelectionSetNode, info: GraphQLResolveInfo[Any]
) -> list[SelectionNode]:
    found: list[SelectionNode] = []
    for node in selection_set.selections:
        if not _included(node, info):
            continue
        if isinstance(node, FieldNode):
            found.append(
                FieldNode(
                    alias=node.alias,
                    name=node.name,
                    arguments=tuple(
                        a.__class__(name=a.name, value=_literal(a.value, info))
                        for a in node.arguments or ()
                    ),
                    directives=(),
                    selection_set=(
                        SelectionSetNode(selections=tuple(_selections(node.selection_set, info)))
                        if node.selection_set
                        else None
                    ),
                )
            )
        elif isinstance(node, FragmentSpreadNode):
            fragment = info.fragments[node.name.value]
            found.append(
                InlineFragmentNode(
                    type_condition=fragment.type_condition,
                    directives=(),
                    selection_set=SelectionSetNode(
                        selections=tuple(_selections(fragment.selection_set, info))
                    ),
                )
            )
        elif isinstance(node, InlineFragmentNode):
            found.append(
                InlineFragmentNode(
                    type_condition=node.type_condition,
                    directives=(),
                    selection_set=SelectionSetNode(
                        selections=tuple(_selections(node.selection_set, info))
                    ),
                )
            )
    return found


def _included(node: SelectionNode, info: GraphQLResolveInfo[Any]) -> bool:
    skip = get_directive_values(GraphQLSkipDirective, node, info.variable_values)
    if skip and skip.get("if") is True:
        return False
    include = get_directive_values(GraphQLIncludeDirective, node, info.variable_values)
    return not (include and include.get("if") is False)


def _literal(value: ValueNode, info: GraphQLResolveInfo[Any]) -> ValueNode:
    """``value`` with its variables replaced by the request's values."""
    if isinstance(value, VariableNode):
        variables: Any = info.variable_values
        return _to_ast(variables.get(value.name.value))
    if isinstance(value, ListValueNode):
        return ListValueNode(values=tuple(_literal(v, info) for v in value.values))
    if isinstance(value, ObjectValueNode):
        return ObjectValueNode(
            fields=tuple(
                ObjectFieldNode(name=f.name, value=_literal(f.value, info)) for f in value.fields
            )
        )
    return value


def _to_ast(value: Any) -> ValueNode:
    if value is None:
        return NullValueNode()
    if isinstance(value, bool):
        return BooleanValueNode(value=value)
    if isinstance(value, int):
        return IntValueNode(value=str(value))
    if isinstance(value, float):
        return FloatValueNode(value=repr(value))
    if isinstance(value, list | tuple):
        return ListValueNode(values=tuple(_to_ast(v) for v in value))
    if isinstance(value, dict):
        return ObjectValueNode(
            fields=tuple(
                ObjectFieldNode(name=NameNode(value=str(k)), value=_to_ast(v))
                for k, v in value.items()
            )
        )
    return StringValueNode(value=str(value))
