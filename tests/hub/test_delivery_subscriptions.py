"""Webhook subscriptions: secrets shown once and sealed at rest, validation, the
caller's organization only, rotation with overlap, pause and resume."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text

from hub import delivery
from hub.db import Database
from hub.errors import ForbiddenError, InvalidInputError, NotFoundError
from hub.models import OrgKind
from hub.models._sealed import looks_sealed
from tests.conftest import make_caller
from tests.hub.delivery_helpers import (
    MANAGE,
    drain,
    fast_settings,
    make_worker,
    make_world,
    policy_in_force,
    principal_of,
    receiver,
    subscribe,
    touch,
)
from tests.hub.factories import assign, make_customer
from tests.hub.webhook_receiver import WebhookReceiver

__all__ = ["policy_in_force", "receiver"]  # fixtures


async def test_the_secret_is_shown_once_and_sealed_at_rest(
    db: Database, policy_in_force: None
) -> None:
    world = await make_world(db)
    async with db.transaction() as session:
        made = await delivery.create(
            session,
            principal_of(world.distributor),
            delivery.SubscriptionRequest(
                url="http://127.0.0.1:9/hook", resources=["Customer", "Feedback"]
            ),
            fast_settings(),
        )
    assert made.secret.startswith("whsec_") and len(made.secret) > 40
    async with db.session() as session:
        raw = (
            await session.execute(
                text("SELECT secret FROM webhook_subscription WHERE id = :id"),
                {
                    "id": made.subscription.id
                    if db.engine.dialect.name == "postgresql"
                    else made.subscription.id.hex
                },
            )
        ).scalar_one()
    assert made.secret not in raw and looks_sealed(raw)
    async with db.session() as session:
        [listed] = await delivery.list_owned(session, principal_of(world.distributor))
    assert listed.id == made.subscription.id and listed.status == "active"


@pytest.mark.parametrize(
    ("request_", "path", "message"),
    [
        (delivery.SubscriptionRequest("https://x.test/h", []), "resources", "at least one"),
        (delivery.SubscriptionRequest("https://x.test/h", ["Order"]), "resources", "unknown"),
        (
            delivery.SubscriptionRequest("https://x.test/h", ["Customer"], ["delete"]),
            "operations",
            "unknown operation",
        ),
        (
            delivery.SubscriptionRequest("https://x.test/h", ["Customer"], (), "a\x00b"),
            "description",
            "printable",
        ),
        (delivery.SubscriptionRequest("https://10.0.0.1/h", ["Customer"]), "url", "private"),
    ],
)
async def test_bad_requests_name_what_is_wrong(
    db: Database,
    policy_in_force: None,
    request_: delivery.SubscriptionRequest,
    path: str,
    message: str,
) -> None:
    world = await make_world(db)
    async with db.transaction() as session:
        with pytest.raises(InvalidInputError) as raised:
            await delivery.create(
                session, principal_of(world.distributor), request_, fast_settings()
            )
    [problem] = raised.value.problems
    assert problem.path == ("input", path) and message in problem.message


async def test_scopes_are_required(db: Database, policy_in_force: None) -> None:
    world = await make_world(db)
    request = delivery.SubscriptionRequest("http://127.0.0.1:9/h", ["Customer", "Feedback"])
    async with db.transaction() as session:
        with pytest.raises(ForbiddenError, match=MANAGE):
            await delivery.create(
                session,
                principal_of(world.distributor, ["customers:read"]),
                request,
                fast_settings(),
            )
    async with db.transaction() as session:
        with pytest.raises(InvalidInputError, match="feedback:read"):
            await delivery.create(
                session,
                principal_of(world.distributor, ["customers:read", MANAGE]),
                request,
                fast_settings(),
            )


async def test_another_organizations_subscription_does_not_exist(
    db: Database, receiver: WebhookReceiver, policy_in_force: None
) -> None:
    settings = fast_settings()
    world = await make_world(db)
    theirs = await subscribe(db, world.distributor, receiver, settings)
    other = await make_caller(db, OrgKind.VENDOR, scopes=["customers:read", MANAGE])
    me = principal_of(other, ["customers:read", MANAGE])
    for subscription in (theirs, uuid.uuid4()):
        async with db.transaction() as session:
            for call in (
                delivery.pause(session, me, subscription),
                delivery.resume(session, me, subscription, settings),
                delivery.rotate_secret(session, me, subscription, settings),
                delivery.deliveries_of(session, me, subscription),
            ):
                with pytest.raises(NotFoundError, match=r"^no such webhook subscription$"):
                    await call
    async with db.session() as session:
        assert await delivery.list_owned(session, me) == []


async def test_rotation_signs_with_both_secrets_during_the_overlap(
    db: Database, receiver: WebhookReceiver, policy_in_force: None
) -> None:
    settings = fast_settings()
    world = await make_world(db)
    customer = await make_customer(db, consent_share_with_partners=True)
    await assign(db, customer, world.distributor.org)
    subscription = await subscribe(db, world.distributor, receiver, settings)
    old = receiver.secrets[0]
    async with db.transaction() as session:
        rotated = await delivery.rotate_secret(
            session, principal_of(world.distributor), subscription, settings
        )
    assert rotated.secret != old
    worker = make_worker(db, settings)
    receiver.secrets = [old]  # a receiver not yet switched
    await touch(db, world.operator, customer, city="Albi")
    await drain(worker)
    receiver.secrets = [rotated.secret]  # and one switched
    await touch(db, world.operator, customer, city="Agen")
    await drain(worker)
    assert len(receiver.accepted) == 2 and receiver.bad_signatures == 0

    # After the overlap only the new secret signs.
    async with db.transaction() as session:
        await delivery.rotate_secret(
            session,
            principal_of(world.distributor),
            subscription,
            settings.model_copy(update={"secret_overlap": 0.0}),
        )
    receiver.secrets = [rotated.secret]
    await touch(db, world.operator, customer, city="Auch")
    await drain(make_worker(db, fast_settings(retry_delays=())))
    assert receiver.bad_signatures == 1 and len(receiver.accepted) == 2


async def test_paused_subscriptions_queue_and_resume_sends(
    db: Database, receiver: WebhookReceiver, policy_in_force: None
) -> None:
    settings = fast_settings()
    world = await make_world(db)
    customer = await make_customer(db, consent_share_with_partners=True)
    await assign(db, customer, world.distributor.org)
    subscription = await subscribe(db, world.distributor, receiver, settings)
    me = principal_of(world.distributor)
    async with db.transaction() as session:
        paused = await delivery.pause(session, me, subscription)
    assert paused.status == "paused"
    await touch(db, world.operator, customer, city="Vichy")
    worker = make_worker(db, settings)
    await drain(worker)
    assert receiver.attempts == {}
    async with db.session() as session:
        page = await delivery.deliveries_of(session, me, subscription)
    assert [(r.status, r.attempts) for r in page.rows] == [("pending", 0)]
    async with db.transaction() as session:
        await delivery.resume(session, me, subscription, settings)
    await drain(worker)
    assert len(receiver.accepted) == 1


async def test_operations_filter(
    db: Database, receiver: WebhookReceiver, policy_in_force: None
) -> None:
    settings = fast_settings()
    world = await make_world(db)
    customer = await make_customer(db, consent_share_with_partners=True)
    await assign(db, customer, world.distributor.org)
    async with db.transaction() as session:
        made = await delivery.create(
            session,
            principal_of(world.distributor),
            delivery.SubscriptionRequest(receiver.url, ["Customer"], ["consent"]),
            settings,
        )
    receiver.secrets.append(made.secret)
    await touch(db, world.operator, customer, city="Sète")  # an update: not asked for
    await drain(make_worker(db, settings))
    assert receiver.attempts == {}
