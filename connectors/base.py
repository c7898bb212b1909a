"""The connector protocol: a source yields records from a cursor; a sink takes changes.

Connectors never import ``hub`` or ``schema``: they yield plain records and the hub's sync
runtime maps, resolves and stores them (DESIGN §2, §8).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    import httpx


@dataclass(frozen=True)
class Record:
    """One record read from an external system.

    ``data`` holds its fields as the source gives them (text from a CSV file, JSON values
    from a JSONL line, column values from a database row). ``position`` says where it is
    for a person reading a dead letter (``line 12``, ``orders.csv line 12``, ``id=42``,
    ``page 3``); ``cursor`` is the source's own text for "resume after this record",
    which the runtime stores as the checkpoint and hands back to :meth:`Source.read`.
    ``problem`` is set when the source could not make a record of what it read (a line
    that is not JSON, a CSV row with too many values): ``data`` then holds the raw text
    under ``"raw"`` and the runtime dead-letters it without mapping it.
    """

    data: Mapping[str, Any]
    position: str
    cursor: str
    problem: str | None = None


MAX_DEPTH = 32
"""Nesting of JSON arrays and objects a record may have (a webhook's body, an API's
item, a JSONL line): deeper ones are refused, as the record's dead letter is JSON made
by orjson, which writes at most 254 levels (it reads up to 1,024)."""


def unstorable(value: Any, depth: int = 0) -> str | None:
    """Why parsed JSON ``value`` cannot be stored as it is (``None``: it can): nested
    deeper than :data:`MAX_DEPTH`, a NUL character (PostgreSQL text cannot hold one) or
    a lone surrogate (not encodable as UTF-8: the stdlib's JSON parser lets ``\\ud800``
    through), in a key or a value. ``depth`` is how deep ``value`` itself sits."""
    if depth > MAX_DEPTH:
        return f"nests arrays and objects deeper than {MAX_DEPTH} levels"
    if isinstance(value, str):
        if "\x00" in value:
            return "holds a NUL character"
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "holds a lone surrogate (\\ud800-\\udfff)"
        return None
    if isinstance(value, Mapping):
        items: list[Any] = [*value.keys(), *value.values()]
    elif isinstance(value, list):
        items = value
    else:
        return None
    for item in items:
        problem = unstorable(item, depth + 1)
        if problem is not None:
            return problem
    return None


class SourceError(Exception):
    """The source as a whole cannot be read (a missing or unreadable file, a database
    that refuses the query): the run ends with this message. A bad *record* is not a
    source error: it is yielded with :attr:`Record.problem` set."""


class TransientSourceError(SourceError):
    """The source failed in a way worth retrying later (a dropped connection, a 503);
    the runtime retries the read with backoff before giving up."""


@dataclass(frozen=True)
class ChangeEvent:
    """A change the hub pushes out, already filtered for the receiving partner."""

    event_id: str
    kind: str
    data: Mapping[str, Any] = field(default_factory=dict)


class Source(Protocol):
    """Reads records after ``cursor`` (``None``: from the beginning), in cursor order.

    Every record read after a cursor must come after it, and re-reading from a cursor
    must give the same records again (the runtime commits a checkpoint with each batch
    it stores, so a run killed between batches resumes exactly after the last one).

    Example::

        class ListSource:
            def __init__(self, rows):
                self.rows = rows

            async def read(self, cursor):
                start = 0 if cursor is None else int(cursor)
                for n, row in enumerate(self.rows[start:], start + 1):
                    yield Record(row, position=f"row {n}", cursor=str(n))
    """

    def read(self, cursor: str | None) -> AsyncIterator[Record]: ...


@runtime_checkable
class OutboundSource(Protocol):
    """A source that calls another system over HTTP (``connectors.http``). Its runtime
    hands it the ``httpx`` transport to connect through, which decides which addresses
    may be reached (the hub's checks each one: no calls into private networks)."""

    def with_transport(self, transport: httpx.AsyncBaseTransport) -> Source: ...


class Sink(Protocol):
    """Accepts one change event; raises to ask the runtime to retry later."""

    async def send(self, event: ChangeEvent) -> None: ...
