"""Operation limits: depth, aliases, root fields, directives, cost, several operations.

The limits are checked *before* graphql-core's standard validation, which is costly on
wide documents (overlapping-fields checks are quadratic); a refused document never reaches
it. Each refusal carries its own ``extensions.code``. The token limit is graphql-core's
parser option (strawberry's ``MaxTokensLimiter``); document size is checked by the HTTP view.

The cost (:func:`operation_cost`) is a static bound on the work of the operation that will
run: each field costs 1; a paged field (one taking ``first``/``last``) multiplies the cost
of what it selects by its page size (the argument, a literal or a variable's value, else
its default as the schema applies it); a list of objects without paging multiplies by the
length of its list argument (``nodes(ids:)``, ``_entities(representations:)``), else by
the default page size, except the list of a page's items (``edges``, ``nodes``), already
counted by its paged field. Fragments count at every spread; introspection costs 1.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLField,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    ListValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValueNode,
    VariableNode,
    get_named_type,
    get_nullable_type,
    is_list_type,
    parse,
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
    max_cost: int
    default_page_size: int
    """The page size of a paged field asked without ``first`` (for the cost)."""

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        return cls(
            max_depth=settings.max_depth,
            max_aliases=settings.max_aliases,
            max_root_fields=settings.max_root_fields,
            max_directives_per_field=settings.max_directives_per_field,
            max_cost=settings.max_cost,
            default_page_size=settings.default_page_size,
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


_PAGE_ARGUMENTS = ("first", "last")
_MAX_INT = 2**31 - 1  # GraphQL's Int (spec §3.5.1)


class _Cost:
    """The cost of one operation's selections against a schema, for given variables;
    fragments measured once per spread context (memoised, as :class:`_Document` does)."""

    def __init__(
        self,
        doc: _Document,
        schema: GraphQLSchema,
        variables: Mapping[str, Any],
        defaults: Mapping[str, ValueNode],
        default_page_size: int,
    ) -> None:
        self.doc = doc
        self.defaults = defaults
        self.schema = schema
        self.variables = variables
        self.default_page_size = default_page_size
        # Keyed by whether the spread is among a page's items (see :meth:`field`).
        self._memo: dict[bool, dict[str, int]] = {False: {}, True: {}}

    def selection(
        self,
        selection_set: SelectionSetNode | None,
        parent: GraphQLNamedType | None,
        seen: frozenset[str],
        items: bool = False,
    ) -> int:
        """The cost of a selection set on ``parent``; ``items``: it is a paged field's."""
        if selection_set is None:
            return 0
        total = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                total += self.field(selection, parent, seen, items)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                within = parent if condition is None else self.schema.get_type(condition.name.value)
                total += self.selection(selection.selection_set, within, seen, items)
            elif isinstance(selection, FragmentSpreadNode):
                total += self._spread(selection.name.value, seen, items)
        return total

    def _spread(self, name: str, seen: frozenset[str], items: bool) -> int:
        fragment = self.doc.fragments.get(name)
        within = (
            None if fragment is None else self.schema.get_type(fragment.type_condition.name.value)
        )

        def measure(selection_set: SelectionSetNode | None, seen: frozenset[str]) -> int:
            return self.selection(selection_set, within, seen, items)

        return self.doc._fragment(name, seen, self._memo[items], measure)

    def field(
        self, node: FieldNode, parent: GraphQLNamedType | None, seen: frozenset[str], items: bool
    ) -> int:
        """1, plus what the field selects times how many of it there may be."""
        if node.name.value.startswith("__") or node.selection_set is None:
            # Leaves, and introspection (answered from the schema in memory, bounded by
            # its own depth rule).
            return 1
        fields = (
            parent.fields if isinstance(parent, GraphQLObjectType | GraphQLInterfaceType) else {}
        )
        definition = fields.get(node.name.value)
        if definition is None:
            return 1  # an unknown field: standard validation refuses the document
        target = get_named_type(definition.type)
        if any(name in definition.args for name in _PAGE_ARGUMENTS):
            size = self._page_size(node, definition)
            return 1 + size * self.selection(node.selection_set, target, seen, items=True)
        below = self.selection(node.selection_set, target, seen)
        if not is_list_type(get_nullable_type(definition.type)):
            return 1 + below
        return 1 + self._list_length(node, definition, items) * below

    def _page_size(self, node: FieldNode, definition: GraphQLField) -> int:
        sizes = [
            self._int(argument.value)
            for argument in node.arguments or ()
            if argument.name.value in _PAGE_ARGUMENTS
        ]
        given = [size for size in sizes if size is not None]
        if given:
            return max(0, *given)
        for name in _PAGE_ARGUMENTS:
            argument = definition.args.get(name)
            default = None if argument is None else argument.default_value
            if isinstance(default, int) and not isinstance(default, bool):
                return max(0, default)
        return self.default_page_size

    def _list_length(self, node: FieldNode, definition: GraphQLField, items: bool) -> int:
        lists = {
            name
            for name, argument in definition.args.items()
            if is_list_type(get_nullable_type(argument.type))
        }
        lengths = [
            self._length(argument.value)
            for argument in node.arguments or ()
            if argument.name.value in lists
        ]
        if lengths:
            return max(lengths)
        # A page's items (``edges``, ``nodes``) were counted by the paged field above.
        return 1 if items else self.default_page_size

    def _value(self, value: ValueNode) -> Any:
        """A variable's value as sent; a literal as its node."""
        if isinstance(value, VariableNode):
            name = value.name.value
            if name in self.variables:
                return self.variables[name]
            return self.defaults.get(name)
        return value

    def _int(self, value: ValueNode) -> int | None:
        """A page size; None when not an ``Int`` (the request is refused as bad input,
        with nothing run: the cost limit leaves that refusal to say why)."""
        found = self._value(value)
        if isinstance(found, IntValueNode):
            # Digits first: int() of a 10,000-digit literal raises (refused as bad input).
            found = int(found.value) if len(found.value) <= 11 else None
        if isinstance(found, int) and not isinstance(found, bool) and abs(found) <= _MAX_INT:
            return found
        return None

    def _length(self, value: ValueNode) -> int:
        found = self._value(value)
        if isinstance(found, ListValueNode):
            return len(found.values)
        if isinstance(found, list):
            return len(found)
        return 0 if found is None else 1  # one value is coerced to a list of one


