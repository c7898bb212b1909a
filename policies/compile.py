"""Compile policy row conditions to SQLAlchemy, with the semantics of :mod:`policies.evaluate`.

The oracle is the specification: a compiled condition has the same three-valued result as
:func:`policies.evaluate.holds` (SQL ``NULL`` for unknown), and a :class:`RowPlan` admits
the rows :func:`policies.evaluate.evaluate` makes visible and decides their fields alike.
``policies`` stays pure: how resources map to tables is the caller's :class:`SqlMapping`.

How the oracle's Python comparisons become SQL:

* Subject variables are bound to literals at compile time, and every choice Python makes
  from the operand's type alone (``_coerce`` of ISO strings, ``True == 1`` being false,
  ``"a" > 1`` raising) is made here, so the SQL only compares like with like. A comparison
  that can never be true is ``false`` unless the value is null; one that would raise in
  Python is ``NULL``.
* Typed columns (string, uuid, integer, number, boolean, date, datetime) compare natively
  (``col = :v``, ``col IN (...)``); strings are ordered by code point (``COLLATE "C"`` on
  PostgreSQL, ``BINARY`` on SQLite) as Python orders them. A datetime column holds aware
  values when its type (or a ``TypeDecorator``'s impl) has ``timezone=True``; Python cannot
  order aware against naive datetimes, so such comparisons are unknown, as in the oracle.
  A uuid column of type :class:`sqlalchemy.Uuid` is read as its canonical text
  (lowercase, hyphenated), as records carry it: only a literal in that form can equal it.
* JSON fields (and ``string[]``, stored as a JSON array) branch on the JSON type of the
  value at the path (``json_type`` on SQLite, ``jsonb_typeof`` on PostgreSQL), so a string
  only meets a string, a number a number or a boolean (ordering only: ``True > 0`` in
  Python), a list an array (element by element, lexicographically for ``gt``...) and a
  mapping an object; JSON ``null`` and a missing key are both null.
* A path through a ``many`` relation is ``EXISTS`` over the related rows; through a
  one-to-one relation it is a scalar subquery, null-compared when the related row is
  missing (as the oracle resolves a missing record to ``None``).

The records the oracle is checked against carry uuids as canonical text, datetimes aware
exactly when their column is, and JSON as decoded by :mod:`json`. Known differences from
the oracle: a JSON array met *before* the end of a path reads as missing here, where the
oracle tries each of its elements as through a ``many`` relation (it cannot be told from
the condition alone, so :func:`policies.validate.validate` accepts it); JSON numbers and
float literals compare as SQL doubles, where Python compares integers beyond 2**53
exactly; a ``string[]`` field is expected as a JSON array (map other storage through
:meth:`SqlMapping.compare`).
"""

from __future__ import annotations

import datetime as dt
import decimal
import operator
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    Integer,
    Numeric,
    String,
    Uuid,
    and_,
    bindparam,
    case,
    cast,
    false,
    func,
    literal,
    literal_column,
    not_,
    null,
    or_,
    select,
    true,
    type_coerce,
)
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import CompileError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement, Label
from sqlalchemy.sql.expression import FromClause, Select
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import TypeDecorator, TypeEngine

from policies.catalog import Catalog, CatalogError, FieldType
from policies.evaluate import Caller, FieldDecision, subject_matches, variable_value
from policies.model import (
    And,
    Compare,
    Condition,
    Document,
    Effect,
    Not,
    Operand,
    Or,
    Outcome,
    Rule,
    Variable,
)

__all__ = ["Join", "RowPlan", "SqlMapping", "compile_condition", "plan"]

Bool = ColumnElement[bool]


# -- the caller's side ------------------------------------------------------------------


# eq=False: comparing SQL expressions builds SQL instead of answering.
@dataclass(frozen=True, eq=False)
class Join:
    """A relation from a row of ``table`` to rows of ``target``.

    ``target`` is a fresh alias of the related table, ``on`` correlates it with the
    source table, ``many`` says whether several related rows may match (``EXISTS``).

    ``bound`` (one-to-one only): ``target`` is the related row itself, already in scope
    where the condition is evaluated (a nested read's enclosing row: the feedback of a
    customer, read under that customer). A condition through the relation then reads
    ``target`` directly, with no subquery. Only a mapping that knows every row of the
    source table so evaluated is related to that row (``on`` holds) may say so: the
    subquery it replaces would find exactly that row, so the answer is the same.
    """

    resource: str
    target: FromClause
    on: Bool
    many: bool
    bound: bool = False


