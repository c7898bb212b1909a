"""The server's garbage-collector settings (hub.heap)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import httpx
import pytest

from app import create_app
from hub import heap
from hub.db import Database
from tests.conftest import make_settings


@pytest.fixture
def collector_restored() -> Iterator[None]:
    thresholds = gc.get_threshold()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)


def test_settle_freezes_the_heap_and_collects_young_objects_less_often(
    collector_restored: None,
) -> None:
    gc.unfreeze()
    held = [object() for _ in range(10)], {"a": [1]}
    heap.settle()
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == (heap.YOUNG_THRESHOLD, *heap.OLDER_THRESHOLDS)
    assert gc.isenabled()
    # A cycle made afterwards is still collected.
    cycle: list[object] = []
    cycle.append(cycle)
    del cycle
    assert gc.collect() >= 1
    del held


async def test_the_server_settles_the_heap_after_start_up_when_tuning_is_on(
    db: Database, database_url: str, collector_restored: None
) -> None:
    for tuning in (False, True):
        gc.unfreeze()
        gc.set_threshold(700, 10, 10)
        application = create_app(make_settings(database_url, gc_tuning=tuning))
        async with application.router.lifespan_context(application):
            transport = httpx.ASGITransport(app=application)
            async with httpx.AsyncClient(transport=transport, base_url="http://hub.test") as http:
                assert (await http.get("/healthz")).status_code == 200
            frozen = gc.get_freeze_count()
            threshold = gc.get_threshold()[0]
        assert (frozen > 0, threshold) == (
            (True, heap.YOUNG_THRESHOLD) if tuning else (False, 700)
        ), tuning


def test_batch_work_defers_young_collections_and_restores_them_after_the_last_block(
    collector_restored: None,
) -> None:
    gc.set_threshold(700, 10, 10)
    with heap.young_collections_deferred():
        assert gc.get_threshold() == (heap.YOUNG_THRESHOLD, 10, 10)
        with heap.young_collections_deferred():  # a second run in the same process
            assert gc.get_threshold()[0] == heap.YOUNG_THRESHOLD
        assert gc.get_threshold()[0] == heap.YOUNG_THRESHOLD  # the first still runs
    assert gc.get_threshold() == (700, 10, 10)
    # A settled server's higher setting is kept, and left as it was.
    gc.set_threshold(90_000, 20, 20)
    with heap.young_collections_deferred():
        assert gc.get_threshold()[0] == 90_000
    assert gc.get_threshold() == (90_000, 20, 20)
