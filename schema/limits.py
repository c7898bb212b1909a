"""Operation limits: depth, aliases, root fields, directives, several operations.

The limits are checked *before* graphql-core's standard validation, which is costly on
wide documents (overlapping-fields checks are quadratic); a refused document never reaches
it. Each refusal carries its own ``extensions.code``. The token limit is graphql-core's
parser option (strawberry's ``MaxTokensLimiter``); document size is checked by the HTTP view.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    validate,
)
from graphql.validation import ASTValidationRule
from strawberry.extensions import SchemaExtension

from hub.settings import Settings
from schema.input_guard import literal_errors

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

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        return cls(
            max_depth=settings.max_depth,
            max_aliases=settings.max_aliases,
            max_root_fields=settings.max_root_fields,
            max_directives_per_field=settings.max_directives_per_field,
        )


def _error(message: str, code: str, node: Any = None) -> GraphQLError:
    return GraphQLError(message, node, extensions={"code": code})


class _Document:
    """One document's operations and fragments, with per-fragment memoised measures."""

    def __init__(self, document: DocumentNode) -> None:
        self.operations = [
            d for d in document.definitions if isinstance(d, OperationDefinitionNode)
        ]
        self.fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        self._heights: dict[str, int] = {}
        self._aliases: dict[str, int] = {}
        self._widths: dict[str, int] = {}

    def fields(self, selection_set: SelectionSetNode | None) -> list[FieldNode]:
        """The distinct fields of a selection set, each fragment expanded once."""
        found: list[FieldNode] = []
        visited: set[str] = set()

        def walk(selections: SelectionSetNode | None) -> None:
            for selection in () if selections is None else selections.selections:
                if isinstance(selection, FieldNode):
                    found.append(selection)
                elif isinstance(selection, InlineFragmentNode):
                    walk(selection.selection_set)
                elif isinstance(selection, FragmentSpreadNode):
                    name = selection.name.value
                    fragment = self.fragments.get(name)
                    if fragment is not None and name not in visited:
                        visited.add(name)
                        walk(fragment.selection_set)

        walk(selection_set)
        return found

    def width(self, selection_set: SelectionSetNode | None, seen: frozenset[str]) -> int:
        """Fields selected at this level, as executed: a fragment counts at every spread."""
        if selection_set is None:
            return 0
        count = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                count += 1
            elif isinstance(selection, InlineFragmentNode):
                count += self.width(selection.selection_set, seen)
            elif isinstance(selection, FragmentSpreadNode):
                count += self._fragment(selection.name.value, seen, self._widths, self.width)
        return count

    def height(self, selection_set: SelectionSetNode | None, seen: frozenset[str]) -> int:
        """Levels of fields below a selection set; fragments measured once (memoised)."""
        if selection_set is None:
            return 0
        deepest = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                deepest = max(deepest, 1 + self.height(selection.selection_set, seen))
            elif isinstance(selection, InlineFragmentNode):
                deepest = max(deepest, self.height(selection.selection_set, seen))
            elif isinstance(selection, FragmentSpreadNode):
                deepest = max(
                    deepest, self._fragment(selection.name.value, seen, self._heights, self.height)
                )
        return deepest

    def aliases(self, selection_set: SelectionSetNode | None, seen: frozenset[str]) -> int:
        """Aliased fields that execution would produce: a fragment counts at every spread."""
        if selection_set is None:
            return 0
        count = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                count += (selection.alias is not None) + self.aliases(selection.selection_set, seen)
            elif isinstance(selection, InlineFragmentNode):
                count += self.aliases(selection.selection_set, seen)
            elif isinstance(selection, FragmentSpreadNode):
                count += self._fragment(selection.name.value, seen, self._aliases, self.aliases)
        return count

    def _fragment(
        self,
        name: str,
        seen: frozenset[str],
        memo: dict[str, int],
        measure: Callable[[SelectionSetNode | None, frozenset[str]], int],
    ) -> int:
        if name in memo:
            return memo[name]
        fragment = self.fragments.get(name)
        if fragment is None or name in seen:
            return 0  # unknown fragments and cycles are reported by standard validation
        memo[name] = value = measure(fragment.selection_set, seen | {name})
        return value

    def introspection_depth(
        self, field: FieldNode, depth: int, links: tuple[str, ...]
    ) -> int | None:
        """Depth below an introspection field; ``None`` when a type link repeats on a path."""
        name = field.name.value
        if name in _TYPE_LINKS:
            if name in links:
                return None
            links = (*links, name)
        if depth > _INTROSPECTION_MAX_DEPTH:
            return depth  # already over the limit: stop walking
        deepest = depth
        for child in self.fields(field.selection_set):
            below = self.introspection_depth(child, depth + 1, links)
            if below is None:
                return None
            deepest = max(deepest, below)
        return deepest


