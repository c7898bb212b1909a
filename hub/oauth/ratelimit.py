"""Rate limits on the token endpoint, per client and per source address (issue 3 §7).

Fixed windows: a counter per key and window, reset when the window ends. In memory by
default (each replica counts alone); in Redis when ``HUB_REDIS_URL`` is set, so all
replicas share one count. The source address is counted *before* client authentication,
so guessing secrets is throttled per address; the client is counted once authenticated,
so nobody can lock a partner out by sending requests in its name.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from redis.asyncio import Redis

from hub.oauth._http import NO_STORE
from hub.settings import Settings

Clock = Callable[[], float]


class RateLimitedError(Exception):
    """Over a limit; ``retry_after`` is whole seconds until the window resets."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many token requests; retry after {retry_after} s")
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {**NO_STORE, "Retry-After": str(self.retry_after)}


class CounterBackend(Protocol):
    """Counts hits per key in fixed windows.

    Example::

        class NoLimits:
            async def hit(self, key, window, now):
                return 1
            async def close(self):
                pass
    """

    async def hit(self, key: str, window: int, now: float) -> int:
        """Add one hit to ``key`` in the window containing ``now``; return the count."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


class MemoryCounters:
    """Per-process counters; old windows are dropped as new ones start."""

    def __init__(self, max_keys: int = 100_000) -> None:
        self._counts: dict[tuple[str, int], int] = {}
        self._max_keys = max_keys

    async def hit(self, key: str, window: int, now: float) -> int:
        slot = (key, int(now // window))
        if slot not in self._counts and len(self._counts) >= self._max_keys:
            current = slot[1]
            self._counts = {k: v for k, v in self._counts.items() if k[1] >= current}
            if len(self._counts) >= self._max_keys:
                self._counts.clear()  # a flood of distinct keys must not grow memory
        count = self._counts.get(slot, 0) + 1
        self._counts[slot] = count
        return count

    async def close(self) -> None:
        self._counts.clear()


class RedisCounters:
    """Counters shared by all replicas: ``INCR`` of one key per window, expiring with it."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix

    async def hit(self, key: str, window: int, now: float) -> int:
        index = int(now // window)
        name = f"{self._prefix}{key}:{index}"
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incr(name)
            pipe.expire(name, window + 1)
            count, _ = await pipe.execute()
        return int(count)

    async def close(self) -> None:
        await self._redis.aclose()


@dataclass(frozen=True)
class Limit:
    """At most ``count`` requests per ``window`` seconds."""

    count: int
    window: int


class TokenRateLimiter:
    """The token endpoint's two limits over one counter backend."""

    def __init__(
        self,
        counters: CounterBackend,
        *,
        per_client: Limit,
        per_address: Limit,
        clock: Clock = time.time,
    ) -> None:
        self.counters = counters
        self.per_client = per_client
        self.per_address = per_address
        self._clock = clock

    async def _check(self, key: str, limit: Limit) -> None:
        now = self._clock()
        if await self.counters.hit(key, limit.window, now) > limit.count:
            window_end = (now // limit.window + 1) * limit.window
            raise RateLimitedError(max(1, math.ceil(window_end - now)))

    async def check_address(self, address: str) -> None:
        """Count a token request from ``address``; raise :class:`RateLimitedError` if over."""
        await self._check(f"addr:{address}", self.per_address)

    async def check_client(self, client_id: str) -> None:
        """Count a token request by an authenticated client; raise if over its limit."""
        await self._check(f"client:{client_id}", self.per_client)

    async def close(self) -> None:
        await self.counters.close()


def token_rate_limiter(settings: Settings, clock: Clock = time.time) -> TokenRateLimiter:
    """The limiter the settings ask for: Redis when ``HUB_REDIS_URL`` is set."""
    counters: CounterBackend
    if settings.redis_url:
        counters = RedisCounters(Redis.from_url(settings.redis_url), settings.rate_limit_prefix)
    else:
        counters = MemoryCounters()
    window = settings.token_rate_window
    return TokenRateLimiter(
        counters,
        per_client=Limit(settings.token_rate_per_client, window),
        per_address=Limit(settings.token_rate_per_address, window),
        clock=clock,
    )
