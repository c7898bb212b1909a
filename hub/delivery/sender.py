"""Sending queued deliveries: claim, project, post, record.

One round (:func:`send_due`):

1. **claim** (a short transaction): the due deliveries of active subscriptions, oldest
   first, ``FOR UPDATE SKIP LOCKED`` on PostgreSQL so replicas split the work; each is
   leased (``next_attempt_at`` moved ``lease`` seconds ahead), so one a crashed sender
   held is tried again once the lease ends: at least once, never lost;
2. **project** (a read): each record is selected through the access module's scoped
   select *as the subscriber* and projected (:meth:`hub.access.Access.project_all`)
   under the policy in force now: a record the subscriber can no longer see is dropped
   (nothing is sent), and the payload holds the projected fields only; the changed
   field names are cut to those the projection holds;
3. **post** (no transaction open): concurrently, through :class:`connectors.outbound.
   WebhookSink`, signed per Standard Webhooks, the same ``webhook-id`` on every try;
4. **record** (one transaction): delivered, or retried after a growing delay with
   jitter (or the receiver's ``Retry-After``, if longer), or dead after the last
   attempt; a 410 disables the subscription; and every record that may have reached a
   receiver is noted in the read audit, one ``read`` event per subscription and round
   (:mod:`hub.disclosures`), like any other disclosure.
"""

from __future__ import annotations

import asyncio
import enum
import random
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from connectors.base import ChangeEvent
from connectors.outbound import DeliveryError, EndpointGoneError, Timeouts, WebhookSink
from hub import disclosures
from hub.access import REMOTE, WITHHELD, Access, Resource
from hub.access.resources import MODELS
from hub.db import Database
from hub.delivery.fanout import Subscriber, subscriber_of
from hub.delivery.settings import DeliverySettings
from hub.delivery.subscriptions import SubscriptionStatus, disable, signing_secrets
from hub.errors import ForbiddenError
from hub.models._types import utcnow
from hub.models.delivery import WebhookDelivery, WebhookSubscription
from hub.principal import Principal


class DeliveryStatus(enum.StrEnum):
    PENDING = "pending"
    """Queued or being retried (``attempts`` says which)."""
    DELIVERED = "delivered"
    DEAD = "dead"
    """Every attempt failed: a dead letter, until replayed."""
    DROPPED = "dropped"
    """Not sent: the record was no longer visible to the subscriber when it was due."""


DROPPED_REASON = "not visible to the subscriber under the policy in force"


def plain(value: Any) -> Any:
    """A projected value as JSON: ids, decimals as text; times in ISO 8601."""
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, uuid.UUID | Decimal):
        return str(value)
    if isinstance(value, enum.Enum):
        return plain(value.value)
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, set | frozenset):
        return sorted(plain(v) for v in value)
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return str(value)


def payload(delivery: WebhookDelivery, record: Mapping[str, Any]) -> dict[str, Any]:
    """What a subscriber receives about one event: the record as projected for it, and
    the names of the changed fields it may see."""
    shown = {k: v for k, v in record.items() if k not in (WITHHELD, REMOTE)}
    return {
        "id": str(delivery.record_id),
        "resource": delivery.resource,
        "operation": delivery.operation,
        "changed": sorted(f for f in delivery.fields if f in shown),
        "record": plain(shown),
    }


def next_delay(attempts: int, settings: DeliverySettings, rng: random.Random) -> float:
    """Seconds before the next try after ``attempts`` failed ones, with jitter."""
    delays = settings.retry_delays
    base = delays[min(attempts, len(delays)) - 1] if delays else 0.0
    spread = base * settings.jitter
    return max(0.0, base + rng.uniform(-spread, spread))


@dataclass
class _Job:
    delivery: WebhookDelivery
    subscription: WebhookSubscription
    principal: Principal
    event: ChangeEvent
    raw: Mapping[str, Any]
    record: Mapping[str, Any]
    error: DeliveryError | None = None
    reached: bool = False
    status: int | None = None


@dataclass
class RoundReport:
    claimed: int = 0
    delivered: int = 0
    failed: int = 0
    dead: int = 0
    dropped: int = 0
    disabled: list[uuid.UUID] = field(default_factory=list)