def check_limits(document: DocumentNode, limits: Limits) -> list[GraphQLError]:
    """Every limit the document breaks (empty when it is within all of them)."""
    doc = _Document(document)
    errors: list[GraphQLError] = []
    aliases = 0
    for operation in doc.operations:
        aliases += doc.aliases(operation.selection_set, frozenset())
        width = doc.width(operation.selection_set, frozenset())
        if width > limits.max_root_fields:
            errors.append(
                _error(
                    f"operation selects {width} root fields; the limit is {limits.max_root_fields}",
                    "MAX_ROOT_FIELDS_EXCEEDED",
                    operation,
                )
            )
        for field in doc.fields(operation.selection_set):
            if field.name.value.startswith("__"):
                depth = doc.introspection_depth(field, 1, ())
                if depth is None:
                    errors.append(
                        _error(
                            "introspection may not follow a type link twice on one path",
                            "MAX_DEPTH_EXCEEDED",
                            field,
                        )
                    )
                    continue
                limit = _INTROSPECTION_MAX_DEPTH
            else:
                depth = 1 + doc.height(field.selection_set, frozenset())
                limit = limits.max_depth
            if depth > limit:
                errors.append(
                    _error(
                        f"operation is {depth} levels deep; the limit is {limit}",
                        "MAX_DEPTH_EXCEEDED",
                        field,
                    )
                )
    if aliases > limits.max_aliases:
        errors.append(
            _error(
                f"document uses {aliases} aliases; the limit is {limits.max_aliases}",
                "MAX_ALIASES_EXCEEDED",
            )
        )
    errors.extend(_directive_errors(document, limits.max_directives_per_field))
    return errors


def _directive_errors(node: Any, limit: int) -> Iterator[GraphQLError]:
    """Directives on any one field, fragment spread, inline fragment or operation."""
    directives = getattr(node, "directives", None) or ()
    if len(directives) > limit:
        yield _error(
            f"one location carries {len(directives)} directives; the limit is {limit}",
            "MAX_DIRECTIVES_EXCEEDED",
            node,
        )
    for definition in getattr(node, "definitions", ()):
        yield from _directive_errors(definition, limit)
    selection_set = getattr(node, "selection_set", None)
    if selection_set is not None:
        for selection in selection_set.selections:
            yield from _directive_errors(selection, limit)


@lru_cache(maxsize=512)
def _standard_validation(
    schema: GraphQLSchema, document: DocumentNode, rules: tuple[type[ASTValidationRule], ...]
) -> list[GraphQLError]:
    return validate(schema, document, rules)


class OperationLimitsExtension(SchemaExtension):
    """Validation with the operation limits first; standard rules only within limits.

    Example::

        schema = strawberry.Schema(
            Query, extensions=[lambda: OperationLimitsExtension(Limits(10, 30, 20, 4))]
        )
    """

    def __init__(self, limits: Limits) -> None:
        self.limits = limits

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        assert document is not None
        # Refused literals (NUL, integers beyond 64 bits) before standard validation, whose
        # scalar parsing cannot render a 5,000-digit integer (:mod:`schema.input_guard`).
        errors = check_limits(document, self.limits) + literal_errors(document)
        if not errors:
            errors = _standard_validation(
                context.schema._schema, document, tuple(context.validation_rules)
            )
        operations = sum(isinstance(d, OperationDefinitionNode) for d in document.definitions)
        # GraphQL spec §6.1 GetOperation: several operations need an operationName (the one
        # the client sent: strawberry otherwise falls back to the first operation).
        if not errors and operations > 1 and context._provided_operation_name is None:
            errors = [
                _error(
                    "the document has several operations: name the one to run in operationName",
                    "OPERATION_NAME_REQUIRED",
                )
            ]
        # Setting the errors (even an empty list) tells strawberry validation has run.
        context.pre_execution_errors = errors
        yield
