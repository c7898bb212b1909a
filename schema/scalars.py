"""Scalar definitions the hub overrides (``HubSchema(scalar_overrides=...)``).

``DateTime``: strawberry's parser (``dateutil.parser.isoparse``) accepts any offset on any
date, so ``0001-01-01T00:00:00+14:00`` parses, but its UTC instant lies before year 1 and
the conversion every stored or compared time goes through raised ``OverflowError``: an
internal error from any caller's filter. Such a value is refused here, like any other
string that is not a DateTime."""

from __future__ import annotations

import datetime as dt

import dateutil.parser
from strawberry.schema.types.base_scalars import DateTimeDefinition, wrap_parser
from strawberry.types.scalar import ScalarDefinition, ScalarWrapper


def _parse_datetime(value: str) -> dt.datetime:
    parsed: dt.datetime = dateutil.parser.isoparse(value)
    if parsed.tzinfo is not None:
        parsed.astimezone(dt.UTC)  # OverflowError past year 1 or 9999 in UTC
    return parsed


DATETIME = ScalarDefinition(
    name=DateTimeDefinition.name,
    description=DateTimeDefinition.description,
    specified_by_url=DateTimeDefinition.specified_by_url,
    serialize=DateTimeDefinition.serialize,
    parse_value=wrap_parser(_parse_datetime, "DateTime", (ValueError, OverflowError)),
    parse_literal=None,
    origin=dt.datetime,
)

SCALAR_OVERRIDES: dict[object, type | ScalarWrapper | ScalarDefinition] = {dt.datetime: DATETIME}