class SqlMapping(Protocol):
    """How catalog resources map to SQL (implemented by the hub for its tables, by tests
    for theirs).

    Example::

        class Tables:
            def table(self, resource):
                return {"Customer": customer, "CustomerPartner": assignment}[resource]

            def column(self, resource, table, field):
                return table.c[field]

            def relation(self, resource, table, name):
                target = assignment.alias()
                return Join("CustomerPartner", target, target.c.customer_id == table.c.id, True)

            def compare(self, resource, table, field, op, value):
                return None  # the default compilation for every field
    """

    def table(self, resource: str) -> FromClause:
        """The root table selected for ``resource``."""
        ...

    def column(self, resource: str, table: FromClause, field: str) -> ColumnElement[Any]:
        """Catalog ``field`` of a row of ``table`` (for JSON and ``string[]`` fields, a
        JSON column; ``string[]`` holds a JSON array of strings)."""
        ...

    def relation(self, resource: str, table: FromClause, name: str) -> Join:
        """The relation ``name`` of ``resource`` from a row of ``table``."""
        ...

    def compare(
        self, resource: str, table: FromClause, field: str, op: str, value: Any
    ) -> Bool | None:
        """An override for ``field op value`` on a row of ``table``, or ``None`` for the
        default compilation. ``field`` is the catalog field, followed by the JSON keys for
        a path into a JSON field (``traits.tier``); ``value`` has its variables bound. The
        result must have the oracle's three-valued semantics."""
        ...


# -- dialect-specific pieces ---------------------------------------------------------------


class _JsonKind(FunctionElement[str]):
    """The JSON type at a path: string, number, boolean, array, object, null; SQL ``NULL``
    when the path is absent."""

    type = String()
    inherit_cache = True


class _JsonLength(FunctionElement[int]):
    """The number of elements of the JSON array at a path."""

    type = Integer()
    inherit_cache = True


class _JsonKeyCount(FunctionElement[int]):
    """The number of keys of the JSON object at a path."""

    type = Integer()
    inherit_cache = True


class _CodePointOrder(FunctionElement[str]):
    """Text ordered by code point, as Python orders strings."""

    type = String()
    inherit_cache = True


class _UuidText(FunctionElement[str]):
    """A :class:`sqlalchemy.Uuid` column as canonical text (lowercase, hyphenated)."""

    type = String()
    inherit_cache = True


def _render_uuid_text(element: _UuidText, compiler: SQLCompiler, **kw: Any) -> str:
    (column,) = element.clauses
    text = compiler.process(column, **kw)
    sql_type = _base_type(column.type)
    native = isinstance(sql_type, Uuid) and sql_type.native_uuid
    if native and compiler.dialect.supports_native_uuid:
        return f"lower(CAST({text} AS TEXT))"
    # Stored as 32 hex digits (SQLAlchemy's non-native form).
    parts = [f"substr({text}, {start}, {length})" for start, length in _UUID_GROUPS]
    return "lower(" + " || '-' || ".join(parts) + ")"


_UUID_GROUPS = ((1, 8), (9, 4), (13, 4), (17, 4), (21, 12))
compiles(_UuidText)(_render_uuid_text)

_SQLITE_KINDS = (
    "CASE json_type({0}, {1}) WHEN 'text' THEN 'string' WHEN 'integer' THEN 'number' "
    "WHEN 'real' THEN 'number' WHEN 'true' THEN 'boolean' WHEN 'false' THEN 'boolean' "
    "ELSE json_type({0}, {1}) END"
)
_SQLITE: dict[type[FunctionElement[Any]], str] = {
    _JsonKind: _SQLITE_KINDS,
    _JsonLength: "json_array_length({0}, {1})",
    _JsonKeyCount: "(SELECT count(*) FROM json_each({0}, {1}))",
    _CodePointOrder: "({0} COLLATE BINARY)",
}
# The JSON piece is cast to jsonb so that json and jsonb columns work alike.
_POSTGRESQL: dict[type[FunctionElement[Any]], str] = {
    _JsonKind: "jsonb_typeof(CAST(({0} #> {1}) AS JSONB))",
    _JsonLength: "jsonb_array_length(CAST(({0} #> {1}) AS JSONB))",
    _JsonKeyCount: "(SELECT count(*) FROM jsonb_object_keys(CAST(({0} #> {1}) AS JSONB)))",
    _CodePointOrder: '({0} COLLATE "C")',
}


