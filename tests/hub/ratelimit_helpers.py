"""Helpers for the rate-limit tests: a settable clock, the local Redis, and a recorder of
``hub.audit`` log records (fixtures ``redis_prefix`` and ``audit_log`` in conftest.py)."""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

REDIS_URL = os.environ.get("HUB_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


class FakeClock:
    def __init__(self, now: float = 1_000_040.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class RecordingHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextlib.asynccontextmanager
async def redis_test_prefix() -> AsyncIterator[str]:
    """A unique key prefix on the local Redis, its keys deleted afterwards; skips (fails
    under CI) when Redis is unreachable."""
    redis = Redis.from_url(REDIS_URL)
    try:
        await redis.ping()
    except (RedisConnectionError, OSError) as error:
        await redis.aclose()
        if os.environ.get("CI") == "true":
            pytest.fail(f"Redis at {REDIS_URL} is unreachable under CI: {error}")
        pytest.skip(f"Redis at {REDIS_URL} is unreachable ({error}); set HUB_TEST_REDIS_URL")
    prefix = f"hub-test:{uuid.uuid4().hex}:"
    try:
        yield prefix
    finally:
        keys = [key async for key in redis.scan_iter(match=f"{prefix}*")]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()
