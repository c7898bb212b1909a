"""Shared pieces of the delivery tests: a subscriber organization, changes made through
the hub's own write functions, and a worker run until nothing is due."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from hub import delivery
from hub.access import access
from hub.customers import CustomerFields, update_customer
from hub.db import Database
from hub.delivery import DeliverySettings, DeliveryWorker, PolicyFollower, guarded_client
from hub.models import Customer, Organization, OrgKind
from hub.principal import Principal
from hub.sharing import principal_for
from tests.conftest import ALL_SCOPES, SECRET, Caller, make_caller, make_org
from tests.hub.webhook_receiver import WebhookReceiver

MANAGE = "webhooks:manage"


def fast_settings(**overrides: Any) -> DeliverySettings:
    """Loopback allowed (the receiver is on 127.0.0.1), no waiting between retries."""
    values: dict[str, Any] = {
        "allow_loopback": True,
        "retry_delays": (0.0, 0.0, 0.0),
        "jitter": 0.0,
        "lease": 30.0,
        "poll_interval": 0.01,
        "connect_timeout": 2.0,
        "timeout": 5.0,
    }
    values.update(overrides)
    return DeliverySettings(**values)


def principal_of(caller: Caller, scopes: list[str] | None = None) -> Principal:
    org = caller.org
    return Principal(
        client_id=caller.client_id,
        organization_id=org.id,
        organization_slug=org.slug,
        organization_kind=OrgKind(org.kind),
        scopes=frozenset(scopes or [*ALL_SCOPES, MANAGE]),
        attributes=dict(org.attributes or {}),
    )


@pytest.fixture
async def policy_in_force(db: Database) -> AsyncIterator[None]:
    """The published policy in force (as a running hub's runtime puts it), and whatever
    rules a test puts in force taken back afterwards."""
    saved = access.rules
    await PolicyFollower(db, access, SECRET.encode())()
    yield
    access.rules = saved


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    found = WebhookReceiver()
    await found.start()
    try:
        yield found
    finally:
        await found.stop()


@dataclass
class World:
    operator: Organization
    distributor: Caller
    customers: list[Customer]


async def subscribe(
    db: Database,
    caller: Caller,
    receiver: WebhookReceiver,
    settings: DeliverySettings,
    resources: tuple[str, ...] = ("Customer",),
    url: str | None = None,
) -> uuid.UUID:
    async with db.transaction() as session:
        made = await delivery.create(
            session,
            principal_of(caller),
            delivery.SubscriptionRequest(url=url or receiver.url, resources=resources),
            settings,
        )
    receiver.secrets.append(made.secret)
    return made.subscription.id


async def make_world(db: Database) -> World:
    operator = await make_org(db, OrgKind.OPERATOR, "operator")
    distributor = await make_caller(db, OrgKind.DISTRIBUTOR, scopes=[*ALL_SCOPES, MANAGE])
    return World(operator, distributor, [])


async def touch(db: Database, operator: Organization, customer: Customer, **fields: Any) -> None:
    """Change a customer as the operator, through the hub's write pipeline."""
    async with db.transaction() as session:
        current = await session.get(Customer, customer.id)
        assert current is not None
        await update_customer(
            session, principal_for(operator), customer.id, current.version, CustomerFields(**fields)
        )


def make_worker(db: Database, settings: DeliverySettings) -> DeliveryWorker:
    return DeliveryWorker(
        db,
        access,
        settings,
        guarded_client(settings),
        follow=PolicyFollower(db, access, SECRET.encode()),
    )


async def drain(worker: DeliveryWorker, rounds: int = 20) -> None:
    """Rounds until one claims nothing (or ``rounds`` ran)."""
    for _ in range(rounds):
        report = await worker.run_once()
        if report.claimed == 0:
            return