def operation(document: DocumentNode, operation_name: str | None) -> OperationDefinitionNode | None:
    """The operation a request runs: the one named, or the only one (else None)."""
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is None:
        return operations[0] if len(operations) == 1 else None
    named = [o for o in operations if o.name is not None and o.name.value == operation_name]
    return named[0] if len(named) == 1 else None


def operation_cost(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation_name: str | None,
    variables: Mapping[str, Any] | None,
    default_page_size: int,
) -> int | None:
    """The static cost of the operation that will run (see the module docstring), or None
    when the document does not name one (standard validation and strawberry refuse it)."""
    shapes = tuple(sorted((name, _shape(value)) for name, value in (variables or {}).items()))
    # Keyed by the document's identity: graphql-core hashes a node by walking all of it
    # (as long as the walk the cost is). The entry holds the document, so its id is not
    # reused while the entry stands.
    key = (id(schema), id(document), operation_name, shapes, default_page_size)
    known = _COSTS.get(key)
    if known is not None and known[0] is schema and known[1] is document:
        return known[2]
    cost = _operation_cost(schema, document, operation_name, shapes, default_page_size)
    if len(_COSTS) >= _COSTS_KEPT:
        _COSTS.clear()
    _COSTS[key] = (schema, document, cost)
    return cost


_COSTS: dict[tuple[Any, ...], tuple[GraphQLSchema, DocumentNode, int | None]] = {}
""":func:`operation_cost` remembered: a partner sends the same few documents (parsed once,
:func:`parsed`) again and again, and their cost is a walk of some 25 µs a request. The
variables stand in as their shapes (:func:`_shape`), which give the same cost."""
_COSTS_KEPT = 1024


def _shape(value: Any) -> Any:
    """What of a variable's value the cost reads: an integer (a page size) itself, a
    list its length, None, or one other value (a list of one, never a page size)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, list):
        return (len(value),)
    return None if value is None else _OTHER


_OTHER = "<value>"


def _operation_cost(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation_name: str | None,
    shapes: tuple[tuple[str, Any], ...],
    default_page_size: int,
) -> int | None:
    """:func:`operation_cost` of variables given as their shapes."""
    variables = {
        name: [None] * shape[0] if isinstance(shape, tuple) else shape for name, shape in shapes
    }
    found = operation(document, operation_name)
    if found is None:
        return None
    defaults = {
        definition.variable.name.value: definition.default_value
        for definition in found.variable_definitions or ()
        if definition.default_value is not None
    }
    cost = _Cost(_Document(document), schema, variables, defaults, default_page_size)
    return cost.selection(found.selection_set, schema.get_root_type(found.operation), frozenset())


def cost_error(cost: int, limit: int) -> GraphQLError | None:
    """The refusal of an operation costing ``cost`` over ``limit`` (None within it)."""
    if cost <= limit:
        return None
    return _error(f"operation costs {cost}; the limit is {limit}", "MAX_COST_EXCEEDED")


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
def parsed(query: str, max_tokens: int) -> DocumentNode | None:
    """``query`` parsed (cached by text), or None when it does not parse (the resolver
    path words that error)."""
    try:
        return parse(query, max_tokens=max_tokens)
    except GraphQLError:
        return None


@lru_cache(maxsize=512)
def _standard_validation(
    schema: GraphQLSchema, document: DocumentNode, rules: tuple[type[ASTValidationRule], ...]
) -> list[GraphQLError]:
    return validate(schema, document, rules)


class OperationLimitsExtension(SchemaExtension):
    """Validation with the operation limits first; standard rules only within limits.

    Example::

        schema = strawberry.Schema(
            Query,
            extensions=[lambda: OperationLimitsExtension(Limits(10, 30, 20, 4, 20_000, 20))],
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
            over = cost_error(self._cost(document), self.limits.max_cost)
            errors = [] if over is None else [over]
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

    def _cost(self, document: DocumentNode) -> int:
        """The operation's cost: as the HTTP view measured it (``Context.cost``), else now."""
        context = self.execution_context
        measured = getattr(context.context, "cost", None)
        if isinstance(measured, int):
            return measured
        cost = operation_cost(
            context.schema._schema,
            document,
            context._provided_operation_name,
            context.variables,
            self.limits.default_page_size,
        )
        return 0 if cost is None else cost  # no operation to run: refused elsewhere