def _render(templates: Mapping[type[FunctionElement[Any]], str]) -> Callable[..., str]:
    def render(element: FunctionElement[Any], compiler: SQLCompiler, **kw: Any) -> str:
        args = [compiler.process(arg, **kw) for arg in element.clauses]
        return templates[type(element)].format(*args)

    return render


def _unsupported(element: FunctionElement[Any], compiler: SQLCompiler, **kw: Any) -> str:
    raise CompileError(
        f"policy conditions support SQLite and PostgreSQL, not {compiler.dialect.name}"
    )


for _construct in (_JsonKind, _JsonLength, _JsonKeyCount, _CodePointOrder):
    compiles(_construct)(_unsupported)
    compiles(_construct, "sqlite")(_render(_SQLITE))
    compiles(_construct, "postgresql")(_render(_POSTGRESQL))


# -- values as the oracle sees them ------------------------------------------------------

_UNKNOWN: Bool = cast(null(), Boolean)
_ORDER: dict[str, Callable[[Any, Any], Bool]] = {
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
}
# PostgreSQL's #> reads such a key as an array index; the oracle only looks keys up.
_INDEX_LIKE = re.compile(r"\s*[+-]?\d+\s*")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | decimal.Decimal) and not isinstance(value, bool)


def _is_true(cond: Bool) -> Bool:
    """``cond IS TRUE``, spelt ``coalesce(cond, false)``: SQLAlchemy renders
    ``not_(x).is_(true())`` as ``NOT x IS true``, which PostgreSQL reads as
    ``NOT (x IS true)``."""
    return type_coerce(func.coalesce(cond, false()), Boolean)


def _unless_null(is_null: Bool, result: Bool) -> Bool:
    """``result``, or unknown where the value is null (a constant outcome otherwise)."""
    return case((is_null, _UNKNOWN), else_=result)


class _Value(Protocol):
    """A field value reached by a path, compared with Python's rules in SQL."""

    def is_null(self) -> Bool: ...

    def coerce(self, operand: Any) -> Any:
        """The operand as the oracle's ``_coerce`` sees it next to this value."""
        ...

    def equals(self, operand: Any) -> Bool:
        """Python ``==`` (booleans never equal numbers); null when the value is null."""
        ...

    def order(self, op: str, operand: Any) -> Bool:
        """Python ``<``...; null when the value is null or Python would raise."""
        ...

    def member(self, members: list[Any], negate: bool) -> Bool:
        """``in`` (``nin`` when negated) with the non-null members; null members are the
        caller's concern."""
        ...


def _base_type(sql_type: TypeEngine[Any]) -> TypeEngine[Any]:
    while isinstance(sql_type, TypeDecorator):
        sql_type = sql_type.impl_instance
    return sql_type


