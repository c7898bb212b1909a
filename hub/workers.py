"""Background work in the server process, started and stopped with the app's lifespan.

- With ``HUB_SYNC_WORKER=true``: the sync scheduler (:func:`hub.sync.worker.work_forever`:
  enabled connectors with a schedule, when due) and the outbound delivery worker
  (:class:`hub.delivery.DeliveryWorker`, with the ``HUB_DELIVERY_*`` settings), so one
  process serves the API and moves the data (``hub demo`` runs this way). Any number of
  replicas may run them, and ``hub sync worker`` / ``hub deliveries worker`` beside them:
  connector leases and delivery claims keep each piece of work in one place.
- Always: runs an administrator starts (``runConnector``), each a task of this process
  that outlives its request (:meth:`ServerWorkers.run_now`).

Stopping cancels what is still going: a run cut short is marked ``interrupted`` by the
connector's next run and resumes from its last committed batch (docs/sync.md); a
delivery in flight is sent again once its claim expires (receivers deduplicate on
``webhook-id``). The policy in force is the server's own (its runtime refreshes it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from hub.access import access
from hub.db import Database
from hub.delivery import DeliverySettings, DeliveryWorker, guarded_client, load_delivery_settings
from hub.errors import FieldProblem, InvalidInputError
from hub.principal import Principal
from hub.settings import Settings
from hub.sync import admin as sync_admin
from hub.sync.admin import RunView, get_run, run_of_holder, running_elsewhere
from hub.sync.errors import LeaseHeldError, SyncError
from hub.sync.runner import Runner, RunReport
from hub.sync.worker import work_forever

logger = logging.getLogger(__name__)

STOP_GRACE = 5.0
"""Seconds the delivery worker is given to finish its round when the server stops."""
RUN_WAIT = 5.0
"""Seconds ``runConnector`` waits for its run before answering with the run in progress."""


@dataclass
class ServerWorkers:
    """The server's background tasks (see the module docstring)."""

    settings: Settings
    database: Database
    delivery_settings: DeliverySettings | None = None
    """``None``: read from the environment (``HUB_DELIVERY_*``) when started."""
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set, init=False)
    _stop: asyncio.Event = field(default_factory=asyncio.Event, init=False)
    _delivery: asyncio.Task[None] | None = field(default=None, init=False)

    @property
    def enabled(self) -> bool:
        return self.settings.sync_worker

    def start(self) -> None:
        """Start the scheduler and the delivery worker when ``HUB_SYNC_WORKER`` is on."""
        if not self.enabled:
            return
        delivery_settings = self.delivery_settings or load_delivery_settings()
        runner = Runner(self.database, self.settings.master_key)
        self._spawn(work_forever(runner, tick=self.settings.sync_worker_tick, report=_log_run))
        self._delivery = self._spawn(self._deliver(delivery_settings))
        logger.info(
            "sync worker %s checks connectors every %gs; delivering webhooks",
            runner.holder,
            self.settings.sync_worker_tick,
        )

    async def _deliver(self, delivery_settings: DeliverySettings) -> None:
        http = guarded_client(delivery_settings)
        try:
            # follow=None: the server's runtime keeps the policy in force current.
            await DeliveryWorker(self.database, access, delivery_settings, http).run_forever(
                self._stop
            )
        finally:
            await http.aclose()

    def _spawn(self, work: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            logger.error("background task failed: %s", error, exc_info=error)

    async def request_run(
        self, principal: Principal, name: str, *, wait: float = RUN_WAIT
    ) -> RunView | None:
        """``runConnector``: an administrator's run of ``name``, checked and audited
        (:func:`hub.sync.admin.request_run`), then started (:meth:`run_now`). A connector
        running elsewhere, disabled or unknown is a user error at ``name``."""
        async with self.database.transaction() as session:
            await sync_admin.request_run(session, principal, name)
        try:
            return await self.run_now(name, wait=wait)
        except LeaseHeldError:
            raise InvalidInputError([running_elsewhere(("name",))]) from None
        except SyncError as error:
            raise InvalidInputError([FieldProblem(("name",), str(error), "NOT_RUNNABLE")]) from None

    async def run_now(self, name: str, *, wait: float = RUN_WAIT) -> RunView | None:
        """Run the connector ``name`` in the background from now; the run as it stands
        after ``wait`` seconds (finished if it was quick), or ``None`` when it has not
        started yet. A run that cannot start (another holds the lease, the connector is
        disabled) raises :class:`hub.sync.SyncError` when that is known within ``wait``."""
        runner = Runner(self.database, self.settings.master_key)
        task = asyncio.create_task(runner.run(name))
        self._tasks.add(task)
        task.add_done_callback(self._run_done)
        done, _ = await asyncio.wait({task}, timeout=wait)
        async with self.database.session() as session:
            if done:
                return await get_run(session, task.result().run_id)
            return await run_of_holder(session, runner.holder)

    def _run_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        error = task.exception()
        if isinstance(error, SyncError):
            # Known before the run starts, so within the wait: the caller was answered.
            logger.info("requested connector run did not start: %s", error)
        elif error is not None:  # the run records its own failures; this is a bug
            logger.error("requested connector run crashed: %s", error, exc_info=error)
        else:
            _log_run(task.result())

    async def stop(self) -> None:
        """Stop everything: the delivery worker ends its round (up to
        :data:`STOP_GRACE` seconds), the rest is cancelled."""
        self._stop.set()
        if self._delivery is not None:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(self._delivery), STOP_GRACE)
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


def _log_run(report: RunReport) -> None:
    counts = ", ".join(f"{name} {n}" for name, n in report.counts.as_dict().items())
    logger.info("connector %s: %s (%s)", report.connector, report.status, counts)


__all__ = ["RUN_WAIT", "STOP_GRACE", "ServerWorkers"]
