"""The delivery worker against a real receiver on 127.0.0.1 that verifies signatures
with the ``standardwebhooks`` library: only what the subscriber may see, projected;
every event delivered once to a deduplicating receiver; 410, dead letters, replays."""

from __future__ import annotations

import asyncio

from sqlalchemy import select, update
from sqlmodel import col

from hub import delivery, outbox
from hub.db import Database
from hub.delivery import sender
from hub.delivery.sender import claim
from hub.delivery.subscriptions import reader_name
from hub.models import AuditEvent, Client, Customer
from hub.models.delivery import WebhookDelivery, WebhookSubscription
from tests.hub.delivery_helpers import (
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


async def deliveries(db: Database) -> list[WebhookDelivery]:
    async with db.session() as session:
        rows = await session.execute(
            select(WebhookDelivery).order_by(col(WebhookDelivery.position))
        )
        return list(rows.scalars())


async def test_a_subscriber_receives_only_what_it_may_see(
    db: Database, receiver: WebhookReceiver, policy_in_force: None
) -> None:
    settings = fast_settings()
    world = await make_world(db)
    seen = await make_customer(db, consent_share_with_partners=True, email="ann@example.com")
    no_consent = await make_customer(db, consent_share_with_partners=False)
    not_assigned = await make_customer(db, consent_share_with_partners=True)
    for customer in (seen, no_consent):
        await assign(db, customer, world.distributor.org)
    subscription = await subscribe(db, world.distributor, receiver, settings)
    for customer in (seen, no_consent, not_assigned):
        await touch(db, world.operator, customer, city="Paris", traits={"internal_notes": "x"})

    worker = make_worker(db, settings)
    await drain(worker)

    assert receiver.bad_signatures == 0
    bodies = receiver.bodies()
    assert len(bodies) == 1, receiver.dump()
    body = bodies[0]
    assert body["type"] == "Customer.update"
    data = body["data"]
    assert data["id"] == str(seen.id)
    assert data["changed"] == ["city"]  # traits changed too, but are hidden
    record = data["record"]
    assert record["city"] == "Paris"
    assert record["email"] != "ann@example.com" and record["email"].endswith("@example.com")
    assert "traits" not in record and "email_index" not in record
    assert "lifetime_value" not in record  # hidden from distributors
    rows = await deliveries(db)
    assert [(r.record_id, r.status) for r in rows] == [(seen.id, "delivered")]
    assert rows[0].message_id == receiver.accepted[rows[0].message_id].message_id
    # The disclosure is in the read audit, as the subscriber's read.
    async with db.session() as session:
        reads = (
            (
                await session.execute(
                    select(AuditEvent).where(
                        col(AuditEvent.action) == "read",
                        col(AuditEvent.target) == f"operation:webhook:{subscription}",
                    )
                )
            )
            .scalars()
            .all()
        )
    assert len(reads) == 1
    assert reads[0].organization == world.distributor.org.slug
    disclosed = reads[0].details["disclosed"]["Customer"]
    assert [g["ids"] for g in disclosed] == [[str(seen.id)]]
    assert "city" in disclosed[0]["fields"] and "traits" not in disclosed[0]["fields"]


async def test_receiver_down_then_back_every_event_once(
    db: Database, receiver: WebhookReceiver, policy_in_force: None
) -> None:
    settings = fast_settings(retry_delays=(0.0,) * 8)
    world = await make_world(db)
    customers = [await make_customer(db, consent_share_with_partners=True) for _ in range(6)]
    for customer in customers:
        await assign(db, customer, world.distributor.org)
    await subscribe(db, world.distributor, receiver, settings)
    await receiver.stop()  # down: connections refused
    for customer in customers:
        await touch(db, world.operator, customer, city="Nantes")
    worker = make_worker(db, settings)
    for _ in range(3):
        await worker.run_once()
    assert receiver.accepted == {}
    rows = await deliveries(db)
    assert len(rows) == 6
    assert {r.status for r in rows} == {"pending"} and all(r.attempts == 3 for r in rows)
    assert all("connect" in (r.last_error or "") for r in rows)

    # A sender that crashed after posting, before recording: the lease runs out and the
    # same events go again, with the same webhook-id.
    await receiver.start()
    await touch(db, world.operator, customers[0], city="Brest")
    await worker.fan_out()
    async with db.transaction() as session:
        claimed = await claim(session, settings)
    async with db.session() as session:
        jobs, _, _, _ = await sender._prepare(session, worker.access, claimed)
    gate = asyncio.Semaphore(4)
    await asyncio.gather(*(sender._post(job, worker.http, settings, gate) for job in jobs))
    assert len(receiver.accepted) == 7
    async with db.transaction() as session:  # the lease ends
        await session.execute(
            update(WebhookDelivery).values(next_attempt_at=WebhookDelivery.created_at)
        )
    await drain(worker)

    assert len(receiver.accepted) == 7  # every event, once
    assert receiver.duplicates == 7  # the crashed round's posts came again, deduplicated
    assert all(count == 2 for count in receiver.attempts.values())
    assert {r.status for r in await deliveries(db)} == {"delivered"}
    assert receiver.bad_signatures == 0


async def test_410_disables_the_subscription(
    db: Database, receiver: WebhookReceiver, policy_in_force: None
) -> None:
    settings = fast_settings()
    world = await make_world(db)
    customer = await make_customer(db, consent_share_with_partners=True)
    await assign(db, customer, world.distributor.org)
    subscription = await subscribe(db, world.distributor, receiver, settings)
    receiver.status = 410
    await touch(db, world.operator, customer, city="Metz")
    worker = make_worker(db, settings)
    await drain(worker)

    assert sum(receiver.attempts.values()) == 1
    async with db.session() as session:
        row = await session.get(WebhookSubscription, subscription)
        assert row is not None
        assert row.status == "disabled" and row.disabled_reason is not None
        assert "410" in row.disabled_reason
        assert reader_name(subscription) not in dict(await outbox.readers(session))
    # Nothing more is queued or sent.
    await touch(db, world.operator, customer, city="Nancy")
    await drain(worker)
    assert sum(receiver.attempts.values()) == 1
    assert len(await deliveries(db)) == 1


async def test_dead_letter_after_the_limit_then_replay(
    db: Database, receiver: WebhookReceiver, policy_in_force: None
) -> None:
    settings = fast_settings(retry_delays=(0.0, 0.0))
    world = await make_world(db)
    customer = await make_customer(db, consent_share_with_partners=True)
    await assign(db, customer, world.distributor.org)
    await subscribe(db, world.distributor, receiver, settings)
    receiver.status = 500
    await touch(db, world.operator, customer, city="Lille")
    worker = make_worker(db, settings)
    await drain(worker)

    [row] = await deliveries(db)
    assert (row.status, row.attempts, row.response_status) == ("dead", 3, 500)
    assert sum(receiver.attempts.values()) == 3 and receiver.accepted == {}

    receiver.status = 200
    async with db.transaction() as session:
        replayed = await delivery.replay(session, row.message_id)
    assert replayed.status == "pending" and replayed.attempts == 0
    await drain(worker)
    [row] = await deliveries(db)
    assert row.status == "delivered"
    assert list(receiver.accepted) == [row.message_id]


async def test_retry_after_is_honoured_and_replay_from_a_position(
    db: Database, receiver: WebhookReceiver, policy_in_force: None
) -> None:
    settings = fast_settings()
    world = await make_world(db)
    customer = await make_customer(db, consent_share_with_partners=True)
    await assign(db, customer, world.distributor.org)
    subscription = await subscribe(db, world.distributor, receiver, settings)
    async with db.session() as session:
        start = await outbox.head(session)
    receiver.statuses = [503]
    receiver.extra_headers = {"retry-after": "3600"}
    await touch(db, world.operator, customer, city="Caen")
    worker = make_worker(db, settings)
    await worker.run_once()
    [row] = await deliveries(db)
    assert row.status == "pending" and row.last_attempt_at is not None
    assert (row.next_attempt_at - row.last_attempt_at).total_seconds() >= 3599
    receiver.extra_headers = {}
    async with db.transaction() as session:  # an operator's replay of everything since
        reset = await delivery.replay_from(session, subscription, start)
    assert reset == 1
    await touch(db, world.operator, customer, city="Rouen")
    await drain(worker)
    assert len(receiver.accepted) == 2
    assert {r.status for r in await deliveries(db)} == {"delivered"}


async def test_a_record_hidden_by_the_time_it_is_sent_is_dropped(
    db: Database, receiver: WebhookReceiver, policy_in_force: None
) -> None:
    settings = fast_settings()
    world = await make_world(db)
    customer = await make_customer(db, consent_share_with_partners=True)
    await assign(db, customer, world.distributor.org)
    subscription = await subscribe(db, world.distributor, receiver, settings)
    await touch(db, world.operator, customer, city="Dijon")
    worker = make_worker(db, settings)
    await worker.fan_out()
    # Consent withdrawn after the event was queued, before it is sent.
    async with db.transaction() as session:
        await session.execute(
            update(Customer)
            .where(col(Customer.id) == customer.id)
            .values(consent_share_with_partners=False)
        )
    await drain(worker)
    assert receiver.attempts == {}
    [row] = await deliveries(db)
    assert row.status == "dropped"
    # The subscriber's own listing does not show it.
    async with db.session() as session:
        page = await delivery.deliveries_of(session, principal_of(world.distributor), subscription)
    assert page.rows == []


async def test_a_deactivated_client_disables_its_subscriptions(
    db: Database, receiver: WebhookReceiver, policy_in_force: None
) -> None:
    settings = fast_settings()
    world = await make_world(db)
    subscription = await subscribe(db, world.distributor, receiver, settings)
    async with db.transaction() as session:
        await session.execute(
            update(Client)
            .where(col(Client.client_id) == world.distributor.client_id)
            .values(active=False)
        )
    await drain(make_worker(db, settings))
    async with db.session() as session:
        row = await session.get(WebhookSubscription, subscription)
    assert row is not None and row.status == "disabled"
    assert "no longer active" in (row.disabled_reason or "")


async def test_the_worker_loop_delivers_until_stopped(
    db: Database, receiver: WebhookReceiver, policy_in_force: None
) -> None:
    settings = fast_settings()
    world = await make_world(db)
    customer = await make_customer(db, consent_share_with_partners=True)
    await assign(db, customer, world.distributor.org)
    await subscribe(db, world.distributor, receiver, settings)
    worker = make_worker(db, settings)
    stop = asyncio.Event()
    running = asyncio.create_task(worker.run_forever(stop))
    await touch(db, world.operator, customer, city="Orléans")
    for _ in range(500):
        if receiver.accepted:
            break
        await asyncio.sleep(0.01)
    stop.set()
    await asyncio.wait_for(running, 5)
    assert len(receiver.accepted) == 1 and worker.totals.delivered == 1