@dataclass(frozen=True)
class _ColumnValue:
    """A typed column: values are str, int/float, bool, date or datetime in Python."""

    kind: FieldType
    column: ColumnElement[Any]

    def is_null(self) -> Bool:
        return self.column.is_(None)

    def coerce(self, operand: Any) -> Any:
        if isinstance(operand, str) and self.kind is FieldType.DATETIME:
            return dt.datetime.fromisoformat(operand)
        if isinstance(operand, str) and self.kind is FieldType.DATE:
            return dt.date.fromisoformat(operand)
        return tuple(operand) if isinstance(operand, list) else operand

    def equals(self, operand: Any) -> Bool:
        bound = self._equal_operand(operand)
        if bound is None:
            return _unless_null(self.is_null(), false())
        return self.column == bound

    def order(self, op: str, operand: Any) -> Bool:
        sides = self._ordered_sides(operand)
        if sides is None:
            return _UNKNOWN
        return _ORDER[op](*sides)

    def member(self, members: list[Any], negate: bool) -> Bool:
        bound = [b for b in (self._equal_operand(m) for m in members) if b is not None]
        if not bound:
            return _unless_null(self.is_null(), true() if negate else false())
        return self.column.not_in(bound) if negate else self.column.in_(bound)

    # The literal to compare with by equality, or None if Python's == is always false.
    def _equal_operand(self, value: Any) -> ColumnElement[Any] | None:
        base = _base_type(self.column.type)
        match self.kind:
            case FieldType.STRING:
                return self._bind(value) if isinstance(value, str) else None
            case FieldType.UUID:
                return self._uuid(value, base)
            case FieldType.INTEGER | FieldType.NUMBER:
                return self._number(value, base) if _is_number(value) else None
            case FieldType.BOOLEAN:
                return self._bind(value) if isinstance(value, bool) else None
            case FieldType.DATE:
                plain = isinstance(value, dt.date) and not isinstance(value, dt.datetime)
                return self._bind(value) if plain else None
            case FieldType.DATETIME:
                return self._bind(value) if self._same_awareness(value, base) else None
        return None  # pragma: no cover - JSON kinds are _JsonValue

    def _ordered_sides(self, value: Any) -> tuple[Any, Any] | None:
        base = _base_type(self.column.type)
        match self.kind:
            case FieldType.STRING:
                if isinstance(value, str):
                    # A plain literal: the column's type may carry a collation of its own.
                    return _CodePointOrder(self.column), literal(value, String())
            case FieldType.UUID:
                if not isinstance(value, str):
                    return None
                if not isinstance(base, Uuid):
                    return _CodePointOrder(self.column), literal(value, String())
                bound = self._uuid(value, base)
                if bound is not None:
                    return self.column, bound  # byte order is canonical text order
                return _CodePointOrder(_UuidText(self.column)), literal(value, String())
            case FieldType.INTEGER | FieldType.NUMBER:
                if isinstance(value, bool):
                    return self.column, self._bind(int(value))
                if _is_number(value):
                    return self.column, self._number(value, base)
            case FieldType.BOOLEAN:
                if isinstance(value, bool):
                    return self.column, self._bind(value)
                if _is_number(value):  # Python orders booleans as 0 and 1
                    return cast(self.column, Integer), _numeric_literal(value)
            case FieldType.DATE | FieldType.DATETIME:
                bound = self._equal_operand(value)
                if bound is not None:
                    return self.column, bound
        return None

    def _bind(self, value: Any) -> ColumnElement[Any]:
        return literal(value, self.column.type)

    def _number(self, value: Any, base: TypeEngine[Any]) -> ColumnElement[Any]:
        if isinstance(base, Numeric) and not isinstance(base, Float):
            # The float's exact binary value, as Python compares it with a Decimal (and no
            # precision or scale, which would round it).
            return literal(decimal.Decimal(value), Numeric())
        if isinstance(value, int) and isinstance(base, Integer):
            return self._bind(value)
        return _numeric_literal(value)

    def _uuid(self, value: Any, base: TypeEngine[Any]) -> ColumnElement[Any] | None:
        if not isinstance(value, str):
            return None
        if not isinstance(base, Uuid):
            return self._bind(value)
        try:
            parsed = uuid.UUID(value)
        except ValueError:
            return None
        return self._bind(parsed) if str(parsed) == value else None

    @staticmethod
    def _same_awareness(value: Any, base: TypeEngine[Any]) -> bool:
        if not isinstance(value, dt.datetime):
            return False
        aware = isinstance(base, DateTime) and bool(base.timezone)
        return (value.tzinfo is not None) == aware


def _number_type(value: Any) -> TypeEngine[Any]:
    if isinstance(value, decimal.Decimal):
        return Numeric()
    return Integer() if isinstance(value, int) else Float()


def _numeric_literal(value: Any) -> ColumnElement[Any]:
    """A number (a boolean as 0 or 1, as Python compares it) as a typed literal."""
    number = int(value) if isinstance(value, bool) else value
    return literal(number, _number_type(number))


