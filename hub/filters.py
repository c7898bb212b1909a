"""Building blocks of list filters: exact matches and time bounds, typed and checked."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement
from sqlmodel import col

from hub.errors import BadInputError


def exact(*pairs: tuple[Any, object | None]) -> list[ColumnElement[bool]]:
    """``column = value`` for every pair whose value was given."""
    return [col(column) == value for column, value in pairs if value is not None]


def not_before(column: Any, value: datetime | None, name: str) -> list[ColumnElement[bool]]:
    """``column >= value``; a time without offset is ambiguous, so it is refused."""
    if value is None:
        return []
    if value.tzinfo is None:
        raise BadInputError(f"{name} must carry a time zone offset, e.g. 2026-01-31T09:00:00Z")
    return [col(column) >= value]
