"""Budgets of failed client authentications (hub.oauth.ratelimit.FailureLimiter): guesses
spread over many addresses meet 429, a partner's usual address keeps its tokens, blocks
back off, and a refused guess says nothing about itself; in memory and in Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from starlette.applications import Starlette

from app import create_app
from hub.counters import CounterBackend, MemoryCounters, RedisCounters
from hub.db import Database
from hub.oauth.ratelimit import (
    FailureBudget,
    FailureLimiter,
    RateLimitedError,
    token_rate_limiter,
)
from hub.settings import Settings
from tests.conftest import make_caller, make_settings
from tests.hub.ratelimit_helpers import REDIS_URL, FakeClock, RecordingHandler, redis_test_prefix
from tests.hub.staff_helpers import make_code_client, make_staff

Backend = Callable[[], CounterBackend]
WINDOW_START = 1_000_020.0  # a window of 60 s starts here: 1_000_020 = 16_667 * 60


@pytest.fixture(params=["memory", "redis"])
async def prefix(request: pytest.FixtureRequest, database_url: str) -> AsyncIterator[str | None]:
    """None: count in memory; else a Redis key prefix of this test's own."""
    del database_url  # only to share the db marker's parametrisation
    if request.param == "memory":
        yield None
        return
    async with redis_test_prefix() as redis_prefix:
        yield redis_prefix


@pytest.fixture
def backend_settings(prefix: str | None, database_url: str) -> Settings:
    """The shipped defaults, counted in memory or in Redis."""
    if prefix is None:
        return make_settings(database_url)
    return make_settings(database_url, redis_url=REDIS_URL, rate_limit_prefix=prefix)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(WINDOW_START)


@pytest.fixture
async def app(
    db: Database, backend_settings: Settings, clock: FakeClock
) -> AsyncIterator[Starlette]:
    del db  # the database of the parametrisation, made and dropped by the fixture
    application = create_app(backend_settings)
    async with application.router.lifespan_context(application):
        runtime = application.state.runtime
        await runtime.rate_limiter.close()
        runtime.rate_limiter = token_rate_limiter(backend_settings, clock)
        yield application  # the lifespan closes the limiter in place


Send = Callable[..., Awaitable[httpx.Response]]


@pytest.fixture
def send(app: Starlette) -> Send:
    """POST a form from a chosen source address (the ASGI ``client`` of the request)."""

    async def post(
        path: str, address: str, data: dict[str, str], auth: tuple[str, str] | None = None
    ) -> httpx.Response:
        transport = httpx.ASGITransport(app=app, client=(address, 40_000))
        async with httpx.AsyncClient(
            transport=transport, base_url="http://hub.test", auth=auth
        ) as http:
            return await http.post(path, data=data)

    return post


async def token(send: Send, address: str, client_id: str, secret: str) -> httpx.Response:
    grant = {"grant_type": "client_credentials"}
    return await send("/oauth/token", address, grant, (client_id, secret))


def assert_slow_down(response: httpx.Response) -> int:
    assert response.status_code == 429, response.text
    assert response.json()["error"] == "slow_down"
    assert response.headers["Cache-Control"] == "no-store"
    assert "access_token" not in response.json()
    return int(response.headers["Retry-After"])


def rotating(index: int) -> str:
    return f"198.18.{index // 250}.{index % 250 + 1}"


def events(audit_log: RecordingHandler, name: str) -> list[dict[str, Any]]:
    found = [getattr(record, "fields", {}) for record in audit_log.records]
    return [fields for fields in found if fields.get("event") == name]


