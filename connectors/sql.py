"""SQL databases: any SQLAlchemy URL (an async driver: ``postgresql+asyncpg``,
``sqlite+aiosqlite``, ...), a query, and an incremental cursor column.

The query's rows are read in pages ordered by ``(cursor, key)``, where ``key`` is a
column unique among rows sharing a cursor value (the primary key). The checkpoint is the
last row's pair, and the next page starts strictly after it: rows sharing a cursor value
across a page (or batch) boundary are neither skipped nor read twice, which a checkpoint
on the cursor alone gets wrong (``>`` loses the rest of the tie, ``>=`` repeats it). A
row whose cursor column is NULL is never read: give the column a value (e.g.
``COALESCE(updated_at, created_at)`` in the query).

Configuration (``config`` of a ``sql`` connector; a password may come from the
credentials, ``{password: ...}``, instead of the URL)::

    url: postgresql+asyncpg://desk@db.internal/desk
    query: SELECT id, email, body, updated_at FROM tickets WHERE deleted = false
    cursor: updated_at
    key: id
    page: 500
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import create_async_engine

from connectors.base import Record, SourceError, TransientSourceError
from connectors.config import ConfigError, required_text

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_SYNC_TO_ASYNC = {"postgresql": "postgresql+asyncpg", "sqlite": "sqlite+aiosqlite"}
_TYPES: dict[str, Any] = {
    "int": int,
    "float": float,
    "str": str,
    "decimal": Decimal,
    "datetime": datetime.fromisoformat,
    "date": date.fromisoformat,
}


@dataclass(frozen=True)
class SqlConfig:
    url: URL
    query: str
    cursor: str
    key: str
    page: int = 500

    @classmethod
    def parse(cls, config: Mapping[str, Any], credentials: Mapping[str, str] | None) -> SqlConfig:
        unknown = sorted(set(config) - {"url", "query", "cursor", "key", "page"})
        if unknown:
            raise ConfigError(f"config.{unknown[0]}: not a setting of a sql connector")
        try:
            url = make_url(required_text(config, "url"))
        except ArgumentError:
            raise ConfigError("config.url: not a database URL (dialect+driver://...)") from None
        url = url.set(drivername=_SYNC_TO_ASYNC.get(url.drivername, url.drivername))
        if credentials and "password" in credentials:
            url = url.set(password=credentials["password"])
        query = required_text(config, "query").rstrip().rstrip(";")
        names = {}
        for name in ("cursor", "key"):
            value = required_text(config, name)
            if not _IDENTIFIER.fullmatch(value):
                raise ConfigError(f"config.{name}: must be a column name of the query")
            names[name] = value
        page = config.get("page", 500)
        if not isinstance(page, int) or isinstance(page, bool) or not 1 <= page <= 10_000:
            raise ConfigError("config.page: a whole number from 1 to 10000")
        return cls(url, query, names["cursor"], names["key"], page)


def _tagged(value: Any) -> list[Any]:
    if isinstance(value, Decimal):
        return ["decimal", str(value)]
    for tag, kind in (("datetime", datetime), ("date", date)):  # a datetime is a date too
        if isinstance(value, kind):
            return [tag, value.isoformat()]
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise SourceError(f"a cursor or key of type {type(value).__name__} cannot be checkpointed")
    return [type(value).__name__, value]


def _untagged(pair: list[Any]) -> Any:
    tag, value = pair
    return _TYPES[tag](value)


def cursor_text(cursor: Any, key: Any) -> str:
    return json.dumps({"cursor": _tagged(cursor), "key": _tagged(key)}, separators=(",", ":"))


def _parse_cursor(text_value: str | None) -> tuple[Any, Any] | None:
    if text_value is None:
        return None
    try:
        value = json.loads(text_value)
        return _untagged(value["cursor"]), _untagged(value["key"])
    except (ValueError, KeyError, TypeError):
        raise SourceError(f"the checkpoint {text_value!r} is not a sql connector's") from None


class SqlSource:
    """Rows of a query, in ``(cursor, key)`` order, after a checkpoint."""

    def __init__(self, config: SqlConfig) -> None:
        self.config = config

    @classmethod
    def from_config(
        cls, config: Mapping[str, Any], credentials: Mapping[str, str] | None = None
    ) -> SqlSource:
        return cls(SqlConfig.parse(config, credentials))

    def _statement(self, after: bool) -> Any:
        c, k = self.config.cursor, self.config.key
        where = f"WHERE src.{c} IS NOT NULL"
        if after:
            where += f" AND (src.{c} > :cursor OR (src.{c} = :cursor AND src.{k} > :key))"
        # The names are checked identifiers; every value is a bound parameter.
        return text(
            f"SELECT * FROM ({self.config.query}) AS src {where} "  # noqa: S608
            f"ORDER BY src.{c}, src.{k} LIMIT :page"
        )

    async def read(self, cursor: str | None) -> AsyncIterator[Record]:
        after = _parse_cursor(cursor)
        try:
            engine = create_async_engine(self.config.url)
        except (ArgumentError, ImportError) as error:
            raise SourceError(f"cannot use the database URL: {error}") from None
        try:
            while True:
                params: dict[str, Any] = {"page": self.config.page}
                if after is not None:
                    params["cursor"], params["key"] = after
                rows = await self._page(engine, after is not None, params)
                for row in rows:
                    data = dict(row._mapping)
                    missing = {self.config.cursor, self.config.key} - data.keys()
                    if missing:
                        raise SourceError(f"the query has no column {sorted(missing)[0]!r}")
                    after = (data[self.config.cursor], data[self.config.key])
                    position = f"{self.config.key}={data[self.config.key]}"
                    yield Record(data, position, cursor_text(*after))
                if len(rows) < self.config.page:
                    return
        finally:
            await engine.dispose()

    async def _page(self, engine: Any, after: bool, params: dict[str, Any]) -> list[Any]:
        host = self.config.url.render_as_string(hide_password=True)
        try:
            async with engine.connect() as conn:
                return list((await conn.execute(self._statement(after), params)).all())
        except (DBAPIError, OSError) as error:
            if _unreachable(error):
                raise TransientSourceError(f"{host}: {_first_line(error)}") from None
            raise SourceError(f"{host}: the query failed: {_first_line(error)}") from None


_UNREACHABLE = ("connect", "connection", "database is locked", "unable to open", "timeout")


def _unreachable(error: BaseException) -> bool:
    """The database could not be reached (worth retrying), not a bad query."""
    if isinstance(error, OSError | InterfaceError):
        return True
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return True
    message = _first_line(error).lower()
    return isinstance(error, OperationalError) and any(part in message for part in _UNREACHABLE)


def _first_line(error: BaseException) -> str:
    orig = getattr(error, "orig", None) or error
    lines = str(orig).strip().splitlines()
    return lines[0][:300] if lines else type(orig).__name__


__all__ = ["SqlConfig", "SqlSource", "cursor_text"]
