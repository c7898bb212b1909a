"""A small time-bounded cache for values loaded from the database on a miss."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class TTLCache(Generic[K, V]):
    """Keeps each loaded value ``ttl`` seconds, so a change in the database (a disabled
    client or user) is seen within that time without a read per request. Bounded: past
    ``max_entries`` it starts afresh rather than growing without limit."""

    def __init__(self, max_entries: int = 10_000) -> None:
        self._max_entries = max_entries
        self._entries: dict[K, tuple[float, V]] = {}

    async def get(self, key: K, ttl: float, load: Callable[[], Awaitable[V]]) -> V:
        now = time.monotonic()
        cached = self._entries.get(key)
        if cached is not None and now - cached[0] < ttl:
            return cached[1]
        value = await load()
        if len(self._entries) >= self._max_entries:
            self._entries.clear()
        self._entries[key] = (now, value)
        return value