async def claim(session: AsyncSession, settings: DeliverySettings) -> list[uuid.UUID]:
    """Lease up to ``settings.batch`` due deliveries of active subscriptions."""
    now = utcnow()
    statement = (
        select(col(WebhookDelivery.id))
        .join(WebhookSubscription, col(WebhookSubscription.id) == WebhookDelivery.subscription_id)
        .where(
            col(WebhookDelivery.status) == DeliveryStatus.PENDING,
            col(WebhookDelivery.next_attempt_at) <= now,
            col(WebhookSubscription.status) == SubscriptionStatus.ACTIVE,
        )
        .order_by(col(WebhookDelivery.next_attempt_at), col(WebhookDelivery.position))
        .limit(settings.batch)
        .with_for_update(skip_locked=True, of=WebhookDelivery)
    )
    ids = list((await session.execute(statement)).scalars())
    if ids:
        await session.execute(
            update(WebhookDelivery)
            .where(col(WebhookDelivery.id).in_(ids))
            .values(next_attempt_at=now + timedelta(seconds=settings.lease))
        )
    return ids


async def _project(
    session: AsyncSession,
    access: Access,
    principal: Principal,
    resource: Resource,
    ids: Sequence[uuid.UUID],
) -> dict[uuid.UUID, tuple[Mapping[str, Any], Mapping[str, Any]]]:
    """The rows of ``ids`` the principal may read now: ``id -> (raw values, record)``."""
    model: Any = MODELS[resource]
    try:
        statement = access.select(principal, resource).where(model.id.in_(list(ids)))
    except ForbiddenError:
        return {}
    rows = (await session.execute(statement)).all()
    records = access.project_all(principal, resource, rows)
    return {row.id: (row._mapping, record) for row, record in zip(rows, records, strict=True)}


async def _prepare(
    session: AsyncSession, access: Access, ids: Sequence[uuid.UUID]
) -> tuple[list[_Job], list[WebhookDelivery], dict[uuid.UUID, Subscriber], list[WebhookDelivery]]:
    """Jobs to send; deliveries to drop; subscribers that cannot act; deliveries to
    release unsent (their subscription is no longer active)."""
    deliveries = list(
        (
            await session.execute(
                select(WebhookDelivery)
                .where(col(WebhookDelivery.id).in_(list(ids)))
                .order_by(col(WebhookDelivery.position))
            )
        ).scalars()
    )
    sub_ids = {d.subscription_id for d in deliveries}
    subscriptions = {
        s.id: s
        for s in (
            await session.execute(
                select(WebhookSubscription).where(col(WebhookSubscription.id).in_(sub_ids))
            )
        ).scalars()
    }
    subscribers = {i: await subscriber_of(session, s) for i, s in subscriptions.items()}
    jobs: list[_Job] = []
    dropped: list[WebhookDelivery] = []
    release: list[WebhookDelivery] = []
    groups: dict[tuple[uuid.UUID, str], list[WebhookDelivery]] = {}
    for delivery in deliveries:
        subscription = subscriptions[delivery.subscription_id]
        acting = subscribers[subscription.id].principal is not None
        if subscription.status != SubscriptionStatus.ACTIVE or not acting:
            release.append(delivery)
        else:
            groups.setdefault((subscription.id, delivery.resource), []).append(delivery)
    for (sub_id, resource_name), group in groups.items():
        principal = subscribers[sub_id].principal
        if principal is None:  # pragma: no cover - filtered above
            continue
        try:
            resource = Resource(resource_name)
        except ValueError:
            dropped.extend(group)
            continue
        found = await _project(session, access, principal, resource, [d.record_id for d in group])
        for delivery in group:
            seen = found.get(delivery.record_id)
            if seen is None:
                dropped.append(delivery)
                continue
            raw, record = seen
            event = ChangeEvent(
                event_id=delivery.message_id,
                kind=f"{delivery.resource}.{delivery.operation}",
                data=payload(delivery, record),
            )
            jobs.append(_Job(delivery, subscriptions[sub_id], principal, event, raw, record))
    broken = {i: s for i, s in subscribers.items() if s.principal is None}
    return jobs, dropped, broken, release


async def _post(
    job: _Job, http: httpx.AsyncClient, settings: DeliverySettings, gate: asyncio.Semaphore
) -> None:
    timeouts = Timeouts(connect=settings.connect_timeout, total=settings.timeout)
    sink = WebhookSink(
        job.subscription.url, signing_secrets(job.subscription), http, timeouts=timeouts
    )
    async with gate:
        try:
            await sink.send(job.event, occurred_at=job.delivery.event_at)
            job.reached = True
            job.status = sink.last_status
        except DeliveryError as error:
            job.error = error
            job.reached = error.reached