@dataclass(frozen=True)
class _JsonValue:
    """The JSON value at ``path`` in a JSON column (arrays read as tuples at the top, as
    the oracle converts them; elements of arrays keep Python's plain ``==``)."""

    doc: ColumnElement[Any]
    path: tuple[str | int, ...]
    guard: Bool | None = None  # whether every index-like key met an object

    def child(self, key: str | int) -> _JsonValue:
        guard = self.guard
        if isinstance(key, str) and _INDEX_LIKE.fullmatch(key):
            is_object = self._kind() == "object"
            guard = is_object if guard is None else and_(guard, is_object)
        return _JsonValue(self.doc, (*self.path, key), guard)

    def is_null(self) -> Bool:
        # ->> / json_extract give NULL for JSON null and for a missing key alike.
        absent = self.doc[self.path].as_string().is_(None)
        return absent if self.guard is None else or_(not_(self.guard), absent)

    def coerce(self, operand: Any) -> Any:
        return tuple(operand) if isinstance(operand, list) else operand

    def equals(self, operand: Any) -> Bool:
        return self._by_kind(
            self._equal_arms(operand, top=True), _unless_null(self.is_null(), false())
        )

    def order(self, op: str, operand: Any) -> Bool:
        return self._by_kind(self._order_arms(op, operand, top=True), _UNKNOWN)

    def member(self, members: list[Any], negate: bool) -> Bool:
        hit = or_(*(self.equals(m) for m in members)) if members else None
        if hit is None:
            return _unless_null(self.is_null(), true() if negate else false())
        return not_(hit) if negate else hit

    def _kind(self) -> ColumnElement[str]:
        kind = _JsonKind(self.doc, bindparam(None, self.path, type_=JSON.JSONPathType))
        return kind if self.guard is None else case((self.guard, kind))

    def _by_kind(self, arms: dict[str, Bool], otherwise: Bool) -> Bool:
        if not arms:
            return otherwise
        return case(arms, value=self._kind(), else_=otherwise)

    def _equal_arms(self, value: Any, *, top: bool) -> dict[str, Bool]:
        """Per JSON type, whether the value equals ``value``; other types are unequal.
        At the top the oracle's ``_eq`` applies (booleans never equal numbers) and arrays
        meet tuples; inside an array Python's ``==`` applies (``True == 1``, lists)."""
        arms: dict[str, Bool] = {}
        if isinstance(value, bool) or _is_number(value):
            bound = _numeric_literal(value)
            if isinstance(value, bool) or not top:
                arms["boolean"] = cast(self._boolean(), Integer) == bound
            if not isinstance(value, bool) or not top:
                arms["number"] = self._number() == bound
        elif isinstance(value, str):
            arms["string"] = self.doc[self.path].as_string() == value
        elif isinstance(value, tuple if top else list):
            items = [self.child(i)._equal(item) for i, item in enumerate(value)]
            arms["array"] = and_(self._length(_JsonLength) == len(value), *items)
        elif isinstance(value, dict) and all(isinstance(k, str) for k in value):
            items = [self.child(k)._equal(item) for k, item in value.items()]
            arms["object"] = and_(self._length(_JsonKeyCount) == len(value), *items)
        elif value is None and not top:
            arms["null"] = true()
        return arms

    def _equal(self, value: Any) -> Bool:
        """Python ``==`` for an element (definite: an absent element is unequal)."""
        return self._by_kind(self._equal_arms(value, top=False), false())

    def _order_arms(self, op: str, value: Any, *, top: bool) -> dict[str, Bool]:
        """Per JSON type, Python's ordering with ``value``; other types raise (unknown)."""
        compare = _ORDER[op]
        arms: dict[str, Bool] = {}
        if isinstance(value, str):
            arms["string"] = compare(_CodePointOrder(self.doc[self.path].as_string()), value)
        elif isinstance(value, bool) or _is_number(value):
            bound = _numeric_literal(value)
            arms["number"] = compare(self._number(), bound)
            arms["boolean"] = compare(cast(self._boolean(), Integer), bound)
        elif isinstance(value, tuple if top else list):
            arms["array"] = self._lexicographic(op, value)
        return arms

    def _lexicographic(self, op: str, value: tuple[Any, ...] | list[Any]) -> Bool:
        """Python's sequence ordering: the first unequal element decides, else length."""
        length = self._length(_JsonLength)
        whens: list[tuple[Bool, Bool]] = []
        for i, item in enumerate(value):
            element = self.child(i)
            decided = element._by_kind(element._order_arms(op, item, top=False), _UNKNOWN)
            whens.append((and_(length > i, not_(element._equal(item))), decided))
        by_length = _ORDER[op](length, len(value))
        return case(*whens, else_=by_length) if whens else by_length

    def _length(self, construct: type[_JsonLength | _JsonKeyCount]) -> ColumnElement[int]:
        return construct(self.doc, bindparam(None, self.path, type_=JSON.JSONPathType))

    def _number(self) -> ColumnElement[Any]:
        number: ColumnElement[Any] = self.doc[self.path].as_float()
        return number

    def _boolean(self) -> ColumnElement[Any]:
        boolean: ColumnElement[Any] = self.doc[self.path].as_boolean()
        return boolean


