"""From the outbox to deliveries: which events each subscription is sent.

For each subscription, :func:`fan_out` reads the outbox after its reader's position,
keeps the events it asked for (resource, operation) about records its principal may
read under the policy in force (the access module's row filter, pushed into SQL), and
queues one :class:`~hub.models.delivery.WebhookDelivery` per event, in the same
transaction as the reader's advance: a crash queues the batch again, harmlessly (one
delivery per subscription and event, by a unique key). An event about a record the
subscriber cannot see queues nothing, so its delivery list holds no hint of it. The
record is projected only when it is sent (:mod:`hub.delivery.sender`), under the policy
in force then.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from hub import outbox
from hub.access import Access, Resource
from hub.access.resources import MODELS
from hub.delivery.subscriptions import reader_name, wants
from hub.errors import ForbiddenError, NotFoundError
from hub.models import Client, Organization, OrgKind
from hub.models._types import utcnow
from hub.models.delivery import WebhookDelivery, WebhookSubscription
from hub.oauth.scopes import grantable_scopes
from hub.outbox import Event
from hub.principal import Principal


def message_id(subscription_id: uuid.UUID, position: int) -> str:
    """The ``webhook-id`` of one event for one subscription: stable (retries and replays
    send the same one), opaque, and different for each subscription."""
    return "msg_" + uuid.uuid5(subscription_id, f"outbox:{position}").hex


@dataclass(frozen=True)
class Subscriber:
    """Whom deliveries act as, or why they cannot act (``principal`` is then ``None``)."""

    principal: Principal | None
    problem: str | None = None


async def subscriber_of(session: AsyncSession, row: WebhookSubscription) -> Subscriber:
    """The subscription's OAuth client and organization as they are now: its scopes are
    those it was created with that the client still holds. A client deactivated or
    deleted, or an organization deactivated, leaves no principal."""
    found = await session.execute(
        select(Client, Organization)
        .join(Organization, col(Organization.id) == col(Client.organization_id))
        .where(col(Client.client_id) == row.client_id)
    )
    pair = found.first()
    if pair is None:
        return Subscriber(None, f"the client {row.client_id} no longer exists")
    client, org = pair
    if not client.active or org.id != row.organization_id:
        return Subscriber(None, f"the client {row.client_id} is no longer active")
    if not org.active:
        return Subscriber(None, f"the organization {org.slug} is no longer active")
    scopes = set(row.scopes) & set(grantable_scopes(org.kind, client.scopes))
    principal = Principal(
        client_id=client.client_id,
        organization_id=org.id,
        organization_slug=org.slug,
        organization_kind=OrgKind(org.kind),
        scopes=frozenset(scopes),
        attributes=dict(org.attributes or {}),
    )
    return Subscriber(principal)


async def visible_ids(
    session: AsyncSession,
    access: Access,
    principal: Principal,
    resource: Resource,
    ids: Iterable[uuid.UUID],
) -> set[uuid.UUID]:
    """Which of ``ids`` the principal may read now (none without the scope or a rule)."""
    wanted = list(dict.fromkeys(ids))
    if not wanted:
        return set()
    model: Any = MODELS[resource]
    try:
        condition = access.row_filter(principal, resource)
    except ForbiddenError:
        return set()
    found = await session.execute(select(model.id).where(model.id.in_(wanted), condition))
    return set(found.scalars())


def _resource(name: str) -> Resource | None:
    try:
        return Resource(name)
    except ValueError:
        return None  # ProposedChange and other administrative records


async def queue(
    session: AsyncSession,
    access: Access,
    row: WebhookSubscription,
    principal: Principal,
    events: Sequence[Event],
) -> int:
    """Queue the deliveries of ``events`` for ``row`` (already read from the outbox);
    returns how many were queued (an event queued before is not queued again)."""
    wanted = [e for e in events if wants(row, e.resource, e.operation)]
    by_resource: dict[Resource, list[uuid.UUID]] = {}
    for event in wanted:
        resource = _resource(event.resource)
        if resource is not None:
            by_resource.setdefault(resource, []).append(event.record_id)
    visible: set[tuple[str, uuid.UUID]] = set()
    for resource, ids in by_resource.items():
        found = await visible_ids(session, access, principal, resource, ids)
        visible.update((resource.value, i) for i in found)
    now = utcnow()
    values = [
        {
            "id": uuid.uuid4(),
            "subscription_id": row.id,
            "message_id": message_id(row.id, e.position),
            "position": e.position,
            "resource": e.resource,
            "record_id": e.record_id,
            "operation": e.operation.value,
            "fields": list(e.fields),
            "event_at": e.at,
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        }
        for e in wanted
        if (e.resource, e.record_id) in visible
    ]
    if not values:
        return 0
    dialect = session.get_bind().dialect.name
    upsert = pg_insert if dialect == "postgresql" else sqlite_insert
    statement = upsert(WebhookDelivery).on_conflict_do_nothing(
        index_elements=["subscription_id", "position"]
    )
    # Row counts of a multi-row insert are not reliable across drivers: count what was
    # offered (an event queued before, by a crashed round, is counted again).
    await session.execute(statement, values)
    return len(values)


@dataclass(frozen=True)
class FanOut:
    read: int
    queued: int
    position: int


async def fan_out(
    session: AsyncSession,
    access: Access,
    row: WebhookSubscription,
    principal: Principal,
    *,
    limit: int,
) -> FanOut:
    """Queue the next ``limit`` outbox events for ``row`` and advance its reader, in the
    caller's transaction. A subscription without a reader (disabled) reads nothing."""
    name = reader_name(row.id)
    try:
        position = await outbox.reader_position(session, name)
    except NotFoundError:
        return FanOut(0, 0, 0)
    events = await outbox.changes_since(session, position, limit)
    if not events:
        return FanOut(0, 0, position)
    queued = await queue(session, access, row, principal, events)
    last = await outbox.advance_reader(session, name, events[-1].position)
    return FanOut(len(events), queued, last)
