"""Fixtures shared by the tests of ``hub``: a Redis key prefix of one's own and a recorder
of ``hub.audit`` events."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator

import pytest

from tests.hub.ratelimit_helpers import RecordingHandler, redis_test_prefix


@pytest.fixture
async def redis_prefix(database_url: str) -> AsyncIterator[str]:
    """A unique key prefix on the local Redis, deleted afterwards."""
    del database_url  # only to share the db marker's parametrisation
    async with redis_test_prefix() as prefix:
        yield prefix


@pytest.fixture
def audit_log() -> Iterator[RecordingHandler]:
    # The "hub" logger does not propagate to the root (hub.logs): listen on hub.audit itself.
    handler = RecordingHandler()
    logger = logging.getLogger("hub.audit")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
