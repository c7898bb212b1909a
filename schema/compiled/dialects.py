"""What the compiled read statements spell differently per database (DESIGN §11).

:mod:`schema.compiled.sql` builds one statement per root field for either database from
the same plan; the few places where PostgreSQL and SQLite differ are the methods of a
:class:`JsonDialect`: how JSON is built and aggregated, how a stored value is written as
the resolver path serializes it (times, ids, decimals, booleans, JSON documents), which
masks SQL applies, and how a row's rule-condition bits are computed once per row.

- :class:`PostgresJson`: ``json_build_object``/``json_agg``, the bits in a ``LATERAL``
  subquery. Its expressions are the reference the property tests compare against.
- :class:`SqliteJson`: JSON1's ``json_object``/``json_group_array``. A JSON value read
  back from a subquery (a nested connection, a link, a page's rows) has lost its JSON
  subtype there and would be embedded as a string, so it goes through ``json(...)``;
  booleans are written as JSON ``true``/``false`` (SQLite's are 1 and 0); ids, times and
  decimals are stored as text or doubles and rewritten to the resolver path's text; SQLite
  has no ``reverse()``, so ``partial_email`` and global ids are finished by the Python
  pass, like sealed fields.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Text,
    case,
    cast,
    false,
    func,
    literal,
    literal_column,
    not_,
    null,
    or_,
    true,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.types import Uuid

from schema.compiled.plan import Unsupported


class JsonDialect:
    """How one database builds the response JSON of a compiled read (an extension point:
    :func:`json_dialect` chooses one per connection's dialect).

    The base class is PostgreSQL's; a subclass overrides what its database spells
    differently. Every method takes and returns SQLAlchemy expressions, so the compiler
    stays one compiler.

    Example::

        dialect = json_dialect(connection.dialect)
        record = dialect.object([literal("name"), Customer.name])
    """

    name = "postgresql"
    masks: frozenset[str] = frozenset({"redact", "partial_email", "year_only", "bucket"})
    """The masks applied in SQL; the others are applied by the Python pass."""
    global_ids_in_sql = True
    """``customerRef``'s global id encoded in SQL (else by the Python pass)."""

    def object(self, pairs: list[Any]) -> ColumnElement[Any]:
        """A JSON object of ``pairs`` (key, value, key, value, ...)."""
        if len(pairs) > 100:
            raise Unsupported("more than 50 keys in one object")
        if not pairs:
            return func.json_build_object()
        return func.json_build_object(*pairs)

    def array(self, items: list[Any]) -> ColumnElement[Any]:
        """A JSON array of ``items``."""
        return func.json_build_array(*items)

    numbers_rows = True
    """When ``hasNextPage`` is asked, a page is read with the row after it and numbered
    (``row_number()``): the aggregates take the rows numbered within the page, and
    ``hasNextPage`` counts the rows (else the page is read as it is, and a second
    subquery looks for a row beyond it). Without it, the page is read as it is."""

    def page_array(
        self, value: ColumnElement[Any], order: Sequence[Any], where: Any | None
    ) -> ColumnElement[Any]:
        """The JSON array of ``value`` over a page's rows in ``order`` (their number, or
        the page's order), of those that hold ``where`` (within the page; ``None``: all),
        ``[]`` when there is none."""
        aggregated: Any = func.json_agg(aggregate_order_by(value, *order))
        if where is not None:
            aggregated = aggregated.filter(where)
        return func.coalesce(aggregated, func.json_build_array())

    def text(self, value: ColumnElement[Any]) -> ColumnElement[Any]:
        """A statement's single value, the root field's JSON, as text."""
        return cast(value, Text)

    def refused(self, error: DBAPIError) -> str | None:
        """Why the database refused to prepare a statement it could not parse as deep as
        it is (``None``: another error, raised as it is)."""
        del error
        return None

    def nested(self, value: ColumnElement[Any]) -> ColumnElement[Any]:
        """A JSON value read back from a subquery, to embed in an object or array."""
        return value

    def value(self, column: ColumnElement[Any]) -> ColumnElement[Any]:
        """A text or integer column as it is."""
        return column

    def boolean(self, condition: ColumnElement[Any]) -> ColumnElement[Any]:
        """A SQL boolean (a column, a comparison) as a JSON boolean."""
        return condition

    def flag(self, value: bool) -> ColumnElement[Any]:
        """A constant JSON boolean."""
        return true() if value else false()

    def iso(self, column: ColumnElement[Any]) -> ColumnElement[Any]:
        """A timestamptz as Python's ``isoformat()`` of the aware UTC datetime the hub
        reads."""
        utc = func.timezone("UTC", column)
        whole = func.to_char(utc, 'YYYY-MM-DD"T"HH24:MI:SS')
        micro = cast(func.extract("microseconds", column), Integer) % 1000000
        fraction = case((micro == 0, literal("")), else_=func.to_char(utc, ".US"))
        return case((column.is_(None), null()), else_=whole + fraction + literal("+00:00"))

    def uuid_text(self, column: ColumnElement[Any]) -> ColumnElement[Any]:
        """A uuid as ``str(uuid.UUID)`` writes it (lower-case, hyphenated)."""
        return cast(column, Text)

    def decimal_text(self, column: ColumnElement[Any]) -> ColumnElement[Any]:
        """A numeric as ``str`` of the ``Decimal`` the hub reads."""
        return cast(column, Text)

    def document(self, column: ColumnElement[Any]) -> ColumnElement[Any]:
        """A JSON column's value (a document, a list of strings), embedded as JSON."""
        return column

    def size(self, count: int) -> Any:
        """A page size (``LIMIT``, a row number or count compared with it) as written in
        the statement. On PostgreSQL in its text, not a parameter: a compiled statement is
        prepared once and run many times, and PostgreSQL keeps one generic plan only if it
        looks no costlier than planning each run; with a ``LIMIT`` parameter it guessed
        200 rows, so it planned each run anew (0.18 ms per three-level page). Sizes are
        integers the plan computed, never caller text."""
        return literal_column(str(int(count)), Integer)

    def year(self, column: ColumnElement[Any]) -> ColumnElement[Any]:
        """The UTC year of a stored time (the ``year_only`` mask)."""
        return cast(func.extract("year", func.timezone("UTC", column)), Integer)

    def global_id(self, type_name: str, column: ColumnElement[Any]) -> ColumnElement[Any]:
        """``schema.ids.to_global_id``: base64url of ``Type:uuid`` without padding."""
        raw = func.convert_to(literal(f"{type_name}:") + cast(column, Text), "UTF8")
        encoded = func.translate(func.encode(raw, "base64"), "+/", "-_")
        return func.rtrim(encoded, "=")

    def parameters(self, compiled: SQLCompiler) -> tuple[Any, ...]:
        """The positional parameters of a compiled statement, computed once with it (the
        values are the plan's and the caller's). asyncpg takes the Python values as
        they are."""
        params = compiled.construct_params() or {}
        return tuple(params[name] for name in compiled.positiontup or ())

    lateral = True
    """A row's bits are computed once per row, in a ``LATERAL`` subquery its select joins
    (else the expression is written where each field reads it: SQLite has no LATERAL,
    and a subquery per record would nest the statement deeper)."""


class PostgresJson(JsonDialect):
    """PostgreSQL: the base class as it is."""


class SqliteJson(JsonDialect):
    """SQLite's JSON1 (see the module docstring)."""

    name = "sqlite"
    masks = frozenset({"redact", "year_only", "bucket"})
    global_ids_in_sql = False
    lateral = False

    def object(self, pairs: list[Any]) -> ColumnElement[Any]:
        if len(pairs) > 100:
            raise Unsupported("more than 50 keys in one object")
        return func.json_object(*pairs)

    def array(self, items: list[Any]) -> ColumnElement[Any]:
        return func.json_array(*items)

    numbers_rows = False

    def page_array(
        self, value: ColumnElement[Any], order: Sequence[Any], where: Any | None
    ) -> ColumnElement[Any]:
        # The page's subquery has its ORDER BY and LIMIT, and its rows come to the
        # aggregate in that order: SQLite keeps a FROM subquery's ORDER BY when the outer
        # query aggregates with anything but count(), min() or max() (its OmitOrderBy
        # rule; group_concat relies on it too). ``json_group_array(... ORDER BY ...)``
        # would say it, from SQLite 3.44. Over no row it is ``[]``.
        del order, where
        return func.json_group_array(value)

    def text(self, value: ColumnElement[Any]) -> ColumnElement[Any]:
        return value  # JSON functions return text: a CAST would only nest deeper

    def refused(self, error: DBAPIError) -> str | None:
        # The parser's stack has 100 entries (YYSTACKDEPTH) before SQLite 3.46; every
        # shape the operation limits allow fits (tests), this is the guard beyond them.
        message = str(error.orig)
        if "parser stack overflow" in message or "too large (maximum depth" in message:
            return f"SQLite: {message}"
        return None

    def nested(self, value: ColumnElement[Any]) -> ColumnElement[Any]:
        # ``value -> '$'`` is json(value), but parsed after its operand: it does not nest
        # the subquery one level deeper in the statement (SQLite's parser stack holds
        # 100 entries; a deep query's nesting is what reaches it).
        return value.op("->")(literal("$"))

    def value(self, column: ColumnElement[Any]) -> ColumnElement[Any]:
        if isinstance(column.type, Uuid):
            return self.uuid_text(column)
        return column

    def boolean(self, condition: ColumnElement[Any]) -> ColumnElement[Any]:
        return case((condition, _TRUE), (not_(condition), _FALSE), else_=null())

    def flag(self, value: bool) -> ColumnElement[Any]:
        return _TRUE if value else _FALSE

    def iso(self, column: ColumnElement[Any]) -> ColumnElement[Any]:
        # Stored as SQLAlchemy writes a naive UTC time: "YYYY-MM-DD HH:MM:SS.ffffff".
        date = func.substr(column, 1, 10, type_=Text)
        time = func.substr(column, 12, 8, type_=Text)
        fraction = func.substr(column, 20, 7, type_=Text)
        shown = case(
            (or_(fraction == literal(""), fraction == literal(".000000")), literal("")),
            else_=fraction,
        )
        return case(
            (column.is_(None), null()),
            else_=date + literal("T") + time + shown + literal("+00:00"),
        )

    def uuid_text(self, column: ColumnElement[Any]) -> ColumnElement[Any]:
        # Stored as 32 lower-case hex digits (SQLAlchemy's Uuid without a native type).
        parts = [func.substr(column, start, length, type_=Text) for start, length in _UUID]
        text: ColumnElement[Any] = parts[0]
        for part in parts[1:]:
            text = text + literal("-") + part
        return text

    def decimal_text(self, column: ColumnElement[Any]) -> ColumnElement[Any]:
        # Stored as a double; SQLAlchemy reads it as Decimal("%.<scale>f" % value).
        scale = getattr(column.type, "scale", None)
        if not isinstance(scale, int):
            raise Unsupported(f"a decimal without a scale on SQLite ({column})")
        return case(
            (column.is_(None), null()),
            else_=func.printf(literal(f"%.{scale}f"), column, type_=Text),
        )

    def document(self, column: ColumnElement[Any]) -> ColumnElement[Any]:
        return func.json(column)

    def size(self, count: int) -> Any:
        # A parameter: told the size of a partner's page (LIMIT 50), SQLite's planner
        # scanned and sorted every customer the row policy admits, building each one's
        # JSON first (7.9 ms), where with a parameter it walks the name index (1.2 ms).
        return count

    def year(self, column: ColumnElement[Any]) -> ColumnElement[Any]:
        return cast(func.substr(column, 1, 4), Integer)

    def global_id(self, type_name: str, column: ColumnElement[Any]) -> ColumnElement[Any]:
        raise Unsupported("global ids in SQL on SQLite")  # the Python pass encodes them

    def parameters(self, compiled: SQLCompiler) -> tuple[Any, ...]:
        # sqlite3 takes the stored forms: the types' bind processors give them (uuids as
        # hex, times as naive UTC text), as SQLAlchemy's execution would.
        state = compiled.construct_expanded_state()
        processors: dict[str, Any] = {**compiled._bind_processors, **state.processors}
        return tuple(
            value if value is None or name not in processors else processors[name](value)
            for name, value in zip(
                state.positiontup or (), state.positional_parameters, strict=True
            )
        )


_TRUE = func.json(literal("true"))
_FALSE = func.json(literal("false"))
_UUID = ((1, 8), (9, 4), (13, 4), (17, 4), (21, 12))

_DIALECTS: dict[str, JsonDialect] = {"postgresql": PostgresJson(), "sqlite": SqliteJson()}
SQL_DIALECTS = frozenset(_DIALECTS)
"""The databases compiled plans run on as one SQL statement per root field."""


def json_dialect(dialect: Dialect) -> JsonDialect:
    """The :class:`JsonDialect` of a SQLAlchemy dialect (:class:`Unsupported` for a
    database the compiled statements are not written for)."""
    found = _DIALECTS.get(dialect.name)
    if found is None:
        raise Unsupported(f"SQL plans on {dialect.name}")
    return found
