"""A DateTime whose offset takes it past the calendar's ends in UTC (year 0 or 10000) is
refused as a DateTime it cannot represent, never an internal error. Found by probing a
running server: ``updatedSince: "0001-01-01T00:00:00+14:00"`` (any partner's filter) and
the same value in logInteraction/reportPurchase/recordConsent answered
INTERNAL_SERVER_ERROR (the conversion to UTC overflowed on the way to SQL)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from hub.db import Database
from tests.conftest import Caller, gql, make_caller, make_settings
from tests.hub.factories import gid, make_customer

OUT_OF_RANGE = ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"]
IN_RANGE = ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "2026-01-01T00:00:00+14:00"]


def _refused(body: dict[str, Any]) -> None:
    assert "data" not in body or body["data"] is None, body
    messages = " ".join(error["message"] for error in body["errors"])
    assert "cannot represent a DateTime" in messages, body
    assert "Internal server error" not in messages


@pytest.fixture(params=[True, False], ids=["compiled", "resolvers"])
async def http(request: pytest.FixtureRequest, db: Database, database_url: str) -> Any:
    from app import create_app

    application = create_app(make_settings(database_url, compiled_reads=request.param))
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://hub.test") as client:
            yield client


@pytest.mark.parametrize("value", OUT_OF_RANGE)
async def test_a_filter_time_past_the_calendar_is_refused(
    http: httpx.AsyncClient, db: Database, value: str
) -> None:
    distributor = await make_caller(db, "distributor")
    as_variable = await gql(
        http,
        distributor,
        "query($d: DateTime) { customers(first: 1, filter: {updatedSince: $d}) { totalCount } }",
        {"d": value},
        expect_errors=True,
    )
    _refused(as_variable)
    as_literal = await gql(
        http,
        distributor,
        f'{{ customers(first: 1, filter: {{updatedSince: "{value}"}}) {{ totalCount }} }}',
        expect_errors=True,
    )
    _refused(as_literal)
    feedback = await gql(
        http,
        distributor,
        "query($d: DateTime) { feedback(first: 1, filter: {since: $d}) { totalCount } }",
        {"d": value},
        expect_errors=True,
    )
    _refused(feedback)


@pytest.mark.parametrize("value", IN_RANGE)
async def test_a_filter_time_inside_the_calendar_still_runs(
    http: httpx.AsyncClient, db: Database, value: str
) -> None:
    distributor = await make_caller(db, "distributor")
    body = await gql(
        http,
        distributor,
        "query($d: DateTime) { customers(first: 1, filter: {updatedSince: $d}) { totalCount } }",
        {"d": value},
    )
    assert isinstance(body["data"]["customers"]["totalCount"], int)


MUTATIONS: list[tuple[str, str, dict[str, Any], str]] = [
    (
        "logInteraction",
        "LogInteractionInput",
        {"channel": "EMAIL", "direction": "INBOUND", "summary": "s"},
        "occurredAt",
    ),
    (
        "reportPurchase",
        "ReportPurchaseInput",
        {"sku": "S", "quantity": 1, "amount": "1.00", "currency": "USD"},
        "purchasedAt",
    ),
    (
        "recordConsent",
        "RecordConsentInput",
        {"source": "probe", "shareWithPartners": True},
        "givenAt",
    ),
]


@pytest.mark.parametrize("value", OUT_OF_RANGE)
async def test_a_contribution_time_past_the_calendar_is_refused(
    client: httpx.AsyncClient, db: Database, value: str
) -> None:
    operator: Caller = await make_caller(db, "operator")
    customer = await make_customer(db)
    for mutation, input_type, fields, time_field in MUTATIONS:
        variables = {"i": {"customerId": gid(customer), **fields, time_field: value}}
        body = await gql(
            client,
            operator,
            f"mutation($i: {input_type}!) {{ {mutation}(input: $i) {{ userErrors {{ code }} }} }}",
            variables,
            expect_errors=True,
        )
        _refused(body)
