"""The connector protocol: a source yields records from a cursor; a sink takes changes.

Connectors never import ``hub`` or ``schema``: they yield plain records and the hub's sync
runtime maps, resolves and stores them (DESIGN §2, §8).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class Record:
    """One record from an external system, with the position to resume after it."""

    source: str
    external_id: str
    data: Mapping[str, Any]
    cursor: str


@dataclass(frozen=True)
class ChangeEvent:
    """A change the hub pushes out, already filtered for the receiving partner."""

    event_id: str
    kind: str
    data: Mapping[str, Any] = field(default_factory=dict)


class Source(Protocol):
    """Reads records after ``cursor`` (``None``: from the beginning), in cursor order.

    Example::

        class ListSource:
            def __init__(self, rows):
                self.rows = rows

            async def read(self, cursor):
                for row in self.rows:
                    if cursor is None or row.cursor > cursor:
                        yield row
    """

    def read(self, cursor: str | None) -> AsyncIterator[Record]: ...


class Sink(Protocol):
    """Accepts one change event; raises to ask the runtime to retry later."""

    async def send(self, event: ChangeEvent) -> None: ...
