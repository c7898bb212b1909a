"""The disclosure index: which ``read`` events disclosed something of which customers.

The index (:class:`~hub.models.Disclosure`) is derived from the hash-chained ``read``
events, which stay the record of what was read: it lags them by design, reports bring it
up to date first (:func:`index_pending`), and dropping it loses nothing (the next
indexing rebuilds it). This module is the one that knows how it is stored:

- PostgreSQL: one row per event, its customers in a ``uuid[]`` under a GIN index. An
  event's fifty customers are one heap row and fifty entries appended to the index's
  pending list, which PostgreSQL merges into the index tree sorted and in bulk (a
  b-tree row per event and customer, at a random place of a large index, cost the
  database more than the rest of the read audit; docs/audit.md).
- SQLite: one row per event and customer (``customer_ids`` names that one) under a
  b-tree: SQLite cannot index the elements of an array.

:func:`rows_of_event` says what the rows of an event are, :func:`events_naming` finds the
events of customers, :func:`repoint` moves a merged customer's rows to the survivor and
:class:`customer_count` counts the customers of a row.

May import :mod:`hub.disclosures.collect`, :mod:`hub.db` and :mod:`hub.models`.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, Select, bindparam, func, literal, select, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import Uuid
from sqlmodel import col

from hub.db import serialise
from hub.disclosures.collect import READ
from hub.models import AuditEvent, Disclosure

GROUPED = frozenset({"postgresql"})
"""The backends storing one index row per event (all its customers); the others store one
per event and customer."""

DISCLOSURE_COLUMNS = (
    "id",
    "event_seq",
    "at",
    "organization",
    "client",
    "policy_version",
    "customer_ids",
)
"""The columns of a :class:`~hub.models.Disclosure` row as :func:`rows_of_event` gives
them, in order."""

_SHIFT = 24  # bits of a row id below the event's seq: up to 16,777,215 customers an event


def row_id(seq: int, n: int = 0) -> int:
    """The id of an event's index row: the event's ``seq``, then the customer's position
    in the event (from 1) where rows name one customer, 0 where a row names them all.
    Rows are appended in the order of the events: their ids land at the end of the
    primary key's index, ``max(id)`` says how far the index goes, and indexing an event
    again would give the same ids."""
    return (seq << _SHIFT) | n


def rows_of_event(
    seq: int,
    at: datetime,
    organization: str,
    client: str,
    details: Mapping[str, Any],
    *,
    dialect: str,
) -> list[tuple[Any, ...]]:
    """The :class:`~hub.models.Disclosure` rows of one ``read`` event on ``dialect`` (its
    customers are ``details["customers"]``, in order), as values in the order of
    :data:`DISCLOSURE_COLUMNS` (customer ids UUIDs)."""
    version = details.get("policy_version")
    customers = [uuid.UUID(customer) for customer in details.get("customers", ())]
    if dialect in GROUPED:
        return [(row_id(seq), seq, at, organization, client, version, customers)]
    return [
        (row_id(seq, n), seq, at, organization, client, version, [customer])
        for n, customer in enumerate(customers, start=1)
    ]


@dataclass(frozen=True, slots=True)
class ReadEvent:
    """What the index takes from one ``read`` event, as the writer that appended it
    knows it (the values it appended; :func:`index_pending` then need not read the event
    back)."""

    seq: int
    at: datetime
    organization: str
    client: str
    policy_version: int | None
    customers: Sequence[str]
    """Canonical UUID texts, as ``details["customers"]``."""


_INDEX_LOCK = 0x646973636C6F  # "disclo": one indexer at a time per database

# The rows of stored events, made by the database from the events in one statement.
# Constant text; the values are bound: the action, then the events (a range of seqs, or
# a list of them: those the caller does not know).
# Row ids are row_id's (24 is _SHIFT).
_PG_FROM_EVENTS = """
INSERT INTO disclosure (id, event_seq, at, organization, client, policy_version, customer_ids)
SELECT seq << 24, seq, at, coalesce(organization, ''), coalesce(client, ''),
    CAST(details ->> 'policy_version' AS integer),
    CAST(ARRAY(SELECT json_array_elements_text(details -> 'customers')) AS uuid[])
FROM audit_event
WHERE action = $1 AND {events}
"""
_PG_RANGE = "seq > $2 AND seq <= $3"
_PG_LISTED = "seq = ANY($2::bigint[])"
# The rows of events the caller knows: their values bound as arrays (one statement, no
# event read back or parsed), each event's customers a slice of one flat array.
_PG_FROM_VALUES = """
INSERT INTO disclosure (id, event_seq, at, organization, client, policy_version, customer_ids)
SELECT e.seq << 24, e.seq, e.at, e.organization, e.client, e.version,
    ($6::uuid[])[e.low : e.high]
FROM unnest($1::bigint[], $2::timestamptz[], $3::text[], $4::text[], $5::integer[],
    $7::integer[], $8::integer[]) AS e(seq, at, organization, client, version, low, high)
"""
# sqlalchemy.JSON stores text on SQLite; ``at`` is copied as stored. Each event's details
# are read once, not once per customer.
_SQLITE_FROM_EVENTS = """
WITH events AS MATERIALIZED (
    SELECT seq, at, coalesce(organization, '') AS organization,
        coalesce(client, '') AS client,
        json_extract(details, '$.policy_version') AS version,
        json_extract(details, '$.customers') AS customers
    FROM audit_event
    WHERE action = ? AND seq > ? AND seq <= ?
)
INSERT INTO disclosure (id, event_seq, at, organization, client, policy_version, customer_ids)
SELECT (e.seq << 24) | (c.key + 1), e.seq, e.at, e.organization, e.client, e.version,
    json_array(c.value)
