"""``insert_rows`` processes a batch's repeated values once (hub.bulk._memoised): what it
gives equals the column's own processing, value by value, and values that are equal
but encode differently are never shared."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from sqlalchemy import JSON
from sqlalchemy.dialects import postgresql

from hub.bulk import _memoised
from hub.models._types import UTCDateTime


def test_a_memoised_processor_gives_what_the_column_gives() -> None:
    dialect = postgresql.asyncpg.dialect()  # type: ignore[no-untyped-call]
    encode = JSON()._cached_bind_processor(dialect)
    assert encode is not None
    memo = _memoised(encode)
    values: list[Any] = [
        ["text", "kind"],
        ["text", "kind"],
        [],
        [1],
        [1.0],
        [True],
        ["a", 1],
        {"a": 1},
        None,
        "x",
    ]
    assert [memo(v) for v in values] == [encode(v) for v in values]
    assert memo([1.0]) != memo([1])  # equal keys, different JSON: not shared


def test_times_are_processed_alike_whatever_their_zone() -> None:
    dialect = postgresql.asyncpg.dialect()  # type: ignore[no-untyped-call]
    process = UTCDateTime()._cached_bind_processor(dialect)
    assert process is not None
    memo = _memoised(process)
    now = datetime(2025, 3, 1, 10, 0, tzinfo=UTC)
    same = now.astimezone(timezone(timedelta(hours=2)))
    assert memo(now) == process(now) and memo(same) == process(same) == process(now)
