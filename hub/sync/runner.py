"""One run of a connector: read after the checkpoint, map, validate, resolve, upsert, and
commit each batch with its checkpoint (DESIGN §8).

Per batch, in one transaction: the lease is renewed (the fence), each record mapped
(:mod:`connectors.mapping`) and prepared by the resource's target; the external ids
already stored are looked up in one query, and a record whose values did not change
(same digest) is counted ``unchanged`` without a write; the rest is stored by the target
through the write pipeline as the connector's organization (each in a savepoint, so one
refused record is dead-lettered alone); then the records' links (``sync_record``), the
dead letters, the checkpoint (the last record's cursor) and the run's counts. A run
killed anywhere therefore resumes after the last committed batch with nothing lost and
nothing twice: the batch in flight rolled back whole, and re-storing it finds its
records unchanged at worst.

While batches are stored, the next one is read and prepared (no database work): in a
child process for a local source (files; :mod:`hub.sync.apart`), else in this one. On
PostgreSQL two batches are stored at once (:attr:`Runner.in_flight`), each in its own
transaction: a batch's lookups, rows, ``COPY``, links and dead letters overlap the
commit of the batch before it; it takes the audit chain's lock (its audit and outbox
events) only once that batch has committed (:class:`_Turn`). Batches commit one after
the other, in order, as before.

A failure of the database that is worth retrying (unreachable, a dropped connection, a
locked SQLite file, a serialisation failure) retries the batch with exponential backoff;
anything else ends the run ``failed`` with its message, the checkpoint at the last
committed batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import threading
import time
import uuid
from collections import deque
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

import connectors
from connectors import Record, SourceError, TransientSourceError
from connectors.mapping import FieldMapping
from hub import heap, sharing
from hub.access import PolicyRules, access, pipeline
from hub.bulk import Prebuilt, insert_records
from hub.db import Database
from hub.models._types import utcnow
from hub.models.sync import SyncRecord
from hub.netguard import NetPolicy
from hub.outage import describe
from hub.principal import Principal
from hub.sync.apart import LocalSource, batches_apart
from hub.sync.config import TARGETS, Loaded, load_connector, mapping_of
from hub.sync.errors import (
    ConnectorConfigError,
    ConnectorDisabledError,
    LeaseLostError,
    SyncError,
    transient,
)
from hub.sync.lease import DEFAULT_SECONDS as LEASE_SECONDS
from hub.sync.lease import new_holder, release, renew, take
from hub.sync.letters import raw_record, write_letters
from hub.sync.net import connected, sync_net_policy
from hub.sync.runs import (
    Counts,
    advance,
    finish,
    last_run,
    renew_and_advance,
    reset_checkpoint,
    start,
)
from hub.sync.target import EXTERNAL_ID, MAX_EXTERNAL_ID, Item, Outcome, Stored, Target, digest
from hub.vault import load_data_keys

logger = logging.getLogger(__name__)

DEFAULT_BATCH = 500
"""Records per batch (one transaction). Larger batches spread a batch's fixed cost (some
16 statements, about 5 ms of the hub's CPU on PostgreSQL; docs/sync.md, "Fifth round")
over more records, and hold the audit chain's lock (every writer of the hub waits for
it) longer: a median of 23 ms at 500, 45 at 1,000, about 110 at 2,000 ("Fourth round");
``--batch-size`` chooses."""
_YIELD_EVERY = 25
"""Records prepared between two turns of the event loop while a batch is in flight."""


@dataclass(frozen=True)
class RunProgress:
    """Shown while a run goes: its counts so far, batches committed, the last position."""

    connector: str
    counts: Counts
    batches: int
    position: str | None
    elapsed: float


@dataclass(frozen=True)
class RunReport:
    run_id: uuid.UUID
    connector: str
    status: str  # succeeded or failed
    counts: Counts
    duration: float
    error: str | None = None

    @property
    def rate(self) -> float:
        return self.counts.read / self.duration if self.duration > 0 else 0.0


async def refresh_process(database: Database, master_key: bytes) -> None:
    """Load the database's data keys and put its newest policy in force in this process
    (a run writes as an organization under the policy of the moment)."""
    async with database.session() as session:
        await load_data_keys(session, master_key)
        identity = await sharing.current_identity(session)
        if identity == (access.rules.version, access.rules.fingerprint):
            return
        version = await sharing.current_version(session)
    access.rules = (
        sharing.rules_for(version, master_key) if version is not None else PolicyRules.deny_all()
    )


@dataclass
class _Run:
    """The state of the run in progress (the target's :class:`~hub.sync.target.Context`)."""

    loaded: Loaded
    run_id: uuid.UUID
    holder: str
    target: Target
    mapping: FieldMapping
    bulk: bool = True
    principal: Principal = field(init=False)
    counts: Counts = field(default_factory=Counts)
    batches: int = 0
    position: str | None = None

    def __post_init__(self) -> None:
        self.principal = self.loaded.principal()

    @property
    def source(self) -> str:
        return f"connector:{self.loaded.row.name}"

    @property
    def connector_id(self) -> uuid.UUID:
        return self.loaded.row.id


@dataclass
class Runner:
    """Runs connectors from this process. ``progress`` is called after each batch;
    ``bulk`` off stores every record through the single-record pipeline (the reference
    the bulk path is tested against)."""

    database: Database
    master_key: bytes
    batch_size: int = DEFAULT_BATCH
    lease_seconds: float = LEASE_SECONDS
    retries: int = 5
    backoff: float = 0.5
    holder: str = field(default_factory=new_holder)
    progress: Callable[[RunProgress], None] | None = None
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    net_policy: NetPolicy = field(default_factory=sync_net_policy)
    """Where sources calling out over HTTP may connect (``HUB_SYNC_*``, hub.sync.net)."""
    bulk: bool = True
    in_flight: int = 2
    """Batches stored at once on PostgreSQL, each in its own transaction, committed in
    order (:class:`_Turn`), for targets whose batches may overlap; 1: one at a time."""
    apart: bool = True
    """Read and prepare the records of a local source (files) in a child process while
    this one stores the batches (:mod:`hub.sync.apart`), when this process runs no other
    thread (:func:`_may_fork`)."""

    async def run(self, name: str, *, rewind_if_done: bool = False) -> RunReport:
        """Run the connector ``name`` to the end of its source. ``rewind_if_done``: when
        its last run succeeded, start from the beginning again (a repeated ``hub
        import`` of one file); otherwise resume from the checkpoint.

        Raises :class:`SyncError` when the run cannot start (unknown, disabled or
        misconfigured connector; lease held elsewhere); a failure during the run is
        recorded and reported as a ``failed`` :class:`RunReport`."""
        await refresh_process(self.database, self.master_key)
        async with self.database.session() as session:
            loaded = await load_connector(session, name)
        if not loaded.row.enabled:
            raise ConnectorDisabledError(f"the connector {name!r} is disabled")
        target = TARGETS[loaded.resource]
        mapping = mapping_of(loaded.resource, loaded.row.mapping)
        try:
            source = connectors.REGISTRY[loaded.row.kind](loaded.row.config, loaded.credentials)
        except connectors.ConfigError as error:
            raise ConnectorConfigError(f"connector {name!r}: {error}") from None
        except KeyError:
            raise ConnectorConfigError(
                f"connector {name!r}: this hub has no {loaded.row.kind!r} connectors"
            ) from None
        source = connected(source, self.net_policy)
        async with self.database.transaction() as session:
            await take(session, loaded.row.id, self.holder, self.lease_seconds)
            if rewind_if_done:
                last = await last_run(session, loaded.row.id)
                if last is not None and last.status == "succeeded":
                    await reset_checkpoint(session, loaded.row.id)
            run_row, cursor = await start(session, loaded.row.id, self.holder)
        state = _Run(loaded, run_row.id, self.holder, target, mapping, self.bulk)
        started = time.monotonic()
        status, problem = "succeeded", None
        try:
            with heap.young_collections_deferred():
                await self._read_all(state, source, cursor, started)
        except (SyncError, SourceError) as failure:
            status, problem = "failed", str(failure)
        except Exception as failure:  # the run is recorded as failed, never left running
            logger.exception("sync run of %s failed", name)
            status, problem = "failed", _unexpected(failure)
        duration = time.monotonic() - started
        await self._finish(state, status, problem)
        return RunReport(run_row.id, name, status, state.counts, duration, problem)

    async def _read_all(
        self, state: _Run, source: connectors.Source, cursor: str | None, started: float
    ) -> None:
        """Read and store every record after ``cursor``. Batches are stored while the next
        is read and prepared (mapped, validated: no database work), so the process
        prepares while the database writes; on PostgreSQL up to :attr:`Runner.in_flight`
        batches are stored at once, each in its own transaction (:class:`_Turn`). Batches
        commit one after the other, in order, each after the one before."""
        attempt = 0
        flights: deque[_Flight] = deque()
        depth = self._depth(state)

        async def land_one() -> None:
            """Wait for the oldest batch in flight; its cursor is the checkpoint now."""
            nonlocal cursor
            cursor = await flights.popleft().task

        async def landed() -> None:
            while flights:
                await land_one()

        async def send(batch: list[Record], prepared: list[Item | str]) -> None:
            ids = frozenset(item.external_id for item in prepared if isinstance(item, Item))
            positions = frozenset(record.position for record in batch)
            # A batch naming an external id (or a position: its dead letter) a batch in
            # flight names waits for that batch: it must see its link (an update, not a
            # second create), and the two must never wait for each other's rows.
            while flights and (
                len(flights) >= depth
                or any(
                    not ids.isdisjoint(f.ids) or not positions.isdisjoint(f.positions)
                    for f in flights
                )
            ):
                await land_one()
            turn = _Turn(flights[-1].task if flights else None)
            task = asyncio.create_task(self._commit(state, batch, prepared, started, turn))
            flights.append(_Flight(task, ids, positions))

        try:
            while True:
                try:
                    reading = self._batches(state, source, cursor)
                    # Closed on the way out, whatever happens: a child reading ends then.
                    async with contextlib.aclosing(reading) as batches:
                        async for batch, prepared in batches:
                            await send(batch, prepared)
                            if len(batch) >= self.batch_size:
                                attempt = 0
                except TransientSourceError as failure:
                    await landed()
                    attempt += 1
                    if attempt > self.retries:
                        raise SourceError(f"the source kept failing: {failure}") from None
                    await self.sleep(self._delay(attempt))
                    continue
                except SourceError:
                    await landed()
                    raise
                await landed()
                return
        finally:
            # Failing elsewhere: the batches in flight end first (committed, or rolled
            # back whole), so the run's record and the lease are written after them.
            while flights:
                with contextlib.suppress(Exception):
                    await flights.popleft().task

    def _batches(
        self, state: _Run, source: connectors.Source, cursor: str | None
    ) -> AsyncGenerator[tuple[list[Record], list[Item | str]], None]:
        """The batches after ``cursor``, each with its records prepared; what was read
        before a failure of the source comes first, then the failure. Read and prepared
        by a child process (:mod:`hub.sync.apart`) for a local source when
        :attr:`apart` and this process may fork (:func:`_may_fork`), here otherwise."""
        if self.apart and isinstance(source, LocalSource) and _may_fork():
            return batches_apart(
                source, cursor, self.batch_size, functools.partial(self._prepare, state)
            )
        return self._batches_here(state, source, cursor)

    async def _batches_here(
        self, state: _Run, source: connectors.Source, cursor: str | None
    ) -> AsyncGenerator[tuple[list[Record], list[Item | str]], None]:
        batch: list[Record] = []
        try:
            async for record in source.read(cursor):
                batch.append(record)
                if len(batch) >= self.batch_size:
                    yield batch, await self._prepare_all(state, batch)
                    batch = []
        except SourceError:
            if batch:  # what was read before the failure is stored
                yield batch, await self._prepare_all(state, batch)
            raise
        if batch:
            yield batch, await self._prepare_all(state, batch)

    @property
    def _postgresql(self) -> bool:
        return self.database.engine.dialect.name == "postgresql"

    def _depth(self, state: _Run) -> int:
        """How many batches may be stored at once: one on SQLite (one writer at a time)
        and for a target that does not say its batches may overlap."""
        if self.in_flight <= 1 or not state.target.overlaps:
            return 1
        if not self._postgresql:
            return 1
        return self.in_flight

    async def _prepare_all(self, state: _Run, batch: list[Record]) -> list[Item | str]:
        prepared: list[Item | str] = []
        for n, record in enumerate(batch, start=1):
            prepared.append(self._prepare(state, record))
            if n % _YIELD_EVERY == 0:
                await asyncio.sleep(0)  # the batch in flight sends its next statement
        return prepared

    def _delay(self, attempt: int) -> float:
        return float(min(self.backoff * 2 ** (attempt - 1), 30.0))

    async def _commit(
        self,
        state: _Run,
        batch: list[Record],
        prepared: list[Item | str],
        started: float,
        turn: _Turn,
    ) -> str:
        """Store one prepared batch with its checkpoint, retrying transient failures. The
        work up to the first write that takes the audit chain's lock (the lookups, the
        rows and their ``COPY``, the links, the dead letters) overlaps the batch before;
        from there on (the audit and outbox events, the lease's renewal and the
        checkpoint) it waits for that batch to have committed (``turn``)."""
        for attempt in range(self.retries + 1):
            try:
                async with self.database.transaction() as session:
                    # On SQLite the lease is renewed first: a write, which makes its
                    # driver open the transaction, so the savepoints below nest. On
                    # PostgreSQL it is renewed at the end, with the checkpoint, in one
                    # statement; a batch overlapping another renews once its turn has come
                    # either way (the lease's row stays locked by the batch before until
                    # it commits).
                    renewed = turn.previous is None and not self._postgresql
                    if renewed:
                        await renew(session, state.connector_id, state.holder, self.lease_seconds)
                    if turn.previous is not None:
                        pipeline.wait_turn_before_record(session, turn.wait)
                    done = await self._store(session, state, batch, prepared, turn)
                    await turn.wait()
                    cursor = batch[-1].cursor
                    if renewed:
                        await advance(session, state.run_id, state.connector_id, cursor, done)
                    else:
                        await renew_and_advance(
                            session,
                            state.run_id,
                            state.connector_id,
                            cursor,
                            done,
                            holder=state.holder,
                            seconds=self.lease_seconds,
                        )
                break
            except (LeaseLostError, _PreviousFailedError):
                raise
            except Exception as failure:
                if not transient(failure) or attempt == self.retries:
                    if transient(failure):
                        raise SyncError(
                            f"the database kept failing ({describe(failure)}); "
                            f"{self.retries} retries"
                        ) from None
                    raise
                delay = self._delay(attempt + 1)
                logger.warning(
                    "sync batch failed (%s); retrying in %.1fs", describe(failure), delay
                )
                await self.sleep(delay)
        state.counts.add(done)
        state.batches += 1
        state.position = batch[-1].position
        if self.progress is not None:
            elapsed = time.monotonic() - started
            self.progress(
                RunProgress(
                    state.loaded.row.name, state.counts, state.batches, state.position, elapsed
                )
            )
        return batch[-1].cursor

    def _prepare(self, state: _Run, record: Record) -> Item | str:
        """The record as an item to store, or why it cannot be."""
        if record.problem is not None:
            return record.problem
        mapped = state.mapping.apply(record.data)
        if mapped.problems:
            return "; ".join(str(p) for p in mapped.problems)
        external = mapped.values.get(EXTERNAL_ID)
        external_id = "" if external is None else str(external).strip()
        if not external_id or len(external_id) > MAX_EXTERNAL_ID:
            return f"{EXTERNAL_ID}: must be 1 to {MAX_EXTERNAL_ID} characters"
        if "\x00" in external_id:  # PostgreSQL text cannot hold it: the batch failed
            return f"{EXTERNAL_ID}: must not contain NUL characters"
        values, problems = state.target.prepare(mapped.values)
        if problems:
            return "; ".join(problems)
        return Item(external_id, values, digest(values))

    async def _store(
        self,
        session: AsyncSession,
        state: _Run,
        batch: Sequence[Record],
        prepared: Sequence[Item | str],
        turn: _Turn | None = None,
    ) -> Counts:
        turn = turn or _FIRST
        # The batch's audit and outbox events go last (pipeline.records_deferred): the
        # links and dead letters are written before the audit chain's lock, which is
        # held to commit and makes the batches after this one (and every other writer
        # of the hub) wait.
        async with pipeline.records_deferred(session):
            done = Counts(read=len(prepared))
            outcomes: list[Stored | None] = [None] * len(prepared)
            for part in _without_repeats(prepared):
                items = [item for i in part if isinstance(item := prepared[i], Item)]
                known = await _known(session, state.connector_id, items)
                todo: list[tuple[int, Item]] = []
                for i, item in zip(part, items, strict=True):
                    seen = known.get(item.external_id)
                    if seen is not None and seen.digest == item.digest:
                        outcomes[i] = Stored(Outcome.UNCHANGED, seen.record_id)
                    elif seen is not None:
                        todo.append((i, replace(item, record_id=seen.record_id, known=seen.digest)))
                    else:
                        todo.append((i, item))
                if todo:
                    stored = await state.target.store(session, state, [item for _, item in todo])
                    links: list[tuple[Item, uuid.UUID]] = []
                    for (i, item), written in zip(todo, stored, strict=True):
                        outcomes[i] = written
                        if written.outcome is not None and written.record_id is not None:
                            links.append((item, written.record_id))
                    await _link(session, state.connector_id, links)
            letters: list[tuple[Record, str]] = []
            fine: list[Record] = []
            for record, item, result in zip(batch, prepared, outcomes, strict=True):
                if isinstance(item, str):
                    letters.append((record, item))
                elif result is None or result.outcome is None:
                    letters.append((record, (result.reason if result else None) or "not stored"))
                else:
                    fine.append(record)
                    name = result.outcome.value
                    setattr(done, name, getattr(done, name) + 1)
            done.dead_lettered = len(letters)
            await write_letters(session, state.connector_id, state.run_id, letters, fine)
        await turn.wait()
        return done

    async def _finish(self, state: _Run, status: str, error: str | None) -> None:
        for attempt in range(self.retries + 1):
            try:
                async with self.database.transaction() as session:
                    await finish(session, state.run_id, status, error)
                    await release(session, state.connector_id, state.holder)
                return
            except Exception as failure:  # noqa: BLE001 — reported; the lease expires anyway
                if not transient(failure) or attempt == self.retries:
                    # The lease expires by itself; the next run marks this one interrupted.
                    logger.error(
                        "could not record the end of sync run %s: %s",
                        state.run_id,
                        describe(failure),
                    )
                    return
                await self.sleep(self._delay(attempt + 1))


@dataclass(frozen=True)
class _Flight:
    """A batch being stored: its task (answering the batch's last cursor), the external
    ids and the positions it names."""

    task: asyncio.Task[str]
    ids: frozenset[str]
    positions: frozenset[str]


class _PreviousFailedError(Exception):
    """The batch before this one failed: this one must not commit (the run ends with
    the first batch's failure)."""


class _Turn:
    """When a batch may take the audit chain's lock and go on to commit: once the batch
    before it (``previous``; ``None`` for the first in flight) has committed.

    Until then an overlapping batch only reads, and writes rows no other batch in flight
    touches: new feedback with fresh ids, and the links and dead letters of external ids
    and positions of its own (batches sharing one never overlap). So a batch never waits
    in the database for a later one, the order of the locks is the order of the batches,
    and nothing waits in a circle. What a batch writes after its turn (the audit event
    and outbox, numbered under the lock; the lease and the checkpoint) is written in
    batch order: the same rows and numbers as one batch at a time."""

    __slots__ = ("_done", "previous")

    def __init__(self, previous: asyncio.Task[str] | None) -> None:
        self.previous = previous
        self._done = previous is None

    async def wait(self) -> None:
        previous = self.previous
        if self._done or previous is None:
            return
        try:
            # Shielded: this batch cancelled must not cancel the one before.
            await asyncio.shield(previous)
        except asyncio.CancelledError:
            if not previous.cancelled():
                raise  # this batch itself is cancelled
            raise _PreviousFailedError("the batch before was cancelled") from None
        except Exception as failure:
            raise _PreviousFailedError("the batch before failed") from failure
        self._done = True


def _may_fork() -> bool:
    """Whether this process may fork a child to read a source: only while it runs no
    other thread (``hub import`` and ``hub sync run`` on PostgreSQL). A thread holding a
    lock at the fork (the C library's resolver, OpenSSL's, which the child's digests
    use) leaves the child holding it forever; a server with its executor threads, or
    SQLite's driver threads, reads in-process."""
    return hasattr(os, "fork") and threading.active_count() == 1


_FIRST = _Turn(None)
"""The turn of a batch no other precedes (one stored alone)."""


def _unexpected(failure: BaseException) -> str:
    lines = str(failure).strip().splitlines()
    detail = f": {lines[0][:300]}" if lines else ""
    return f"unexpected {type(failure).__name__}{detail} (see the log)"


def _without_repeats(prepared: Sequence[Item | str]) -> Iterator[list[int]]:
    """The indexes of the batch's items, in runs where no external id repeats: a record
    stored twice in one batch is stored after the first is linked (an update, not a
    second create)."""
    part: list[int] = []
    seen: set[str] = set()
    for i, item in enumerate(prepared):
        if isinstance(item, str):
            continue
        if item.external_id in seen:
            yield part
            part, seen = [], set()
        part.append(i)
        seen.add(item.external_id)
    if part:
        yield part


async def _known(
    session: AsyncSession, connector_id: uuid.UUID, items: Sequence[Item]
) -> dict[str, _Known]:
    ids = [item.external_id for item in items]
    if not ids:
        return {}
    if session.get_bind().dialect.name == "postgresql":
        found = await _KNOWN_PG.rows(session, {"connector": connector_id, "ids": ids})
    else:
        found = (
            await session.execute(
                select(
                    col(SyncRecord.external_id), col(SyncRecord.record_id), col(SyncRecord.digest)
                ).where(
                    col(SyncRecord.connector_id) == connector_id,
                    col(SyncRecord.external_id).in_(ids),
                )
            )
        ).all()
    return {str(row[0]): _Known(row[1], row[2]) for row in found}


_KNOWN_PG = Prebuilt(
    text(
        """
    SELECT s.external_id, s.record_id, s.digest
    FROM unnest(CAST(:ids AS varchar[])) AS k(external_id)
    CROSS JOIN LATERAL (
        SELECT r.external_id, r.record_id, r.digest FROM sync_record AS r
        WHERE r.connector_id = :connector AND r.external_id = k.external_id
        OFFSET 0
    ) AS s
    """
    ).columns(
        SyncRecord.__table__.c.external_id,  # type: ignore[attr-defined]
        SyncRecord.__table__.c.record_id,  # type: ignore[attr-defined]
        SyncRecord.__table__.c.digest,  # type: ignore[attr-defined]
    )
)
"""The links of a batch's external ids on PostgreSQL: one probe of the primary key per id,
whatever the statistics say. A run fills ``sync_record`` from empty, and until the table
is analyzed again (autovacuum; never where it is off) the planner believes it nearly
empty: ``connector_id = :c AND external_id IN (...)`` was then planned as a scan of every
link of the connector, filtered (each batch read the whole table: an import slowing down
as it went, quadratic overall). The ``OFFSET 0`` keeps the subquery from being flattened
into a join the planner could again choose to hash over such a scan."""


@dataclass(frozen=True)
class _Known:
    """What the connector stored for an external id before."""

    record_id: uuid.UUID
    digest: str


async def _link(
    session: AsyncSession, connector_id: uuid.UUID, links: Sequence[tuple[Item, uuid.UUID]]
) -> None:
    """Remember which record each external id became, with its digest: new links in one
    multi-row insert (rows built as the ``COPY`` takes them), known ones updated."""
    now = utcnow()
    new = [
        (connector_id, item.external_id, record_id, item.digest, now)
        for item, record_id in links
        if item.known is None and item.record_id is None
    ]
    await insert_records(session, _LINKS, _LINK_COLUMNS, new)
    for item, record_id in links:
        if item.known is None and item.record_id is None:
            continue
        await session.execute(
            update(SyncRecord)
            .where(
                col(SyncRecord.connector_id) == connector_id,
                col(SyncRecord.external_id) == item.external_id,
            )
            .values(record_id=record_id, digest=item.digest, updated_at=now)
        )


_LINKS: Any = SyncRecord.__table__  # type: ignore[attr-defined]
_LINK_COLUMNS = ("connector_id", "external_id", "record_id", "digest", "updated_at")
"""Every column of ``sync_record``, in the order :func:`_link` builds its rows."""


__all__: list[str] = [
    "DEFAULT_BATCH",
    "RunProgress",
    "RunReport",
    "Runner",
    "raw_record",
    "refresh_process",
    "transient",
]
