"""Operation limits as validation rules: depth, aliases, root fields, directives per field.

Each refusal carries its own ``extensions.code`` so clients can tell which limit they hit.
The token limit is graphql-core's parser option (strawberry's ``MaxTokensLimiter``) and
document size is checked by the HTTP view before parsing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from graphql import (
    FieldNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
    ValidationRule,
)

# Introspection fields that lead from a type to other types: asking for one of them twice
# on one path is the "circular introspection" denial-of-service query.
_TYPE_LINKS = frozenset({"fields", "inputFields", "interfaces", "possibleTypes", "types", "args"})
_INTROSPECTION_MAX_DEPTH = 16


@dataclass(frozen=True)
class Limits:
    max_depth: int
    max_aliases: int
    max_root_fields: int
    max_directives_per_field: int


def _error(message: str, code: str, node: Any) -> GraphQLError:
    return GraphQLError(message, node, extensions={"code": code})


def _rule(limits: Limits) -> type[ValidationRule]:
    class OperationLimitsRule(ValidationRule):
        def enter_operation_definition(self, node: OperationDefinitionNode, *_: Any) -> None:
            context: ValidationContext = self.context
            root_fields = list(_fields(context, node.selection_set, set()))
            if len(root_fields) > limits.max_root_fields:
                self.report_error(
                    _error(
                        f"operation selects {len(root_fields)} root fields; "
                        f"the limit is {limits.max_root_fields}",
                        "MAX_ROOT_FIELDS_EXCEEDED",
                        node,
                    )
                )
            for field in root_fields:
                introspection = field.name.value.startswith("__")
                depth = _depth(context, field, 1, (), introspection)
                limit = _INTROSPECTION_MAX_DEPTH if introspection else limits.max_depth
                if depth is None:
                    self.report_error(
                        _error(
                            "introspection may not follow a type link twice on one path",
                            "MAX_DEPTH_EXCEEDED",
                            field,
                        )
                    )
                elif depth > limit:
                    self.report_error(
                        _error(
                            f"operation is {depth} levels deep; the limit is {limit}",
                            "MAX_DEPTH_EXCEEDED",
                            field,
                        )
                    )

        def enter_document(self, node: Any, *_: Any) -> None:
            aliases = 0
            for definition in node.definitions:
                aliases += _count_aliases(definition)
            if aliases > limits.max_aliases:
                self.report_error(
                    _error(
                        f"document uses {aliases} aliases; the limit is {limits.max_aliases}",
                        "MAX_ALIASES_EXCEEDED",
                        node,
                    )
                )

        def enter_field(self, node: FieldNode, *_: Any) -> None:
            directives = len(node.directives or ())
            if directives > limits.max_directives_per_field:
                self.report_error(
                    _error(
                        f"a field carries {directives} directives; "
                        f"the limit is {limits.max_directives_per_field}",
                        "MAX_DIRECTIVES_EXCEEDED",
                        node,
                    )
                )

    return OperationLimitsRule


def _fields(
    context: ValidationContext, selection_set: SelectionSetNode | None, seen: set[str]
) -> list[FieldNode]:
    """The fields of a selection set with fragments expanded (each fragment once)."""
    found: list[FieldNode] = []
    if selection_set is None:
        return found
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            found.append(selection)
        elif isinstance(selection, InlineFragmentNode):
            found.extend(_fields(context, selection.selection_set, seen))
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            fragment = context.get_fragment(name)
            if fragment is not None and name not in seen:
                found.extend(_fields(context, fragment.selection_set, seen | {name}))
    return found


def _depth(
    context: ValidationContext,
    field: FieldNode,
    depth: int,
    links: tuple[str, ...],
    introspection: bool,
) -> int | None:
    """Depth below and including ``field``; ``None`` for a cyclic introspection path."""
    name = field.name.value
    if introspection and name in _TYPE_LINKS:
        if name in links:
            return None
        links = (*links, name)
    deepest = depth
    if depth > _INTROSPECTION_MAX_DEPTH + 1:
        return deepest  # already over every limit: stop walking
    for child in _fields(context, field.selection_set, set()):
        below = _depth(context, child, depth + 1, links, introspection)
        if below is None:
            return None
        deepest = max(deepest, below)
    return deepest


def _count_aliases(node: Any) -> int:
    count = 0
    selection_set = getattr(node, "selection_set", None)
    if isinstance(node, FieldNode) and node.alias is not None:
        count += 1
    if selection_set is not None:
        for selection in selection_set.selections:
            count += _count_aliases(selection)
    return count


def operation_limits_rule(limits: Limits) -> type[ValidationRule]:
    """The validation rule enforcing ``limits`` (add with ``AddValidationRules``)."""
    return _rule(limits)
