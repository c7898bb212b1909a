"""A copy of a graphql-core schema without some of its types, fields and enum values.

Used by :mod:`schema.visibility` to build each audience's schema. The copy has new type
objects (a field's type must name the copy's types) but the same resolvers, type resolvers,
scalars, enums and strawberry back-references, so it executes exactly as the original.
An enum loses values only in a copy of its own (same class, so strawberry still parses
its values into the Python enum); a default naming a lost value is dropped, which makes
a non-null input field or argument required (the caller must choose a value it has).
Hide values of input-only enums: an output resolving to a lost value would fail.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import Any, cast

from graphql import (
    GraphQLArgument,
    GraphQLDirective,
    GraphQLEnumType,
    GraphQLEnumValue,
    GraphQLError,
    GraphQLField,
    GraphQLFieldResolver,
    GraphQLInputField,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLResolveInfo,
    GraphQLSchema,
    GraphQLType,
    GraphQLUnionType,
    Undefined,
    get_named_type,
    is_introspection_type,
    is_specified_directive,
    validate_schema,
)

Wrap = Callable[[str, str, GraphQLFieldResolver | None], GraphQLFieldResolver | None]
"""``(type name, field name, resolver) -> resolver`` applied to every kept output field."""

_Composite = GraphQLObjectType | GraphQLInterfaceType
_STANDARD_SCALARS = ("Boolean", "Float", "ID", "Int", "String")


class PruneError(Exception):
    """The pruned schema is not a valid schema (a bug in the hiding rules)."""


def _changed(element: Any, **changes: Any) -> dict[str, Any]:
    """The constructor arguments of a graphql-core type-system element, with ``changes``."""
    kwargs: dict[str, Any] = dict(element.to_kwargs())
    kwargs.update(changes)
    return kwargs


def _keep_unchanged(type_name: str, field_name: str, resolve: Any) -> Any:
    del type_name, field_name
    return resolve


class _Visibility:
    """Which types, fields, enum values and arguments survive, hiding until nothing more
    changes: a type left without fields (an enum without values) goes with every field
    that returns it, an input type that loses a required field goes with every argument
    or field that needs it."""

    def __init__(self, schema: GraphQLSchema, hidden: Collection[str]) -> None:
        self.schema = schema
        self.types = {name for name in hidden if "." not in name}
        dotted = {name for name in hidden if "." in name}
        self.values = {
            name
            for name in dotted
            if isinstance(schema.type_map.get(name.split(".", 1)[0]), GraphQLEnumType)
        }
        self.fields = dotted - self.values
        while self._hide_more():
            pass

    def value_kept(self, type_name: str, name: str) -> bool:
        return f"{type_name}.{name}" not in self.values

    def default_hidden(self, type_: GraphQLType, default: Any) -> bool:
        """Whether ``default`` (an input field's or argument's) names a hidden enum value."""
        named = get_named_type(type_)
        if default is Undefined or not isinstance(named, GraphQLEnumType):
            return False
        if not any(not self.value_kept(named.name, v) for v in named.values):
            return False
        for value in default if isinstance(default, list | tuple) else [default]:
            try:
                name = named.serialize(value)
            except (GraphQLError, TypeError, ValueError):
                continue  # not a value of this enum: nothing of it to hide
            if not self.value_kept(named.name, name):
                return True
        return False

    def required(self, type_: GraphQLType, default: Any) -> bool:
        """Non-null without a default, once a default naming a hidden value is dropped."""
        return isinstance(type_, GraphQLNonNull) and (
            default is Undefined or self.default_hidden(type_, default)
        )

    def type_hidden(self, type_: GraphQLType) -> bool:
        return get_named_type(type_).name in self.types

    def field_kept(self, type_name: str, name: str, field: GraphQLField) -> bool:
        return (
            f"{type_name}.{name}" not in self.fields
            and not self.type_hidden(field.type)
            and not any(
                self.required(arg.type, arg.default_value) and self.type_hidden(arg.type)
                for arg in field.args.values()
            )
        )

    def input_field_kept(self, type_name: str, name: str, field: GraphQLInputField) -> bool:
        return f"{type_name}.{name}" not in self.fields and not self.type_hidden(field.type)

    def _hide_more(self) -> bool:
        changed = False
        for name, type_ in self.schema.type_map.items():
            if name in self.types or is_introspection_type(type_):
                continue
            if isinstance(type_, GraphQLObjectType | GraphQLInterfaceType):
                gone = not any(self.field_kept(name, f, v) for f, v in type_.fields.items())
            elif isinstance(type_, GraphQLUnionType):
                gone = all(self.type_hidden(member) for member in type_.types)
            elif isinstance(type_, GraphQLInputObjectType):
                lost = [
                    field
                    for f, field in type_.fields.items()
                    if not self.input_field_kept(name, f, field)
                ]
                gone = len(lost) == len(type_.fields) or any(
                    self.required(field.type, field.default_value) for field in lost
                )
            elif isinstance(type_, GraphQLEnumType):
                gone = not any(self.value_kept(name, v) for v in type_.values)
            else:
                continue
            if gone:
                self.types.add(name)
                changed = True
        return changed


class _Copier:
    def __init__(self, schema: GraphQLSchema, visibility: _Visibility, wrap: Wrap) -> None:
        self.schema = schema
        self.visibility = visibility
        self.wrap = wrap
        self.copies: dict[str, GraphQLNamedType] = {}

    def named(self, type_: GraphQLNamedType) -> GraphQLNamedType:
        copy = self.copies.get(type_.name)
        if copy is None:
            copy = self.copies[type_.name] = self._copy(type_)
        return copy

    def type(self, type_: GraphQLType) -> Any:
        if isinstance(type_, GraphQLNonNull):
            return GraphQLNonNull(self.type(type_.of_type))
        if isinstance(type_, GraphQLList):
            return GraphQLList(self.type(type_.of_type))
        return self.named(cast(GraphQLNamedType, type_))

    def _copy(self, type_: GraphQLNamedType) -> GraphQLNamedType:
        # Scalars and enums name no other type: shared. Introspection types are fixed.
        if is_introspection_type(type_):
            return type_
        if isinstance(type_, GraphQLObjectType):
            return GraphQLObjectType(
                **_changed(
                    type_,
                    fields=lambda: self._fields(type_),
                    interfaces=lambda: self._interfaces(type_),
                )
            )
        if isinstance(type_, GraphQLInterfaceType):
            return GraphQLInterfaceType(
                **_changed(
                    type_,
                    fields=lambda: self._fields(type_),
                    interfaces=lambda: self._interfaces(type_),
                )
            )
        if isinstance(type_, GraphQLUnionType):
            return GraphQLUnionType(
                **_changed(
                    type_,
                    types=lambda: [
                        self.named(member)
                        for member in type_.types
                        if not self.visibility.type_hidden(member)
                    ],
                    resolve_type=_union_resolver(type_),
                )
            )
        if isinstance(type_, GraphQLInputObjectType):
            return GraphQLInputObjectType(
                **_changed(type_, fields=lambda: self._input_fields(type_))
            )
        if isinstance(type_, GraphQLEnumType):
            return self._enum(type_)
        return type_

    def _enum(self, type_: GraphQLEnumType) -> GraphQLEnumType:
        values = {
            name: value
            for name, value in type_.values.items()
            if self.visibility.value_kept(type_.name, name)
        }
        if len(values) == len(type_.values):
            return type_
        return _enum_with(type_, values)

    def _interfaces(self, type_: _Composite) -> list[GraphQLInterfaceType]:
        return [
            cast(GraphQLInterfaceType, self.named(i))
            for i in type_.interfaces
            if not self.visibility.type_hidden(i)
        ]

    def _fields(self, type_: _Composite) -> dict[str, GraphQLField]:
        fields = {}
        for name, field in type_.fields.items():
            if self.visibility.field_kept(type_.name, name, field):
                fields[name] = GraphQLField(
                    **_changed(
                        field,
                        type_=self.type(field.type),
                        args=self.arguments(field.args),
                        resolve=self.wrap(type_.name, name, field.resolve),
                    )
                )
        return fields

    def arguments(self, args: dict[str, GraphQLArgument]) -> dict[str, GraphQLArgument]:
        return {
            name: GraphQLArgument(
                **_changed(arg, type_=self.type(arg.type), **self._default(arg.type, arg))
            )
            for name, arg in args.items()
            if not self.visibility.type_hidden(arg.type)
        }

    def _input_fields(self, type_: GraphQLInputObjectType) -> dict[str, GraphQLInputField]:
        return {
            name: GraphQLInputField(
                **_changed(field, type_=self.type(field.type), **self._default(field.type, field))
            )
            for name, field in type_.fields.items()
            if self.visibility.input_field_kept(type_.name, name, field)
        }

    def _default(
        self, type_: GraphQLType, element: GraphQLArgument | GraphQLInputField
    ) -> dict[str, Any]:
        # The copy's enum could not even print a default it no longer has.
        if self.visibility.default_hidden(type_, element.default_value):
            return {"default_value": Undefined}
        return {}

    def directive(self, directive: GraphQLDirective) -> GraphQLDirective:
        if is_specified_directive(directive):
            return directive
        return GraphQLDirective(**_changed(directive, args=self.arguments(directive.args)))


def _enum_with(type_: GraphQLEnumType, values: dict[str, GraphQLEnumValue]) -> GraphQLEnumType:
    """A copy of ``type_`` (of its own class, with what a subclass keeps, such as
    strawberry's Python enum) having only ``values``."""
    copy = object.__new__(type(type_))
    copy.__dict__.update(type_.__dict__)
    for cached in ("values", "_value_lookup"):  # functools.cached_property entries
        copy.__dict__.pop(cached, None)
    GraphQLEnumType.__init__(copy, **_changed(type_, values=values))
    return copy


def _union_resolver(union: GraphQLUnionType) -> Any:
    """The original type resolver, asked about the original union: strawberry's checks
    the member it finds against the union's own member objects, which are not the copy's.
    graphql-core then checks the name it returns against the copy (a hidden member fails)."""
    resolve = union.resolve_type
    if resolve is None:
        return None

    def resolve_type(value: Any, info: GraphQLResolveInfo[Any], abstract: Any) -> Any:
        del abstract
        return resolve(value, info, union)

    return resolve_type


def _reachable(
    visibility: _Visibility, copier: _Copier, roots: Sequence[GraphQLNamedType]
) -> set[str]:
    """Types a client of the copy can reach: from the roots, directive arguments and
    standard scalars, and the visible implementations of every reachable interface."""
    schema = visibility.schema
    seen: set[str] = set()
    stack: list[GraphQLNamedType] = list(roots)
    # The standard scalars stay even when unused: their absence would tell a client that
    # the fields using them are hidden ("Unknown type 'Int'" on a variable).
    stack.extend(schema.type_map[n] for n in _STANDARD_SCALARS if n in schema.type_map)
    for directive in schema.directives:
        stack.extend(get_named_type(arg.type) for arg in directive.args.values())
    while stack:
        type_ = stack.pop()
        if type_.name in seen or visibility.type_hidden(type_) or is_introspection_type(type_):
            continue
        seen.add(type_.name)
        copy = copier.named(type_)
        if isinstance(copy, GraphQLObjectType | GraphQLInterfaceType):
            for field in copy.fields.values():
                stack.append(get_named_type(field.type))
                stack.extend(get_named_type(arg.type) for arg in field.args.values())
            stack.extend(copy.interfaces)
        if isinstance(type_, GraphQLInterfaceType):
            stack.extend(schema.get_implementations(type_).objects)
        elif isinstance(copy, GraphQLUnionType):
            stack.extend(copy.types)
        elif isinstance(copy, GraphQLInputObjectType):
            stack.extend(get_named_type(field.type) for field in copy.fields.values())
    return seen


def prune_schema(
    schema: GraphQLSchema, hidden: Collection[str], wrap: Wrap = _keep_unchanged
) -> GraphQLSchema:
    """``schema`` without the types and fields named in ``hidden`` (``"Type"`` or
    ``"Type.field"``, input fields included), without what only they made reachable, and
    with ``wrap`` applied to the resolver of every remaining output field."""
    visibility = _Visibility(schema, hidden)
    copier = _Copier(schema, visibility, wrap)
    roots = [
        root
        for root in (schema.query_type, schema.mutation_type, schema.subscription_type)
        if root is not None and not visibility.type_hidden(root)
    ]
    if schema.query_type is None or schema.query_type not in roots:
        raise PruneError("the query type cannot be hidden")
    reachable = _reachable(visibility, copier, roots)

    def root(type_: GraphQLObjectType | None) -> Any:
        if type_ is None or visibility.type_hidden(type_):
            return None
        return copier.named(type_)

    pruned = GraphQLSchema(
        query=root(schema.query_type),
        mutation=root(schema.mutation_type),
        subscription=root(schema.subscription_type),
        types=[copier.named(schema.type_map[name]) for name in sorted(reachable)],
        directives=[copier.directive(d) for d in schema.directives],
        description=schema.description,
        extensions={},  # never the original's: printers cache per-schema facts there
        ast_node=schema.ast_node,
    )
    errors = validate_schema(pruned)
    if errors:
        raise PruneError("; ".join(error.message for error in errors))
    return pruned