async def test_rotating_addresses_meet_429_and_the_partner_keeps_its_tokens(
    send: Send, db: Database, clock: FakeClock, audit_log: RecordingHandler
) -> None:
    """The acceptance case, under the shipped defaults (100 per client per window)."""
    partner = await make_caller(db, "distributor")
    usual = "10.1.0.1"
    assert (await token(send, usual, partner.client_id, partner.secret)).status_code == 200

    statuses = []
    for index in range(200):  # 200 wrong secrets, each from a new address
        response = await token(send, rotating(index), partner.client_id, f"guess-{index}")
        statuses.append(response.status_code)
    assert statuses[:100] == [401] * 100
    assert statuses[100:] == [429] * 100
    retry_after = assert_slow_down(
        await token(send, rotating(200), partner.client_id, "one more guess")
    )
    assert retry_after == 60  # the first block: one window

    # The partner, from its usual address, is served throughout the attack.
    for _ in range(3):
        assert (await token(send, usual, partner.client_id, partner.secret)).status_code == 200

    # The right secret from an address the partner never used is refused exactly like a
    # wrong one: the 429 comes before any verification, so it is no oracle.
    right = await token(send, rotating(201), partner.client_id, partner.secret)
    wrong = await token(send, rotating(202), partner.client_id, "another guess")
    assert_slow_down(right)
    assert right.json() == wrong.json()
    assert right.headers["Retry-After"] == wrong.headers["Retry-After"]

    blocked = events(audit_log, "client_authentication_blocked")
    assert [(e["client_id"], e["limit"], e["seconds"]) for e in blocked] == [
        (partner.client_id, "client_failures", 60)
    ]
    # Refused requests are not logged one by one (only the 100 verified failures are).
    assert len(events(audit_log, "client_authentication_failed")) == 100

    clock.now += 60  # the block is over: new addresses are heard again
    assert (await token(send, rotating(203), partner.client_id, "guess")).status_code == 401


async def test_failures_from_one_address_block_only_that_pair(
    send: Send, db: Database, clock: FakeClock
) -> None:
    partner = await make_caller(db, "vendor")
    other = await make_caller(db, "supplier")
    shared, elsewhere = "10.2.0.1", "10.2.0.2"
    for _ in range(10):  # the shipped per-(client, address) budget
        response = await token(send, shared, partner.client_id, "wrong")
        assert response.status_code == 401
    # Even the right secret is refused from there now, before it is checked ...
    assert assert_slow_down(await token(send, shared, partner.client_id, partner.secret)) == 60
    # ... but not the same client elsewhere, nor another client from the same address.
    assert (await token(send, elsewhere, partner.client_id, partner.secret)).status_code == 200
    assert (await token(send, shared, other.client_id, other.secret)).status_code == 200
    clock.now += 60
    assert (await token(send, shared, partner.client_id, partner.secret)).status_code == 200


async def test_unknown_client_ids_are_budgeted_like_known_ones(send: Send) -> None:
    """No enumeration oracle: an id that does not exist meets the same 429."""
    unknown = "hub_" + "0" * 24
    statuses = [(await token(send, rotating(i), unknown, "guess")).status_code for i in range(101)]
    assert statuses == [401] * 100 + [429]


async def test_failures_naming_a_public_client_are_not_budgeted(send: Send, db: Database) -> None:
    """A public client has no credential to guess; blocking it would only lock staff out."""
    console = await make_code_client(db, (await make_staff(db)).org)
    for index in range(120):
        data = {"grant_type": "authorization_code", "client_id": console.client_id}
        data["client_secret"] = f"guess-{index}"  # a public client has none: invalid_client
        response = await send("/oauth/token", rotating(index), data)
        assert response.status_code == 401, response.text
    public = {"grant_type": "authorization_code", "client_id": console.client_id, "code": "x"}
    response = await send("/oauth/token", rotating(500), public)
    # Authenticated (not 401, not 429): only the grant's own parameters are missing.
    assert (response.status_code, response.json()["error"]) == (400, "invalid_request")


async def test_introspection_and_revocation_share_the_budget(send: Send, db: Database) -> None:
    """Guessing at /oauth/introspect or /oauth/revoke counts too, and is answered 429."""
    caller = await make_caller(db, "distributor")
    address = "10.3.0.1"
    for index in range(10):
        path = "/oauth/introspect" if index % 2 else "/oauth/revoke"
        response = await send(path, address, {"token": "x"}, (caller.client_id, "wrong"))
        assert response.status_code == 401
    for path in ("/oauth/introspect", "/oauth/revoke", "/oauth/token"):
        data = {"token": "x", "grant_type": "client_credentials"}
        response = await send(path, address, data, (caller.client_id, caller.secret))
        assert assert_slow_down(response) == 60


# The limiter alone: backoff, its cap, known addresses expiring, and the shared count.

BUDGET = FailureBudget(
    per_client_address=2, per_client=4, window=60, backoff_max=300, known_address_ttl=3600
)


@pytest.fixture
async def counters(prefix: str | None) -> AsyncIterator[Backend]:
    """Makes counter backends: one shared in memory, or Redis clients on one prefix (like
    replicas)."""
    made: list[CounterBackend] = []

    def make() -> CounterBackend:
        backend: CounterBackend
        if prefix is None:
            backend = made[0] if made else MemoryCounters()
        else:
            backend = RedisCounters(Redis.from_url(REDIS_URL), prefix)
        made.append(backend)
        return backend

    yield make
    for backend in made:
        await backend.close()


