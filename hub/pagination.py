"""Keyset pagination with opaque cursors (Relay connections)."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, Select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from hub.errors import BadInputError

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    """Items with their ordering keys; cursors are encoded only when asked for."""

    items: list[T]
    keys: list[tuple[Any, ...]]
    ordering_key: str
    has_next: bool = False
    has_previous: bool = False

    def cursor(self, index: int) -> str:
        return encode_cursor(self.ordering_key, self.keys[index])


def page_size(first: int | None, *, default: int, maximum: int) -> int:
    if first is None:
        return default
    if first < 0 or first > maximum:
        raise BadInputError(f"first must be between 0 and {maximum}")
    return first


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def encode_cursor(key: str, values: tuple[Any, ...]) -> str:
    raw = json.dumps([key, *map(_plain, values)], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, key: str, types: tuple[type, ...]) -> tuple[Any, ...]:
    """Read a cursor made by :func:`encode_cursor` for the ordering ``key``."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(data, list) or data[0] != key or len(data) != len(types) + 1:
            raise ValueError
        values: list[Any] = []
        for kind, raw in zip(types, data[1:], strict=True):
            if kind is datetime:
                values.append(datetime.fromisoformat(raw))
            elif kind is uuid.UUID:
                values.append(uuid.UUID(raw))
            else:
                values.append(kind(raw))
        return tuple(values)
    except (ValueError, TypeError, binascii.Error, IndexError, json.JSONDecodeError):
        raise BadInputError("after is not a cursor of this list and ordering") from None


@dataclass(frozen=True)
class Ordering:
    """An ordering over ``columns`` (the last is unique), ascending or descending."""

    key: str
    columns: tuple[InstrumentedAttribute[Any], ...]
    types: tuple[type, ...]
    descending: bool = False

    def order_by(self) -> list[Any]:
        return [c.desc() if self.descending else c.asc() for c in self.columns]

    def after(self, cursor: str) -> ColumnElement[bool]:
        values = decode_cursor(cursor, self.key, self.types)
        left, right = tuple_(*self.columns), tuple_(*values)
        return left < right if self.descending else left > right

    def cursor(self, row: Any) -> str:
        return encode_cursor(self.key, self.values(row))

    def values(self, row: Any) -> tuple[Any, ...]:
        return tuple(getattr(row, c.key) for c in self.columns)


async def fetch_page(
    session: AsyncSession,
    statement: Select[Any],
    ordering: Ordering,
    *,
    size: int,
    after: str | None,
    project: Callable[[Sequence[Any]], list[T]],
) -> Page[T]:
    """Run ``statement`` (already filtered; plain columns, not ORM entities, which cost
    several times more to build) as one keyset page of ``size`` rows."""
    if after:
        statement = statement.where(ordering.after(after))
    statement = statement.order_by(*ordering.order_by()).limit(size + 1)
    rows = list((await session.execute(statement)).all())
    rows, has_next = rows[:size], len(rows) > size
    return Page(
        items=project(rows),
        keys=[ordering.values(row) for row in rows],
        ordering_key=ordering.key,
        has_next=has_next,
        has_previous=after is not None,
    )
