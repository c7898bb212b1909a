"""The one JSON form of the hub's values where a byte-exact text matters (hashes of
audit events and of idempotent requests): ``json.dumps(..., default=plain)``."""

from __future__ import annotations

import dataclasses
import enum
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any


def plain(value: Any) -> Any:
    """A JSON-ready stand-in for ``value``: dataclasses as dicts, enums as their values,
    aware times in UTC ISO 8601, UUIDs and decimals as text, sets (and tuples) as sorted
    lists. Anything else is refused: a hash over a value's ``repr`` would not be stable."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat() if value.tzinfo else value.isoformat()
    if isinstance(value, uuid.UUID | Decimal):
        return str(value)
    if isinstance(value, set | frozenset | tuple):
        return sorted(plain(v) for v in value)
    raise TypeError(f"{type(value).__name__} has no plain JSON form")
