"""The rate-limit counters, now :mod:`hub.counters` (shared with the GraphQL cost budgets);
re-exported here for the modules and tests that import them from the OAuth package."""

from hub.counters import (
    Clock,
    CounterBackend,
    MemoryCounters,
    RedisCounters,
    counter_backend,
    retry_after,
    window_end,
)

__all__ = [
    "Clock",
    "CounterBackend",
    "MemoryCounters",
    "RedisCounters",
    "counter_backend",
    "retry_after",
    "window_end",
]
