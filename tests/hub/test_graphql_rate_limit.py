"""The per-client GraphQL rate limit by cost (hub.cost_budget; DESIGN §7, CHECKLIST API4):
each request spends its operation's cost from its client's budget per window, in memory
or shared through Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from app import create_app
from hub.cost_budget import CostBudget, CostLimiter, OverBudgetError
from hub.counters import MemoryCounters, RedisCounters, counter_backend
from hub.db import Database
from hub.settings import Settings
from tests.conftest import Caller, make_caller, make_settings, token_for
from tests.hub.ratelimit_helpers import REDIS_URL, FakeClock

GRAPHQL_RESPONSE = "application/graphql-response+json"
ME = "{ me { clientId } }"  # costs 2
CUSTOMERS = "{ customers(first: 10) { edges { node { id name } } } }"  # costs 41
CREATE = """mutation($input: CustomerInput!) {
  createCustomer(input: $input) { customer { id } userErrors { code } } }"""  # costs 24
COUNT = "{ customers(first: 1) { totalCount } }"  # costs 2
# Over the default cost limit (20 x 60,501 > 300,000).
HUGE = (
    "{ "
    + " ".join(
        f"a{i}: customers(first: 100) {{ edges {{ node {{ id name "
        "feedback(first: 100) { edges { node { id text kind createdAt } } } } } }"
        for i in range(20)
    )
    + " }"
)


@pytest.fixture
async def app(db: Database, database_url: str) -> AsyncIterator[Starlette]:
    application = create_app(make_settings(database_url))
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def http(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://hub.test") as client:
        yield client


def budget(app: Starlette, clock: FakeClock, per_client: int) -> None:
    """A budget of ``per_client`` per 60 s, on a clock the test moves."""
    app.state.runtime.graphql_limiter = CostLimiter(
        MemoryCounters(), CostBudget(per_client=per_client, window=60), clock
    )


async def post(
    http: httpx.AsyncClient, caller: Caller, query: str, variables: dict[str, Any] | None = None
) -> httpx.Response:
    token = caller.token or await token_for(http, caller)
    return await http.post(
        "/graphql",
        json={"query": query, "variables": variables or {}},
        headers={"Authorization": f"Bearer {token}", "Accept": GRAPHQL_RESPONSE},
    )


def assert_ran(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert "errors" not in body, body
    return body


def assert_limited(response: httpx.Response, retry_after: int) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["Retry-After"] == str(retry_after)
    assert response.headers["content-type"].startswith(GRAPHQL_RESPONSE)
    body = response.json()
    assert "data" not in body, body
    [error] = body["errors"]
    assert error["extensions"]["code"] == "RATE_LIMITED"
    assert "retry after" in error["message"]


async def test_the_request_past_the_budget_is_refused_and_others_are_not(
    app: Starlette, http: httpx.AsyncClient, db: Database
) -> None:
    clock = FakeClock()
    budget(app, clock, per_client=3 * 41)
    one = await make_caller(db, "operator")
    other = await make_caller(db, "operator")
    await token_for(http, one)
    await token_for(http, other)
    for _ in range(3):
        assert_ran(await post(http, one, CUSTOMERS))
    assert_limited(await post(http, one, CUSTOMERS), retry_after=40)  # window ends at +40 s
    assert_ran(await post(http, other, CUSTOMERS))  # another client spends its own budget
    clock.now += 39.5
    assert_limited(await post(http, one, ME), retry_after=1)
    clock.now += 0.5  # the next window
    assert_ran(await post(http, one, CUSTOMERS))


async def test_requests_spend_their_cost_not_one_each(
    app: Starlette, http: httpx.AsyncClient, db: Database
) -> None:
    clock = FakeClock()
    budget(app, clock, per_client=50)
    caller = await make_caller(db, "operator")
    assert_ran(await post(http, caller, CUSTOMERS))  # 41 spent
    assert_ran(await post(http, caller, ME))  # 43
    assert_limited(await post(http, caller, CUSTOMERS), retry_after=40)  # 84 > 50
    clock.now += 40
    for _ in range(25):  # cheap requests: 25 x 2 = 50
        assert_ran(await post(http, caller, ME))
    assert_limited(await post(http, caller, ME), retry_after=60)


async def test_a_refused_request_is_not_run(
    app: Starlette, http: httpx.AsyncClient, db: Database
) -> None:
    clock = FakeClock()
    budget(app, clock, per_client=24 + 2)
    caller = await make_caller(db, "operator")
    created = assert_ran(await post(http, caller, CREATE, {"input": {"name": "First"}}))
    assert created["data"]["createCustomer"]["userErrors"] == []
    assert_limited(await post(http, caller, CREATE, {"input": {"name": "Second"}}), 40)
    clock.now += 40
    body = assert_ran(await post(http, caller, COUNT))
    assert body["data"]["customers"]["totalCount"] == 1  # only the first was written


async def test_an_operation_over_the_cost_limit_spends_one(
    app: Starlette, http: httpx.AsyncClient, db: Database
) -> None:
    """Refused by the cost limit without running: its cost is not spent (1 is)."""
    clock = FakeClock()
    budget(app, clock, per_client=2 + 1 + 2)
    caller = await make_caller(db, "operator")
    assert_ran(await post(http, caller, ME))
    refused = await post(http, caller, HUGE)
    assert refused.status_code == 400, refused.text
    assert refused.json()["errors"][0]["extensions"]["code"] == "MAX_COST_EXCEEDED"
    assert_ran(await post(http, caller, ME))  # 2 + 1 + 2 = 5: still within
    assert_limited(await post(http, caller, ME), retry_after=40)


async def test_the_default_budget_is_the_settings(app: Starlette) -> None:
    limiter: CostLimiter = app.state.runtime.graphql_limiter
    defaults = Settings.model_fields
    assert limiter.budget == CostBudget(
        per_client=defaults["graphql_cost_per_client"].default,
        window=defaults["graphql_rate_window"].default,
    )
    # Twenty operations at the cost limit per window: far past what a test or a partner's
    # sync sends, and the cost limit fits in it.
    assert limiter.budget.per_client == 20 * defaults["max_cost"].default
    # The same counters as the token limits (one Redis connection when shared).
    assert limiter.counters is app.state.runtime.rate_limiter.counters


async def test_budget_and_window_come_from_settings(database_url: str) -> None:
    settings = make_settings(
        database_url, graphql_cost_per_client=7, graphql_rate_window=30, max_cost=7
    )
    limiter = CostLimiter(counter_backend(settings), CostBudget.from_settings(settings))
    assert limiter.budget == CostBudget(per_client=7, window=30)


async def test_memory_limiter_counts_per_client_and_window() -> None:
    clock = FakeClock()
    limiter = CostLimiter(MemoryCounters(), CostBudget(per_client=10, window=60), clock)
    assert await limiter.spend("a", 6) == 6
    assert await limiter.spend("a", 0) == 7  # every request counts, at least 1
    with pytest.raises(OverBudgetError) as refused:
        await limiter.spend("a", 4)
    assert refused.value.retry_after == 40
    assert await limiter.spend("b", 10) == 10
    clock.now += 40
    assert await limiter.spend("a", 10) == 10


async def test_redis_shares_the_budget_between_replicas(
    redis_prefix: str, database_url: str
) -> None:
    settings = make_settings(database_url, redis_url=REDIS_URL, rate_limit_prefix=redis_prefix)
    clock = FakeClock()
    budget = CostBudget(per_client=100, window=60)
    # Two limiters on one Redis stand for two replicas: they spend from one budget.
    first = CostLimiter(counter_backend(settings), budget, clock)
    second = CostLimiter(counter_backend(settings), budget, clock)
    try:
        assert isinstance(first.counters, RedisCounters)
        assert await first.spend("c1", 60) == 60
        assert await second.spend("c1", 40) == 100
        with pytest.raises(OverBudgetError) as refused:
            await first.spend("c1", 1)
        assert refused.value.retry_after == 40
        assert await second.spend("c2", 100) == 100  # another client
        clock.now += 40
        assert await second.spend("c1", 100) == 100  # a new window
    finally:
        await first.counters.close()
        await second.counters.close()
