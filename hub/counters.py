"""Counter storage for rate limits: fixed-window counters and marks (a number with a
lifetime), in memory per process or in Redis shared by all replicas.

Used by :mod:`hub.oauth.ratelimit`, :mod:`hub.sync.inbound_limits` and
:mod:`hub.cost_budget`; the key names and what they mean live there. One backend, made by
:func:`counter_backend`, serves them all (the runtime's, ``Runtime.rate_limiter.counters``).
A hit adds one by default, or an amount (a GraphQL operation's cost). Imports nothing from
the project but the settings.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Protocol

from redis.asyncio import Redis

from hub.settings import Settings

Clock = Callable[[], float]


def window_end(now: float, window: int) -> float:
    """When the fixed window of ``window`` seconds holding ``now`` ends."""
    return (now // window + 1) * window


def retry_after(now: float, until: float) -> int:
    """Whole seconds from ``now`` until ``until`` (at least 1): a ``Retry-After`` value."""
    return max(1, math.ceil(until - now))


class CounterBackend(Protocol):
    """Counts hits per key in fixed windows, and keeps marks (a number with a lifetime).

    Example::

        class NoLimits:
            async def hit(self, key, window, now, amount=1):
                return amount
            async def read_marks(self, keys, now):
                return [None] * len(keys)
            async def set_mark(self, key, value, ttl, now):
                pass
            async def close(self):
                pass
    """

    async def hit(self, key: str, window: int, now: float, amount: int = 1) -> int:
        """Add ``amount`` hits to ``key`` in the window containing ``now``; return the count."""
        ...

    async def read_marks(self, keys: Sequence[str], now: float) -> list[float | None]:
        """The value of each mark in ``keys``, None where unset or expired."""
        ...

    async def set_mark(self, key: str, value: float, ttl: float, now: float) -> None:
        """Set the mark ``key`` to ``value`` for ``ttl`` seconds from ``now``."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


class MemoryCounters:
    """Per-process counters and marks; old windows and expired marks are dropped when
    the table is full."""

    def __init__(self, max_keys: int = 100_000) -> None:
        self._counts: dict[tuple[str, int], int] = {}
        self._marks: dict[str, tuple[float, float]] = {}  # key -> (value, expires at)
        self._max_keys = max_keys

    async def hit(self, key: str, window: int, now: float, amount: int = 1) -> int:
        slot = (key, int(now // window))
        if slot not in self._counts and len(self._counts) >= self._max_keys:
            current = slot[1]
            self._counts = {k: v for k, v in self._counts.items() if k[1] >= current}
            if len(self._counts) >= self._max_keys:
                self._counts.clear()  # a flood of distinct keys must not grow memory
        count = self._counts.get(slot, 0) + amount
        self._counts[slot] = count
        return count

    async def read_marks(self, keys: Sequence[str], now: float) -> list[float | None]:
        found = [self._marks.get(key) for key in keys]
        return [None if mark is None or mark[1] <= now else mark[0] for mark in found]

    async def set_mark(self, key: str, value: float, ttl: float, now: float) -> None:
        if key not in self._marks and len(self._marks) >= self._max_keys:
            self._marks = {k: v for k, v in self._marks.items() if v[1] > now}
            if len(self._marks) >= self._max_keys:
                self._marks.clear()  # as above: memory stays bounded under a flood
        self._marks[key] = (value, now + ttl)

    async def close(self) -> None:
        self._counts.clear()
        self._marks.clear()


class RedisCounters:
    """Counters shared by all replicas: ``INCR`` of one key per window, expiring with it;
    marks are plain keys with a ``PX`` expiry."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix

    async def hit(self, key: str, window: int, now: float, amount: int = 1) -> int:
        index = int(now // window)
        name = f"{self._prefix}{key}:{index}"
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incrby(name, amount)
            pipe.expire(name, window + 1)
            count, _ = await pipe.execute()
        return int(count)

    async def read_marks(self, keys: Sequence[str], now: float) -> list[float | None]:
        del now  # Redis expires marks on its own clock
        values = await self._redis.mget([f"{self._prefix}{key}" for key in keys])
        return [None if value is None else float(value) for value in values]

    async def set_mark(self, key: str, value: float, ttl: float, now: float) -> None:
        del now
        await self._redis.set(f"{self._prefix}{key}", repr(value), px=max(1, math.ceil(ttl * 1000)))

    async def close(self) -> None:
        await self._redis.aclose()


def counter_backend(settings: Settings) -> CounterBackend:
    """The backend the settings ask for: Redis when ``HUB_REDIS_URL`` is set, else memory."""
    if not settings.redis_url:
        return MemoryCounters()
    # Bounded waits: an unreachable Redis is an outage answered 503 (hub.outage) within
    # seconds, not a request hanging on the operating system's TCP timeout.
    redis = Redis.from_url(
        settings.redis_url, socket_connect_timeout=2, socket_timeout=2, retry_on_timeout=False
    )
    return RedisCounters(redis, settings.rate_limit_prefix)