async def _record(
    session: AsyncSession,
    jobs: Sequence[_Job],
    dropped: Sequence[WebhookDelivery],
    broken: Mapping[uuid.UUID, Subscriber],
    release: Sequence[WebhookDelivery],
    settings: DeliverySettings,
    rng: random.Random,
    policy_version: int,
) -> RoundReport:
    report = RoundReport(claimed=len(jobs) + len(dropped) + len(release))
    now = utcnow()
    gone: dict[uuid.UUID, str] = {}
    reads: dict[uuid.UUID, disclosures.ReadCollector] = {}
    delivered: dict[int | None, list[uuid.UUID]] = {}
    for job in jobs:
        d = job.delivery
        error = job.error
        if error is None:
            # Written together below, per status (the common case: all 200 or all 204).
            delivered.setdefault(job.status, []).append(d.id)
            report.delivered += 1
        else:
            values: dict[str, Any] = {
                "attempts": d.attempts + 1,
                "last_attempt_at": now,
                "response_status": error.status,
                "last_error": str(error)[:500],
            }
            if isinstance(error, EndpointGoneError):
                gone[job.subscription.id] = "the endpoint answered 410 Gone"
                values["next_attempt_at"] = now  # sent again if the subscriber resumes
                report.failed += 1
            elif d.attempts + 1 >= settings.max_attempts:
                values["status"] = DeliveryStatus.DEAD
                report.dead += 1
            else:
                wait = next_delay(d.attempts + 1, settings, rng)
                wait = max(wait, error.retry_after or 0.0)
                values["next_attempt_at"] = now + timedelta(seconds=wait)
                report.failed += 1
            await session.execute(
                update(WebhookDelivery).where(col(WebhookDelivery.id) == d.id).values(**values)
            )
        if job.reached:
            collector = reads.get(job.subscription.id)
            if collector is None:
                collector = disclosures.ReadCollector(
                    job.principal,
                    f"webhook:{job.subscription.id}",
                    disclosures.query_hash(f"webhook:{job.subscription.id}"),
                )
                reads[job.subscription.id] = collector
            collector.note(d.resource, policy_version, job.raw, job.record)
    for status, ids in delivered.items():
        await session.execute(
            update(WebhookDelivery)
            .where(col(WebhookDelivery.id).in_(ids))
            .values(
                status=DeliveryStatus.DELIVERED,
                attempts=col(WebhookDelivery.attempts) + 1,
                last_attempt_at=now,
                delivered_at=now,
                response_status=status,
                last_error=None,
            )
        )
    if dropped:
        await session.execute(
            update(WebhookDelivery)
            .where(col(WebhookDelivery.id).in_([d.id for d in dropped]))
            .values(status=DeliveryStatus.DROPPED, last_error=DROPPED_REASON)
        )
        report.dropped = len(dropped)
    if release:
        await session.execute(
            update(WebhookDelivery)
            .where(col(WebhookDelivery.id).in_([d.id for d in release]))
            .values(next_attempt_at=now)
        )
    for sub_id, subscriber in broken.items():
        gone.setdefault(sub_id, subscriber.problem or "the subscriber cannot act")
    for sub_id, reason in gone.items():
        row = await session.get(WebhookSubscription, sub_id, with_for_update=True)
        if row is not None:
            await disable(session, row, reason)
            report.disabled.append(sub_id)
    await disclosures.write_reads(session, list(reads.values()))
    return report


async def send_due(
    database: Database,
    access: Access,
    http: httpx.AsyncClient,
    settings: DeliverySettings,
    rng: random.Random,
) -> RoundReport:
    """One round: claim, project, post and record up to ``settings.batch`` deliveries."""
    async with database.transaction() as session:
        ids = await claim(session, settings)
    if not ids:
        return RoundReport()
    async with database.session() as session:
        jobs, dropped, broken, release = await _prepare(session, access, ids)
        policy_version = access.rules.version
    gate = asyncio.Semaphore(settings.concurrency)
    await asyncio.gather(*(_post(job, http, settings, gate) for job in jobs))
    async with database.transaction() as session:
        return await _record(session, jobs, dropped, broken, release, settings, rng, policy_version)
