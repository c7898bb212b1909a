"""``hub sync worker``: runs every enabled connector with a schedule when it is due.

Any number of workers may run (one per replica): a connector's lease lets one of them
run it at a time, and a worker that finds it held moves on. A connector is due when it
has never run, or its last run started ``schedule`` seconds ago or more.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta

from sqlalchemy import select
from sqlmodel import col

from hub.models._types import utcnow
from hub.models.sync import SyncConnector
from hub.outage import describe
from hub.sync.config import MAX_SCHEDULE
from hub.sync.errors import LeaseHeldError, SyncError
from hub.sync.runner import Runner, RunReport
from hub.sync.runs import last_run

logger = logging.getLogger(__name__)


async def due_connectors(runner: Runner) -> list[str]:
    """The names of the enabled, scheduled connectors due now, by name."""
    now = utcnow()
    async with runner.database.session() as session:
        rows = (
            await session.execute(
                select(SyncConnector)
                .where(
                    col(SyncConnector.enabled).is_(True),
                    col(SyncConnector.schedule_seconds).is_not(None),
                )
                .order_by(col(SyncConnector.name))
            )
        ).scalars()
        due = []
        for row in rows:
            last = await last_run(session, row.id)
            # Bounded as definitions are now: one stored before the bound would make
            # the date overflow and every tick fail, for every connector.
            every = timedelta(seconds=min(row.schedule_seconds or 0, MAX_SCHEDULE))
            if last is None or last.started_at + every <= now:
                due.append(row.name)
    return due


async def run_due(
    runner: Runner, report: Callable[[RunReport], None] | None = None
) -> list[RunReport]:
    """Run each due connector once (those running elsewhere are skipped)."""
    done = []
    for name in await due_connectors(runner):
        try:
            result = await runner.run(name)
        except LeaseHeldError:
            continue
        except SyncError as error:
            logger.error("connector %s cannot run: %s", name, error)
            continue
        done.append(result)
        if report is not None:
            report(result)
    return done


async def work_forever(
    runner: Runner,
    *,
    tick: float = 5.0,
    report: Callable[[RunReport], None] | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> None:
    """Check for due connectors every ``tick`` seconds until cancelled; a failure to
    reach the database is logged and retried at the next tick."""
    while True:
        try:
            await run_due(runner, report)
        except Exception as error:  # noqa: BLE001 — the worker outlives any one failure
            logger.warning("sync worker: %s; retrying in %.0fs", describe(error), tick)
        await sleep(tick)


__all__ = ["due_connectors", "run_due", "work_forever"]
