"""The server process's garbage collector, set for a request loop.

CPython's cyclic collector runs by allocation counts: a young collection every 700 net
allocations of container objects, and now and then a full one that walks every object
the process holds. A hub worker holds a large heap from start-up (the schemas, the
SQLAlchemy mappers, the policy plans), and a request allocates thousands of short-lived
containers (a compiled page's JSON alone is ~1,500 dicts and lists), so at the defaults a
full collection ran every hundred-odd requests and walked that whole heap: measured on
the partner page (bench/README.md), about a fifth of the worker's CPU was the collector.
The hub's request objects are freed by reference counting, not by the collector (a
request leaves about 20 objects in cycles, measured in-process, most of them the test
client's), so:

- what start-up built is moved out of the collector's sight (``gc.freeze``): it lives as
  long as the process, and walking it finds nothing to free;
- young collections run every :data:`YOUNG_THRESHOLD` allocations instead of 700, so a
  request's objects are mostly gone before one runs and are not promoted to the older
  generations, which then fill, and are walked, far less often.

The collector stays on: what does end in a cycle is still collected.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

YOUNG_THRESHOLD = 50_000
"""Net allocations of container objects between young collections (CPython: 700)."""
OLDER_THRESHOLDS = (20, 20)
"""Young collections per middle one, middle ones per full one (CPython: 10, 10)."""


def settle() -> None:
    """After start-up, before serving: collect once, freeze what survived, and set the
    thresholds. For a server process only: frozen objects are never collected, so a
    process that starts and drops many apps (a test suite) must not call it."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, *OLDER_THRESHOLDS)


_deferring = 0  # blocks of young_collections_deferred() under way in this process
_saved: tuple[int, ...] = ()


@contextlib.contextmanager
def young_collections_deferred() -> Iterator[None]:
    """While the block runs, young collections wait for :data:`YOUNG_THRESHOLD`
    allocations (unless already set so, as by :func:`settle`); the thresholds in force
    before the first of nested or concurrent blocks are restored when the last ends.

    For batch work in a process that is not a settled server (``hub import``, ``hub sync
    run``): a batch allocates hundreds of thousands of containers, freed by reference
    counting; at CPython's 700, young collections ran every few records, promoting the
    batch's objects into the older generations, whose collections then walked them and
    the process's start-up heap (a fifth of the CPU of an import of unchanged records)."""
    global _deferring, _saved
    if _deferring == 0:
        _saved = gc.get_threshold()
        young, *older = _saved
        gc.set_threshold(max(young, YOUNG_THRESHOLD), *older)
    _deferring += 1
    try:
        yield
    finally:
        _deferring -= 1
        if _deferring == 0:
            gc.set_threshold(*_saved)
