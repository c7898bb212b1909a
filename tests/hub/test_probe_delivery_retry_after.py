"""A receiver's ``Retry-After`` that is not a number the hub can read is ignored (RFC
9110: seconds are ASCII digits), never an error out of the round: one receiver answering
``Retry-After: ²`` (the byte 0xB2, which httpx decodes as Latin-1, and which
``str.isdigit`` calls a digit) failed every round of the worker, so every other
subscriber's events of that round were sent again and again."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from connectors.outbound import retry_after
from hub.db import Database
from hub.models.delivery import WebhookDelivery
from tests.hub.delivery_helpers import (
    fast_settings,
    make_worker,
    make_world,
    policy_in_force,
    receiver,
    subscribe,
    touch,
)
from tests.hub.factories import assign, make_customer
from tests.hub.webhook_receiver import WebhookReceiver

__all__ = ["policy_in_force", "receiver"]  # fixtures


@pytest.mark.parametrize("value", ["\xb2", "\u00b9\u00b3", "\u0661\u0662", "1\u00b2"])
def test_a_retry_after_of_digits_not_ascii_is_unreadable(value: str) -> None:
    assert retry_after(value) is None


def test_a_retry_after_of_ascii_digits_still_counts() -> None:
    assert retry_after(" 120 ") == 120.0


async def test_an_unreadable_retry_after_is_a_failed_attempt(
    db: Database, receiver: WebhookReceiver, policy_in_force: None
) -> None:
    settings = fast_settings(retry_delays=(60.0, 60.0, 60.0))
    world = await make_world(db)
    customer = await make_customer(db, consent_share_with_partners=True)
    await assign(db, customer, world.distributor.org)
    await subscribe(db, world.distributor, receiver, settings)
    receiver.statuses = [503]
    receiver.extra_headers = {"retry-after": "\xb2"}  # written as the byte 0xB2
    await touch(db, world.operator, customer, city="Brest")
    report = await make_worker(db, settings).run_once()
    assert (report.claimed, report.failed) == (1, 1)
    async with db.session() as session:
        [row] = (await session.execute(select(WebhookDelivery))).scalars()
    assert (row.status, row.attempts, row.response_status) == ("pending", 1, 503)
    assert row.next_attempt_at is not None and row.last_attempt_at is not None
    waited = (row.next_attempt_at - row.last_attempt_at).total_seconds()
    assert 59 <= waited <= 61  # the hub's own backoff: the header said nothing