FROM events AS e, json_each(e.customers) AS c
"""


async def index_pending(
    session: AsyncSession,
    *,
    limit: int | None = None,
    known: Mapping[int, ReadEvent] | None = None,
) -> int:
    """Add the :class:`~hub.models.Disclosure` rows of every ``read`` event not indexed
    yet (up to ``limit`` events, oldest first), in the session's transaction; returns the
    events indexed. Serialised per database, so two replicas never index one event twice;
    a failed transaction leaves the index as it was, and the next call resumes.

    ``known``: events the caller appended, by seq (the background writer's), taken from
    memory on PostgreSQL; the others are read back from the log. Both give the same rows
    (a test checks)."""
    await serialise(session, _INDEX_LOCK)
    done = await indexed_until(session)
    statement = (
        select(col(AuditEvent.seq))
        .where(col(AuditEvent.action) == READ, col(AuditEvent.seq) > done)
        .order_by(col(AuditEvent.seq))
    )
    if limit is not None:
        statement = statement.limit(limit)
    seqs = (await session.execute(statement)).scalars().all()
    if not seqs:
        return 0
    connection = await session.connection()
    dialect = connection.dialect.name
    if dialect not in GROUPED:
        await connection.exec_driver_sql(_SQLITE_FROM_EVENTS, (READ, done, seqs[-1]))
        return len(seqs)
    # Its planner guesses a hundred rows per JSON or array function and would compile
    # the statements to machine code (JIT) for longer than they run.
    await connection.exec_driver_sql("SET LOCAL jit = off")
    known = known or {}
    given = [known[seq] for seq in seqs if seq in known]
    if given:
        await connection.exec_driver_sql(_PG_FROM_VALUES, _values(given))
    if not given:
        events = _PG_FROM_EVENTS.format(events=_PG_RANGE)
        await connection.exec_driver_sql(events, (READ, done, seqs[-1]))
    elif len(given) < len(seqs):
        unknown = [seq for seq in seqs if seq not in known]
        events = _PG_FROM_EVENTS.format(events=_PG_LISTED)
        await connection.exec_driver_sql(events, (READ, unknown))
    return len(seqs)


async def indexed_until(session: AsyncSession) -> int:
    """The ``seq`` of the newest event indexed (0 for none): every ``read`` event up to
    it is indexed (:func:`index_pending` indexes them in order)."""
    newest = (await session.execute(select(func.max(col(Disclosure.id))))).scalar()
    return int(newest or 0) >> _SHIFT


def _values(events: Sequence[ReadEvent]) -> tuple[list[Any], ...]:
    """The parameters of :data:`_PG_FROM_VALUES` for ``events``."""
    customers: list[str] = []
    low: list[int] = []
    high: list[int] = []
    for event in events:
        low.append(len(customers) + 1)  # arrays count from 1, slices include both ends
        customers.extend(event.customers)
        high.append(len(customers))
    return (
        [e.seq for e in events],
        [e.at for e in events],
        [e.organization for e in events],
        [e.client for e in events],
        [e.policy_version for e in events],
        customers,
        low,
        high,
    )


def events_naming(dialect: str, customers: Collection[uuid.UUID]) -> Select[Any]:
    """The ``seq`` of every indexed event naming any of ``customers``, found through the
    index (GIN on PostgreSQL, the b-tree on SQLite), each once at least."""
    event_seq = col(Disclosure.event_seq)
    if dialect in GROUPED:
        wanted = literal(list(customers), type_=postgresql.ARRAY(Uuid()))
        return select(event_seq).where(col(Disclosure.customer_ids).op("&&")(wanted))
    # The rows' values as SQLite wrote them (json_array of the canonical text).
    named = func.json_each(_json_texts(customers)).table_valued("value")
    return select(event_seq).where(
        col(Disclosure.customer_ids).in_(select(func.json_array(named.c.value)))
    )


def _json_texts(customers: Collection[uuid.UUID]) -> str:
    return "[" + ",".join(f'"{customer}"' for customer in customers) + "]"


async def repoint(session: AsyncSession, duplicate: uuid.UUID, survivor: uuid.UUID) -> int:
    """Make the index rows naming ``duplicate`` name ``survivor`` instead (a merge);
    returns how many events named it. An event that named both names the survivor
    twice, as it counted two customers: counts do not change with merges."""
    connection = await session.connection()
    if connection.dialect.name in GROUPED:
        statement = text(
            "UPDATE disclosure SET customer_ids = array_replace("
            "customer_ids, CAST(:duplicate AS uuid), CAST(:survivor AS uuid))"
            " WHERE customer_ids && ARRAY[CAST(:duplicate AS uuid)]"
        ).bindparams(
            bindparam("duplicate", duplicate, type_=Uuid()),
            bindparam("survivor", survivor, type_=Uuid()),
        )
    else:
        statement = text(
            "UPDATE disclosure SET customer_ids = json_array(:survivor)"
            " WHERE customer_ids = json_array(:duplicate)"
        ).bindparams(duplicate=str(duplicate), survivor=str(survivor))
    result = await session.execute(statement)
    return int(result.rowcount)  # type: ignore[attr-defined]


class customer_count(FunctionElement[int]):
    """How many customers an index row names (``customer_count(Disclosure.customer_ids)``):
    ``cardinality`` of the array on PostgreSQL, ``json_array_length`` on SQLite."""

    type = Integer()
    name = "customer_count"
    inherit_cache = True


@compiles(customer_count, "postgresql")
def _cardinality(element: customer_count, compiler: SQLCompiler, **kw: Any) -> str:
    return f"cardinality({compiler.process(element.clauses, **kw)})"


@compiles(customer_count)
def _json_array_length(element: customer_count, compiler: SQLCompiler, **kw: Any) -> str:
    return f"json_array_length({compiler.process(element.clauses, **kw)})"
