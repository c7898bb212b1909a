"""A connector runs in one place at a time, across processes and replicas: a lease row
with an expiry, taken atomically (one ``INSERT … ON CONFLICT DO UPDATE … WHERE`` that
succeeds only when the row is free, expired or already ours), renewed in every batch's
transaction and released at the end.

The renewal is also a fence: a holder that stalled past its expiry while another took
the lease renews nothing, and its batch rolls back with :class:`LeaseLostError` instead
of writing beside the new holder. A holder that was killed on this host (its process is
gone) is taken over at once rather than after the expiry.
"""

from __future__ import annotations

import os
import socket
import uuid
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from hub.models._types import utcnow
from hub.models.sync import SyncLease
from hub.sync.errors import LeaseHeldError, LeaseLostError

DEFAULT_SECONDS = 60.0


def new_holder() -> str:
    """This process's holder name: host, process id and a nonce (one per runner)."""
    return f"{socket.gethostname()[:120]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _gone_here(holder: str) -> bool:
    """Whether ``holder`` names a process on this host that no longer exists."""
    host, pid_text, _nonce = [*holder.rsplit(":", 2), "", ""][:3]
    if host != socket.gethostname()[:120] or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


async def take(
    session: AsyncSession, connector_id: uuid.UUID, holder: str, seconds: float = DEFAULT_SECONDS
) -> None:
    """Take the connector's lease for ``seconds``, or raise :class:`LeaseHeldError`
    naming who holds it until when."""
    now = utcnow()
    until = now + timedelta(seconds=seconds)
    if await _claim(session, connector_id, holder, now, until, col(SyncLease.expires_at) < now):
        return
    current = (
        await session.execute(select(SyncLease).where(col(SyncLease.connector_id) == connector_id))
    ).scalar_one_or_none()
    if current is not None and _gone_here(current.holder):
        stolen = col(SyncLease.holder) == current.holder
        if await _claim(session, connector_id, holder, now, until, stolen):
            return
    who = current.holder if current is not None else "another runner"
    when = current.expires_at.isoformat(timespec="seconds") if current is not None else "soon"
    raise LeaseHeldError(
        f"the connector is running elsewhere ({who}, lease until {when}); wait for that run to end"
    )


async def _claim(
    session: AsyncSession,
    connector_id: uuid.UUID,
    holder: str,
    now: datetime,
    until: datetime,
    free: object,
) -> bool:
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    statement = (
        insert(SyncLease)
        .values(connector_id=connector_id, holder=holder, acquired_at=now, expires_at=until)
        .on_conflict_do_update(
            index_elements=["connector_id"],
            set_={"holder": holder, "acquired_at": now, "expires_at": until},
            where=or_(free, col(SyncLease.holder) == holder),  # type: ignore[arg-type]
        )
        .returning(col(SyncLease.holder))
    )
    return (await session.execute(statement)).first() is not None


async def renew(
    session: AsyncSession, connector_id: uuid.UUID, holder: str, seconds: float = DEFAULT_SECONDS
) -> None:
    """Extend the lease in the caller's transaction; :class:`LeaseLostError` when it is
    no longer ours (the caller's transaction must then roll back)."""
    statement = (
        update(SyncLease)
        .where(col(SyncLease.connector_id) == connector_id, col(SyncLease.holder) == holder)
        .values(expires_at=utcnow() + timedelta(seconds=seconds))
    )
    result = await session.execute(statement)
    if result.rowcount == 0:  # type: ignore[attr-defined]
        raise LeaseLostError(
            "another runner took over the connector's lease (this run stalled past its "
            "expiry); this batch was not written"
        )


async def release(session: AsyncSession, connector_id: uuid.UUID, holder: str) -> None:
    await session.execute(
        delete(SyncLease).where(
            col(SyncLease.connector_id) == connector_id, col(SyncLease.holder) == holder
        )
    )


__all__ = ["DEFAULT_SECONDS", "new_holder", "release", "renew", "take"]
