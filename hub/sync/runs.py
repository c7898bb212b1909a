"""The record of each run: started, its counts added with every batch (in the batch's
transaction), finished with a status and an error; and the status of every connector."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, fields
from datetime import datetime, timedelta

from sqlalchemy import delete, exists, func, select, text, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlmodel import col

from hub.bulk import Prebuilt
from hub.models import Organization
from hub.models._types import utcnow
from hub.models.sync import SyncCheckpoint, SyncConnector, SyncDeadLetter, SyncRun
from hub.models.sync_webhook import SyncWebhookEvent
from hub.sync.lease import renew

INTERRUPTED = (
    "interrupted: the process running it stopped (killed or crashed); the next run "
    "resumed from the last checkpoint"
)


@dataclass
class Counts:
    """What a run (or one batch) did to the records it read."""

    read: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    queued: int = 0
    dead_lettered: int = 0

    def add(self, other: Counts) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


async def start(
    session: AsyncSession, connector_id: uuid.UUID, holder: str
) -> tuple[SyncRun, str | None]:
    """A new run (the caller holds the lease), and the checkpoint it resumes from. Runs
    left ``running`` by a process that died are marked ``interrupted``."""
    now = utcnow()
    await session.execute(
        update(SyncRun)
        .where(col(SyncRun.connector_id) == connector_id, col(SyncRun.status) == "running")
        .values(status="interrupted", finished_at=now, error=INTERRUPTED)
    )
    run = SyncRun(connector_id=connector_id, holder=holder, started_at=now)
    session.add(run)
    checkpoint = await session.get(SyncCheckpoint, connector_id)
    if checkpoint is None:
        session.add(SyncCheckpoint(connector_id=connector_id, cursor=None, updated_at=now))
    await session.flush()
    return run, None if checkpoint is None else checkpoint.cursor


async def advance(
    session: AsyncSession, run_id: uuid.UUID, connector_id: uuid.UUID, cursor: str, done: Counts
) -> None:
    """Commit a batch's checkpoint and counts (in the batch's transaction)."""
    await session.execute(
        update(SyncCheckpoint)
        .where(col(SyncCheckpoint.connector_id) == connector_id)
        .values(cursor=cursor, run_id=run_id, updated_at=utcnow())
    )
    await session.execute(
        update(SyncRun)
        .where(col(SyncRun.id) == run_id)
        .values({name: getattr(SyncRun, name) + value for name, value in done.as_dict().items()})
    )


async def renew_and_advance(
    session: AsyncSession,
    run_id: uuid.UUID,
    connector_id: uuid.UUID,
    cursor: str,
    done: Counts,
    *,
    holder: str,
    seconds: float,
) -> None:
    """Renew the lease (the fence: :class:`~hub.sync.errors.LeaseLostError` when it is no
    longer ours), then :func:`advance`, in the batch's transaction.

    On PostgreSQL one statement (:data:`_RENEW_AND_ADVANCE`) where the three took three:
    a batch's fixed cost is mostly its statements (each built, compiled and sent by
    SQLAlchemy: 0.3 to 0.5 ms of the hub's CPU; these three were 2.5 ms of the 10 a batch
    costs whatever its size), and these three run while the batch holds the audit
    chain's lock, which the next batch waits for. Elsewhere, :func:`renew` and
    :func:`advance`."""
    if session.get_bind().dialect.name != "postgresql":
        await renew(session, connector_id, holder, seconds)
        await advance(session, run_id, connector_id, cursor, done)
        return
    now = utcnow()
    found = await _RENEW_AND_ADVANCE.rows(
        session,
        {
            "expires": now + timedelta(seconds=seconds),
            "connector": connector_id,
            "holder": holder,
            "cursor": cursor,
            "run": run_id,
            "now": now,
            **done.as_dict(),
        },
    )
    if not found:
        # The lease is not ours (renew raises), or the checkpoint's row is gone, which
        # advance has always let pass: the two statements say which, as before.
        await renew(session, connector_id, holder, seconds)
        await advance(session, run_id, connector_id, cursor, done)


_RENEW_AND_ADVANCE = Prebuilt(
    text(
        """
    WITH lease AS (
        UPDATE sync_lease SET expires_at = :expires
        WHERE connector_id = :connector AND holder = :holder
        RETURNING connector_id
    ), checkpoint AS (
        UPDATE sync_checkpoint SET cursor = :cursor, run_id = :run, updated_at = :now
        WHERE connector_id = (SELECT connector_id FROM lease)
        RETURNING run_id
    )
    UPDATE sync_run SET
        read = read + :read, created = created + :created, updated = updated + :updated,
        unchanged = unchanged + :unchanged, queued = queued + :queued,
        dead_lettered = dead_lettered + :dead_lettered
    WHERE id = :run AND EXISTS (SELECT FROM checkpoint)
    RETURNING id
    """
    )
)
"""The lease renewed, the checkpoint and the run's counts advanced, in this order (each
step's condition reads the one before: the rows are locked as :func:`renew` then
:func:`advance` lock them). No row back: the lease is not ours, or the checkpoint's row
is missing. Built once and run by the driver (:class:`hub.bulk.Prebuilt`)."""


async def finish(
    session: AsyncSession, run_id: uuid.UUID, status: str, error: str | None
) -> SyncRun:
    run = await session.get(SyncRun, run_id)
    if run is None:  # pragma: no cover — the run row is written before any batch
        raise RuntimeError(f"sync run {run_id} vanished")
    now = utcnow()
    run.status = status
    run.finished_at = now
    run.duration_ms = int((now - run.started_at).total_seconds() * 1000)
    run.error = error
    await session.flush()
    return run


async def reset_checkpoint(session: AsyncSession, connector_id: uuid.UUID) -> None:
    await session.execute(
        update(SyncCheckpoint)
        .where(col(SyncCheckpoint.connector_id) == connector_id)
        .values(cursor=None, run_id=None, updated_at=utcnow())
    )


async def last_run(session: AsyncSession, connector_id: uuid.UUID) -> SyncRun | None:
    found = await session.execute(
        select(SyncRun)
        .where(col(SyncRun.connector_id) == connector_id)
        .order_by(col(SyncRun.started_at).desc())
        .limit(1)
    )
    return found.scalar_one_or_none()


PRUNE_CHUNK = 10_000
"""Runs deleted at most per :func:`prune` call (one call a prune tick of the server)."""


async def prune(
    session: AsyncSession,
    retention: timedelta,
    *,
    now: datetime | None = None,
    limit: int = PRUNE_CHUNK,
) -> int:
    """Delete the records of runs that started more than ``retention`` ago; returns how
    many went (at most ``limit``, the oldest first).

    An inbound webhook records a run per message (:mod:`hub.sync.inbound`), so without
    this ``sync_run`` grows with every message. Kept whatever their age: each
    connector's last run (its status, and when its schedule is next due), a run still
    ``running``, and a run something still names: a dead letter, a checkpoint, or a
    webhook id still remembered (``HUB_WEBHOOK_EVENT_RETENTION``, pruned first on the
    same tick). The audit log keeps what the runs wrote (a batch's event names its run).
    """
    cutoff = (now or utcnow()) - retention
    run = aliased(SyncRun)
    newer = aliased(SyncRun)
    run_id = col(run.id)
    expired = (
        select(run_id)
        .where(
            col(run.started_at) < cutoff,
            col(run.status) != "running",
            # Not the connector's last run: a later one exists.
            exists().where(
                col(newer.connector_id) == col(run.connector_id),
                tuple_(col(newer.started_at), col(newer.id)) > tuple_(col(run.started_at), run_id),
            ),
            ~exists().where(col(SyncDeadLetter.run_id) == run_id),
            ~exists().where(col(SyncCheckpoint.run_id) == run_id),
            ~exists().where(col(SyncWebhookEvent.run_id) == run_id),
        )
        .order_by(col(run.started_at))
        .limit(limit)
    )
    result = await session.execute(delete(SyncRun).where(col(SyncRun.id).in_(expired)))
    return int(result.rowcount)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class ConnectorStatus:
    """One connector as ``hub sync status`` shows it."""

    name: str
    kind: str
    resource: str
    organization: str
    enabled: bool
    schedule_seconds: int | None
    adhoc: bool
    last: SyncRun | None
    open_dead_letters: int
    checkpoint: str | None
    checkpoint_at: datetime | None


async def statuses(session: AsyncSession, *, include_adhoc: bool = True) -> list[ConnectorStatus]:
    """Every connector by name, with its last run, open dead letters and checkpoint."""
    query = (
        select(SyncConnector, col(Organization.slug), SyncCheckpoint)
        .join(Organization, col(Organization.id) == col(SyncConnector.organization_id))
        .outerjoin(SyncCheckpoint, col(SyncCheckpoint.connector_id) == col(SyncConnector.id))
        .order_by(col(SyncConnector.name))
    )
    if not include_adhoc:
        query = query.where(col(SyncConnector.adhoc).is_(False))
    rows = (await session.execute(query)).all()
    open_letters = dict(
        (
            await session.execute(
                select(col(SyncDeadLetter.connector_id), func.count())
                .where(col(SyncDeadLetter.resolved_at).is_(None))
                .group_by(col(SyncDeadLetter.connector_id))
            )
        ).all()
    )
    result = []
    for connector, slug, checkpoint in rows:
        result.append(
            ConnectorStatus(
                name=connector.name,
                kind=connector.kind,
                resource=connector.resource,
                organization=slug,
                enabled=connector.enabled,
                schedule_seconds=connector.schedule_seconds,
                adhoc=connector.adhoc,
                last=await last_run(session, connector.id),
                open_dead_letters=int(open_letters.get(connector.id, 0)),
                checkpoint=None if checkpoint is None else checkpoint.cursor,
                checkpoint_at=None if checkpoint is None else checkpoint.updated_at,
            )
        )
    return result


__all__ = [
    "ConnectorStatus",
    "Counts",
    "advance",
    "finish",
    "last_run",
    "renew_and_advance",
    "reset_checkpoint",
    "start",
    "statuses",
]
