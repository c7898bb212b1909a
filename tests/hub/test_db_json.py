"""JSON columns are written by hub.db.json_text: the same JSON values as json.dumps."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import JSON, Column, Integer, MetaData, Table, select

from hub.db import Database, json_text

_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)  # beyond 64 bits too
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text() | st.integers(-5, 5), inner, max_size=4)
    ),
    max_leaves=20,
)


@given(values)
def test_json_text_writes_the_json_values_json_dumps_writes(value: Any) -> None:
    assert json.loads(json_text(value)) == json.loads(json.dumps(value))


def test_json_text_refuses_what_json_dumps_refuses() -> None:
    with pytest.raises(TypeError):
        json_text({"at": dt.datetime(2026, 12, 6, tzinfo=dt.UTC)})


async def test_json_columns_round_trip_through_the_engine(db: Database) -> None:
    table = Table(
        "json_text_probe",
        MetaData(),
        Column("id", Integer, primary_key=True),
        Column("doc", JSON),
    )
    document = {"name": "Zoë", "tags": ["a", "ü"], "n": 2**70, "nested": {"1": None}}
    async with db.engine.begin() as connection:
        await connection.run_sync(table.create)
    try:
        async with db.engine.begin() as connection:
            await connection.execute(table.insert(), [{"id": 1, "doc": document}])
            stored = (await connection.execute(select(table.c.doc))).scalar_one()
        assert stored == document
    finally:
        async with db.engine.begin() as connection:
            await connection.run_sync(table.drop)
