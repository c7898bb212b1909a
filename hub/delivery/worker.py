"""The delivery worker: queue new outbox events per subscription, then send what is due.

Any number of workers may run (``hub deliveries worker``, one per replica or apart):
fan-out is idempotent per subscription and event, and sending claims deliveries with
leases (``FOR UPDATE SKIP LOCKED`` on PostgreSQL). Each round follows the sharing policy
in force (:class:`PolicyFollower`, as the server's runtime does), so what is sent is
decided by the policy at the time of sending.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx
from sqlalchemy import select
from sqlmodel import col

from hub import sharing
from hub.access import Access, PolicyRules
from hub.db import Database
from hub.delivery.fanout import fan_out, subscriber_of
from hub.delivery.sender import RoundReport, send_due
from hub.delivery.settings import DeliverySettings
from hub.delivery.subscriptions import SubscriptionStatus, disable
from hub.models.delivery import WebhookSubscription
from hub.netguard import GuardedTransport, Resolver, system_resolver
from hub.outage import OutageLog

logger = logging.getLogger(__name__)


@dataclass
class PolicyFollower:
    """Puts the newest published policy version in force on ``access`` (the check is
    one indexed query; the version is parsed only when it changed)."""

    database: Database
    access: Access
    master_key: bytes

    async def __call__(self) -> None:
        async with self.database.session() as session:
            identity = await sharing.current_identity(session)
            if identity == (self.access.rules.version, self.access.rules.fingerprint):
                return
            version = await sharing.current_version(session)
        self.access.rules = (
            sharing.rules_for(version, self.master_key)
            if version is not None
            else PolicyRules.deny_all()
        )


def guarded_client(
    settings: DeliverySettings, resolver: Resolver = system_resolver
) -> httpx.AsyncClient:
    """The HTTP client deliveries go out with: connects only to checked addresses
    (:class:`hub.netguard.GuardedTransport`), follows no redirects."""
    limits = httpx.Limits(
        max_connections=settings.concurrency,
        max_keepalive_connections=settings.concurrency,
        keepalive_expiry=30.0,
    )
    return httpx.AsyncClient(
        transport=GuardedTransport(settings.net_policy(), resolver, limits=limits),
        follow_redirects=False,
        trust_env=False,
    )


@dataclass
class Totals:
    queued: int = 0
    delivered: int = 0
    failed: int = 0
    dead: int = 0
    dropped: int = 0
    disabled: int = 0
    rounds: int = 0

    def add(self, report: RoundReport) -> None:
        self.delivered += report.delivered
        self.failed += report.failed
        self.dead += report.dead
        self.dropped += report.dropped
        self.disabled += len(report.disabled)


@dataclass
class DeliveryWorker:
    """Fan-out and sending for every subscription. ``follow`` refreshes the policy
    before each round (``None``: whatever ``access.rules`` holds stays in force)."""

    database: Database
    access: Access
    settings: DeliverySettings
    http: httpx.AsyncClient
    follow: Callable[[], Awaitable[None]] | None = None
    rng: random.Random = field(default_factory=random.Random)
    totals: Totals = field(default_factory=Totals)

    async def fan_out(self) -> int:
        """Queue the next batch of outbox events for each subscription still reading;
        a subscription whose client is gone is disabled. Returns deliveries queued."""
        async with self.database.session() as session:
            ids = list(
                (
                    await session.execute(
                        select(col(WebhookSubscription.id)).where(
                            col(WebhookSubscription.status) != SubscriptionStatus.DISABLED
                        )
                    )
                ).scalars()
            )
        queued = 0
        for sub_id in ids:
            async with self.database.transaction() as session:
                row = await session.get(WebhookSubscription, sub_id, with_for_update=True)
                if row is None or row.status == SubscriptionStatus.DISABLED:
                    continue
                subscriber = await subscriber_of(session, row)
                if subscriber.principal is None:
                    await disable(session, row, subscriber.problem or "the subscriber cannot act")
                    self.totals.disabled += 1
                    continue
                result = await fan_out(
                    session, self.access, row, subscriber.principal, limit=self.settings.batch
                )
                queued += result.queued
        self.totals.queued += queued
        return queued

    async def run_once(self) -> RoundReport:
        """One round: refresh the policy, queue, send what is due."""
        if self.follow is not None:
            await self.follow()
        await self.fan_out()
        report = await send_due(self.database, self.access, self.http, self.settings, self.rng)
        self.totals.add(report)
        self.totals.rounds += 1
        return report

    async def run_forever(self, stop: asyncio.Event | None = None) -> None:
        """Rounds until ``stop`` is set; an idle round waits ``poll_interval``. A
        database outage is logged when it starts and ends and retried, never fatal."""
        stop = stop or asyncio.Event()
        outage = OutageLog("delivering webhooks")
        while not stop.is_set():
            busy = False
            try:
                report = await self.run_once()
                busy = report.claimed >= self.settings.batch
                outage.succeeded()
            except Exception as error:  # noqa: BLE001 - logged, retried next round
                outage.failed(error)
            if not busy:
                with contextlib.suppress(TimeoutError):  # idle: poll again
                    await asyncio.wait_for(stop.wait(), self.settings.poll_interval)