def _compare(op: str, value: _Value, operand: Any) -> Bool:
    """``value op operand`` as the oracle's ``_compare`` decides it."""
    if op == "is_null":
        return value.is_null() if operand else not_(value.is_null())
    if operand is None:
        return _UNKNOWN
    if op in ("in", "nin"):
        try:
            members = [value.coerce(m) for m in operand]
        except (TypeError, ValueError):  # not iterable, or a bad ISO date: Python raises
            return _UNKNOWN
        present = [m for m in members if m is not None]
        result = value.member(present, negate=op == "nin")
        if len(present) == len(members):
            return result
        # As SQL's x IN (..., NULL): decided by a match, unknown otherwise.
        if op == "in":
            return case((result, true()), else_=_UNKNOWN)
        return case((not_(result), false()), else_=_UNKNOWN)
    try:
        other = value.coerce(operand)
    except ValueError:
        return _UNKNOWN
    match op:
        case "eq":
            return value.equals(other)
        case "ne":
            return not_(value.equals(other))
        case "gt" | "gte" | "lt" | "lte":
            return value.order(op, other)
    return _UNKNOWN  # an operator the oracle does not know is unknown there too


def _on_missing(op: str, operand: Any) -> bool | None:
    """The oracle's result when a one-to-one relation has no row: the field is ``None``."""
    return bool(operand) if op == "is_null" else None


# -- conditions ----------------------------------------------------------------------------


def _bind_operand(value: Operand, caller: Caller) -> Any:
    """``value`` with a subject variable replaced by the caller's value (lists as tuples);
    ``None`` for an unknown variable or a missing attribute: exactly as the oracle."""
    return variable_value(value, caller) if isinstance(value, Variable) else value


@dataclass(frozen=True)
class _Compiler:
    caller: Caller
    catalog: Catalog
    mapping: SqlMapping

    def condition(self, cond: Condition, resource: str, table: FromClause) -> Bool:
        match cond:
            case And(items):
                return and_(true(), *(self.condition(i, resource, table) for i in items))
            case Or(items):
                return or_(false(), *(self.condition(i, resource, table) for i in items))
            case Not(item):
                return not_(self.condition(item, resource, table))
            case Compare(path, op, value):
                self.catalog.field_type(resource, path)  # raises CatalogError for a bad path
                operand = _bind_operand(value, self.caller)
                return self.path(resource, table, path.split("."), op, operand)
        raise TypeError(f"not a condition: {cond!r}")

    def path(
        self, resource: str, table: FromClause, parts: list[str], op: str, operand: Any
    ) -> Bool:
        spec = self.catalog.resources[resource]
        head, rest = parts[0], parts[1:]
        relation = spec.relations.get(head)
        if relation is not None:
            join = self.mapping.relation(resource, table, head)
            if (join.resource, join.many) != (relation.resource, relation.many):
                raise CatalogError(
                    f"mapping joins {resource}.{head} to {join.resource} (many={join.many}), "
                    f"the catalog to {relation.resource} (many={relation.many})"
                )
            inner = self.path(join.resource, join.target, rest, op, operand)
            if join.bound and not join.many:
                return inner
            if join.many:
                related: Select[Any] = select(literal_column("1")).select_from(join.target)
                return related.where(join.on, inner).correlate_except(join.target).exists()
            scalar = (
                select(inner)
                .select_from(join.target)
                .where(join.on)
                .correlate_except(join.target)
                .scalar_subquery()
            )
            missing = _on_missing(op, operand)
            if missing is None:
                return scalar
            return type_coerce(func.coalesce(scalar, literal(missing, Boolean)), Boolean)
        name = ".".join(parts)
        override = self.mapping.compare(resource, table, name, op, operand)
        if override is not None:
            return override
        kind = spec.fields[head]
        column = self.mapping.column(resource, table, head)
        value: _Value
        if kind in (FieldType.JSON, FieldType.STRING_LIST):
            value = _JsonValue(type_coerce(column, JSON), ())
            for key in rest:
                value = value.child(key)
        else:
            value = _ColumnValue(kind, column)
        return _compare(op, value, operand)