async def exhaust_client(limiter: FailureLimiter, clock: FakeClock, start: int) -> int:
    """Fail from new addresses until the per-client block starts; return its seconds."""
    for index in range(BUDGET.per_client - 1):
        await limiter.check("c1", rotating(start + index))
        assert await limiter.failed("c1", rotating(start + index)) == []
    [(limit, seconds)] = await limiter.failed("c1", rotating(start + BUDGET.per_client))
    assert limit == "client_failures"
    with pytest.raises(RateLimitedError) as refused:
        await limiter.check("c1", rotating(start + 1000))
    assert refused.value.limit == "client_failures"
    assert refused.value.retry_after == seconds
    return seconds


async def test_blocks_double_up_to_the_cap(counters: Backend, clock: FakeClock) -> None:
    limiter = FailureLimiter(counters(), BUDGET, clock)
    seconds = []
    for round_ in range(5):
        seconds.append(await exhaust_client(limiter, clock, start=round_ * 10))
        clock.now += seconds[-1]
        assert await limiter.check("c1", rotating(999)) is None  # lifted on time
    assert seconds == [60, 120, 240, 300, 300]
    clock.now = (clock.now // 86_400 + 1) * 86_400  # a new day: the doubling starts over
    assert await exhaust_client(limiter, clock, start=100) == 60


async def test_known_address_passes_the_client_block_until_it_expires(
    counters: Backend, clock: FakeClock
) -> None:
    limiter = FailureLimiter(counters(), BUDGET, clock)
    home = "10.4.0.1"
    await limiter.succeeded("c1", home, await limiter.check("c1", home))
    await exhaust_client(limiter, clock, start=0)
    known = await limiter.check("c1", home)
    assert known == WINDOW_START  # passes, and says since when it is known
    await limiter.succeeded("c1", home, known)  # recent: not rewritten
    assert await limiter.check("c1", home) == WINDOW_START
    # Another address of the same client is not known: the mark is per (client, address).
    with pytest.raises(RateLimitedError):
        await limiter.check("c1", "10.4.0.2")
    clock.now += 60  # a new window: exhaust again while still known (the block grows)
    await exhaust_client(limiter, clock, start=20)
    clock.now = WINDOW_START + BUDGET.known_address_ttl
    await exhaust_client(limiter, clock, start=40)
    with pytest.raises(RateLimitedError):
        await limiter.check("c1", home)  # no success for a whole ttl: known no more


async def test_pair_budget_is_shared_through_the_backend(
    counters: Backend, clock: FakeClock
) -> None:
    first, second = (
        FailureLimiter(counters(), BUDGET, clock),
        FailureLimiter(counters(), BUDGET, clock),
    )
    assert await first.failed("c2", "10.5.0.1") == []
    assert await second.failed("c2", "10.5.0.1") == [("client_address_failures", 60)]
    for limiter in (first, second):
        with pytest.raises(RateLimitedError) as refused:
            await limiter.check("c2", "10.5.0.1")
        assert refused.value.limit == "client_address_failures"
    assert await first.check("c2", "10.5.0.2") is None
    # The same characters split differently are another pair.
    assert await first.check("c2@10.5.0", "1") is None


async def test_redis_keys_expire(redis_prefix: str, clock: FakeClock, database_url: str) -> None:
    del database_url
    limiter = FailureLimiter(RedisCounters(Redis.from_url(REDIS_URL), redis_prefix), BUDGET, clock)
    try:
        await limiter.succeeded("c3", "10.6.0.1", None)
        for index in range(BUDGET.per_client):
            await limiter.failed("c3", rotating(index))
        redis = Redis.from_url(REDIS_URL)
        keys = [key async for key in redis.scan_iter(match=f"{redis_prefix}*")]
        ttls = {key.decode().removeprefix(redis_prefix): await redis.ttl(key) for key in keys}
        await redis.aclose()
    finally:
        await limiter.counters.close()
    assert all(ttl > 0 for ttl in ttls.values()), ttls
    assert ttls["authknown:2:c3@10.6.0.1"] <= BUDGET.known_address_ttl
    assert ttls["authblock:c:c3"] <= 60
    windowed = {
        key.rsplit(":", 1)[0]: ttl for key, ttl in ttls.items() if "fail" in key or "strike" in key
    }
    assert windowed["authstrike:c:c3"] <= 86_401
    assert windowed["authfail:c:c3"] <= 61
