"""Token endpoint rate limits (per client, per source address; memory and Redis) and the
audit log of failed client authentications."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from starlette.applications import Starlette

from app import create_app
from hub.counters import MemoryCounters, RedisCounters
from hub.db import Database
from hub.oauth.ratelimit import (
    FailureBudget,
    Limit,
    RateLimitedError,
    TokenRateLimiter,
    token_rate_limiter,
)
from tests.conftest import Caller, make_caller, make_settings
from tests.hub.ratelimit_helpers import REDIS_URL, FakeClock, RecordingHandler


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


def limit(app: Starlette, clock: FakeClock, *, per_client: int, per_address: int) -> None:
    app.state.runtime.rate_limiter = TokenRateLimiter(
        MemoryCounters(),
        per_client=Limit(per_client, 60),
        per_address=Limit(per_address, 60),
        failures=FailureBudget(
            per_client_address=100,
            per_client=100,
            window=60,
            backoff_max=60,
            known_address_ttl=3600,
        ),
        clock=clock,
    )


async def token(
    http: httpx.AsyncClient, caller: Caller, secret: str | None = None
) -> httpx.Response:
    return await http.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(caller.client_id, secret or caller.secret),
    )


def assert_limited(response: httpx.Response, retry_after: int) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["Retry-After"] == str(retry_after)
    assert response.headers["Cache-Control"] == "no-store"
    assert response.json()["error"] == "slow_down"


async def test_per_client_limit_and_window_reset(
    app: Starlette, http: httpx.AsyncClient, db: Database
) -> None:
    clock = FakeClock()
    limit(app, clock, per_client=3, per_address=100)
    one = await make_caller(db, "distributor")
    other = await make_caller(db, "supplier")
    for _ in range(3):
        assert (await token(http, one)).status_code == 200
    assert_limited(await token(http, one), retry_after=40)  # the window ends at 1_000_080
    assert (await token(http, other)).status_code == 200  # another client is not affected
    clock.now += 39.5
    assert_limited(await token(http, one), retry_after=1)
    clock.now += 0.5  # the next window
    assert (await token(http, one)).status_code == 200


async def test_per_address_limit_counts_failed_authentications(
    app: Starlette, http: httpx.AsyncClient, db: Database
) -> None:
    clock = FakeClock()
    limit(app, clock, per_client=100, per_address=4)
    caller = await make_caller(db, "vendor")
    for _ in range(4):  # secret guessing: refused, and counted
        assert (await token(http, caller, "guess")).status_code == 401
    assert_limited(await token(http, caller), retry_after=40)  # even with the right secret
    assert_limited(await token(http, caller, "guess"), retry_after=40)
    clock.now += 40
    assert (await token(http, caller)).status_code == 200


async def test_limits_come_from_settings(database_url: str) -> None:
    settings = make_settings(database_url, token_rate_per_client=2, token_rate_per_address=9)
    limiter = token_rate_limiter(settings, clock=FakeClock())
    assert isinstance(limiter.counters, MemoryCounters)
    assert (limiter.per_client, limiter.per_address) == (Limit(2, 60), Limit(9, 60))
    await limiter.check_client("a")
    await limiter.check_client("a")
    with pytest.raises(RateLimitedError) as refused:
        await limiter.check_client("a")
    assert refused.value.limit == "client"


async def test_failure_budget_comes_from_settings(database_url: str) -> None:
    settings = make_settings(
        database_url,
        token_rate_window=30,
        token_failures_per_client_address=3,
        token_failures_per_client=7,
        token_failure_backoff_max=900,
        token_known_address_ttl=86_400,
    )
    limiter = token_rate_limiter(settings, clock=FakeClock())
    assert limiter.failures.budget == FailureBudget(
        per_client_address=3, per_client=7, window=30, backoff_max=900, known_address_ttl=86_400
    )
    defaults = token_rate_limiter(make_settings(database_url)).failures.budget
    assert (defaults.per_client_address, defaults.per_client) == (10, 100)
    assert (defaults.backoff_max, defaults.known_address_ttl) == (3600, 7 * 86_400)


async def test_redis_backend_shares_counts(redis_prefix: str, database_url: str) -> None:
    settings = make_settings(
        database_url,
        redis_url=REDIS_URL,
        rate_limit_prefix=redis_prefix,
        token_rate_per_client=2,
        token_rate_per_address=3,
    )
    clock = FakeClock()
    # Two limiters on one Redis stand for two replicas: they share one count.
    first, second = token_rate_limiter(settings, clock), token_rate_limiter(settings, clock)
    try:
        assert isinstance(first.counters, RedisCounters)
        await first.check_client("c1")
        await second.check_client("c1")
        with pytest.raises(RateLimitedError) as refused:
            await first.check_client("c1")
        assert refused.value.retry_after == 40
        await second.check_client("c2")
        for _ in range(3):
            await first.check_address("10.0.0.1")
        with pytest.raises(RateLimitedError):
            await second.check_address("10.0.0.1")
        clock.now += 40
        await first.check_client("c1")  # a new window
        redis = Redis.from_url(REDIS_URL)
        keys = [key async for key in redis.scan_iter(match=f"{redis_prefix}*")]
        assert len(keys) == 4
        assert all([0 < await redis.ttl(key) <= 61 for key in keys])
        await redis.aclose()
    finally:
        await first.close()
        await second.close()


async def test_failed_authentications_are_logged_without_secrets(
    http: httpx.AsyncClient, db: Database, audit_log: RecordingHandler
) -> None:
    caller = await make_caller(db, "distributor")
    wrong = "wrong-secret-" + uuid.uuid4().hex
    assert (await token(http, caller, wrong)).status_code == 401
    posted = {"grant_type": "client_credentials", "client_id": "hub_nobody", "client_secret": wrong}
    assert (await http.post("/oauth/token", data=posted)).status_code == 401
    assert (await token(http, caller)).status_code == 200  # success is not an audit event

    audit_records = audit_log.records
    events: list[dict[str, Any]] = [getattr(r, "fields", {}) for r in audit_records]
    assert [(e["client_id"], e["method"]) for e in events] == [
        (caller.client_id, "client_secret_basic"),
        ("hub_nobody", "client_secret_post"),
    ]
    for event in events:
        assert event["event"] == "client_authentication_failed"
        assert event["source_address"] == "127.0.0.1"
        assert event["reason"] == "client authentication failed"
    logged = " ".join(f"{r.getMessage()} {getattr(r, 'fields', {})}" for r in audit_records)
    assert wrong not in logged and caller.secret not in logged