def compile_condition(
    cond: Condition,
    resource: str,
    table: FromClause,
    caller: Caller,
    catalog: Catalog,
    mapping: SqlMapping,
) -> Bool:
    """``cond`` on a row of ``table`` (a ``resource``) as an SQL boolean with the same
    three-valued result as :func:`policies.evaluate.holds` (``NULL`` for unknown).

    Subject variables are bound to the ``caller``'s values as literals. Raises
    :class:`~policies.catalog.CatalogError` for a path outside the catalog.
    """
    return _Compiler(caller, catalog, mapping).condition(cond, resource, table)


# -- row plans -------------------------------------------------------------------------------

_HIDDEN = FieldDecision(Outcome.HIDDEN)


def _grants(rule: Rule, names: frozenset[str]) -> dict[str, FieldDecision]:
    """What an allow rule grants, as the oracle applies it (visible wins within a rule)."""
    out = {
        n: FieldDecision(Outcome.VISIBLE, None, rule.name) for n in rule.read.visible if n in names
    }
    for name, mask in rule.read.masked.items():
        if name in names and name not in out:
            out[name] = FieldDecision(Outcome.MASKED, mask, rule.name)
    return out


@dataclass(frozen=True)
class _Applicable:
    """An applicable rule at its position in the document, with what it grants (allow)."""

    position: int
    rule: Rule
    grants: Mapping[str, FieldDecision]
    label: str | None = None  # its column; None when it holds for every row

    @property
    def unconditional(self) -> bool:
        return self.rule.rows is None


@dataclass
class _Decider:
    """The oracle's field decisions for the rules holding on a row, memoized per set."""

    names: frozenset[str]
    allows: tuple[_Applicable, ...]  # unconditional ones and those with a column
    denies: tuple[_Applicable, ...]
    labels: tuple[str, ...]
    cache: dict[tuple[bool, ...], Mapping[str, FieldDecision]] = field(default_factory=dict)

    def decide(self, holding: tuple[bool, ...]) -> Mapping[str, FieldDecision]:
        cached = self.cache.get(holding)
        if cached is not None:
            return cached
        held = {label for label, h in zip(self.labels, holding, strict=True) if h}
        fields = dict.fromkeys(self.names, _HIDDEN)
        for allow in self.allows:
            if allow.label is None or allow.label in held:
                for name, grant in allow.grants.items():
                    if fields[name].outcome < grant.outcome:
                        fields[name] = grant
        denied: set[str] = set()
        for deny in self.denies:
            if deny.label is None or deny.label in held:
                for name in deny.rule.fields:
                    if name in self.names and name not in denied:
                        denied.add(name)
                        fields[name] = FieldDecision(Outcome.HIDDEN, None, deny.rule.name)
        decided = self.cache[holding] = MappingProxyType(fields)
        return decided


@dataclass(frozen=True, eq=False)
class RowPlan:
    """The compiled policy for one caller and resource.

    ``where`` selects the rows the caller may see: some applicable allow rule holds and no
    applicable row deny holds. ``columns`` hold one never-null boolean per rule whose
    ``rows`` condition changes some field's decision, labelled ``_policy_rule_<index>``
    (the rule's position in the document); select them with the row and hand the row to
    :meth:`decide`. ``static`` is true when there are none: every visible row gets the
    same decisions.

    Example::

        rows = await session.execute(select(table, *p.columns).where(p.where))
        for row in rows.mappings():
            decisions = p.decide(row)
    """

    resource: str
    where: Bool
    columns: tuple[Label[bool], ...]
    static: bool
    _decider: _Decider = field(repr=False, compare=False)
    _possible: Mapping[str, Outcome] = field(repr=False, compare=False)

    def decide(self, row: Mapping[str, Any] | RowMapping) -> Mapping[str, FieldDecision]:
        """The decision for every catalog field of a visible ``row`` (a mapping holding
        the labelled :attr:`columns`), as :func:`policies.evaluate.evaluate` decides it."""
        return self._decider.decide(tuple(bool(row[label]) for label in self._decider.labels))

    def possible(self) -> Mapping[str, Outcome]:
        """For each catalog field, the most permissive outcome a visible row could get,
        for the per-audience schema. Conditional field denies do not lower it."""
        return self._possible


def _can_decide(allow: _Applicable, always: list[_Applicable], hidden: set[str]) -> bool:
    """Whether a conditional allow rule can decide some field: not when every field it
    grants is hidden by an unconditional deny or won by an unconditional allow (an
    earlier one as permissive, or a later one more permissive)."""
    for name, grant in allow.grants.items():
        if name in hidden:
            continue
        beaten = False
        for other in always:
            theirs = other.grants.get(name, _HIDDEN).outcome
            if other.position < allow.position:
                beaten = theirs >= grant.outcome
            else:
                beaten = theirs > grant.outcome
            if beaten:
                break
        if not beaten:
            return True
    return False


def plan(
    document: Document, catalog: Catalog, caller: Caller, resource: str, mapping: SqlMapping
) -> RowPlan:
    """Compile ``document`` for ``caller`` reading ``resource``, rooted at
    ``mapping.table(resource)``: rules not for the caller are dropped, variables bound.

    The semantics are :func:`policies.evaluate.evaluate`'s: deny by default; each field
    gets the most permissive outcome among the holding allow rules (ties go to the earlier
    rule); a holding deny hides its ``fields``, or the whole row when it lists none; only
    catalog fields are decided. Raises :class:`~policies.catalog.CatalogError` for an
    unknown resource or a path outside the catalog.
    """
    if resource not in catalog.resources:
        raise CatalogError(f"unknown resource '{resource}'")
    table = mapping.table(resource)
    names = catalog.fields(resource)
    compiler = _Compiler(caller, catalog, mapping)
    applicable = [
        (i, r)
        for i, r in enumerate(document.rules)
        if r.resource == resource and any(subject_matches(s, caller) for s in r.subjects)
    ]

    def holds(rule: Rule) -> Bool:
        return true() if rule.rows is None else compiler.condition(rule.rows, resource, table)

    columns: dict[int, Label[bool]] = {}

    def column(position: int, rule: Rule) -> str:
        label = f"_policy_rule_{position}"
        columns[position] = _is_true(holds(rule)).label(label)
        return label

    allows = [
        _Applicable(i, r, _grants(r, names)) for i, r in applicable if r.effect is Effect.ALLOW
    ]
    row_denies = [r for _, r in applicable if r.effect is Effect.DENY and not r.fields]
    allowed = or_(false(), *(holds(a.rule) for a in allows))
    denied = or_(false(), *(true() if r.rows is None else _is_true(holds(r)) for r in row_denies))

    # Fields an unconditional deny hides stay hidden, attributed to the first such deny; a
    # conditional deny before it still changes the attribution, so it keeps its column.
    denies: list[_Applicable] = []
    hidden: set[str] = set()
    for i, rule in applicable:
        if rule.effect is not Effect.DENY or not rule.fields:
            continue
        fields = [n for n in rule.fields if n in names and n not in hidden]
        if rule.rows is None:
            hidden.update(fields)
            denies.append(_Applicable(i, rule, {}))
        elif fields:
            denies.append(_Applicable(i, rule, {}, column(i, rule)))
    always = [a for a in allows if a.unconditional]
    # A visible row is one some allow rule holds on: a sole allow rule holds on every
    # visible row, and needs no column to say so (which spares the database evaluating
    # its condition a second time per row, once in ``where`` and once for the column).
    sole = allows[0].position if len(allows) == 1 else None
    deciding = [
        a
        if a.unconditional or a.position == sole
        else _Applicable(a.position, a.rule, a.grants, column(a.position, a.rule))
        for a in allows
        if a.unconditional or _can_decide(a, always, hidden)
    ]

    possible: dict[str, Outcome] = dict.fromkeys(names, Outcome.HIDDEN)
    if allows and all(r.rows is not None for r in row_denies):
        for allow in allows:
            for name, grant in allow.grants.items():
                if name not in hidden and grant.outcome > possible[name]:
                    possible[name] = grant.outcome
    ordered = tuple(columns[i] for i in sorted(columns))
    labels = tuple(c.name for c in ordered)
    decider = _Decider(names, tuple(deciding), tuple(denies), labels)
    where = and_(allowed, not_(denied))
    return RowPlan(resource, where, ordered, not ordered, decider, MappingProxyType(possible))
