"""A subscriber never receives a record or field its policy hides (issue 12 acceptance).

Random sharing policies (the strategy of tests/hub/test_policy_enforcement.py) and
random changes to the demo's customers, made through the hub's write pipeline under the
default policy; then the random policy is put in force and the delivery worker sends to a
real receiver on 127.0.0.1 (signatures verified with ``standardwebhooks``). Every
payload is compared with the plain evaluator (the oracle) on the true record at delivery
time: the record is one the subscriber may see, each field it holds is visible (equal to
the truth) or masked (equal to the mask of the truth), nothing hidden is there, and the
changed field names are among the fields it holds. And no event is lost: every change
to a record the oracle shows a subscriber reached it.
"""

from __future__ import annotations

import os
import random
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlmodel import col

from hub import delivery, outbox, sharing
from hub.access import Resource, access
from hub.access.catalog import CATALOG
from hub.access.enforce import _CONDITION_ONLY
from hub.access.policy_rules import PolicyRules, caller_of
from hub.access.rules import DATA_SCOPES
from hub.db import Database
from hub.delivery import DeliveryWorker, PolicyFollower, guarded_client
from hub.delivery.fanout import subscriber_of
from hub.delivery.sender import plain
from hub.demo import seed_demo
from hub.models import Customer, Organization, OrgKind
from hub.models.delivery import WebhookDelivery, WebhookSubscription
from hub.principal import Principal
from policies import Document, Outcome, apply_mask, evaluate
from tests.conftest import SECRET
from tests.hub.delivery_helpers import (
    MANAGE,
    drain,
    fast_settings,
    policy_in_force,
    receiver,
    touch,
)
from tests.hub.test_policy_enforcement import ROW_DEPENDENT, documents
from tests.hub.webhook_receiver import WebhookReceiver

__all__ = ["policy_in_force", "receiver"]  # fixtures

EXAMPLES = max(1, int(os.environ.get("HUB_HYPOTHESIS_EXAMPLES", "200")) // 10)
SUBSCRIBERS = ("acme-distribution", "eurotrade-partners", "sales", "operator")
CHANGES: dict[str, list[Any]] = {
    "city": ["Lyon", "Oslo", "Quito"],
    "region": ["NA", "EMEA", "LATAM", "APAC"],
    "segment": ["consumer", "smb", "enterprise"],
    "lifecycle_stage": ["lead", "customer", "churned"],
    "lifetime_value": [Decimal("10.00"), Decimal("2500.00")],
    "consent_share_with_partners": [True, False],
    "consent_marketing_opt_in": [True, False],
    "email": ["x@example.org", "y.z@example.net"],
}

changes = st.lists(
    st.tuples(
        st.integers(0, 11),
        st.dictionaries(
            st.sampled_from(sorted(CHANGES)),
            st.integers(0, 3),
            min_size=1,
            max_size=3,
        ),
    ),
    min_size=1,
    max_size=4,
)


def _value(name: str, pick: int) -> Any:
    values = CHANGES[name]
    return values[pick % len(values)]


async def test_subscribers_never_receive_what_their_policy_hides(
    db: Database, receiver: WebhookReceiver, policy_in_force: None
) -> None:
    async with db.transaction() as session:
        credentials = await seed_demo(session, customers=12, seed=3)
    clients = {c.org: c.client_id for c in credentials if c.role is None}
    async with db.session() as session:
        orgs = {o.slug: o for o in (await session.execute(select(Organization))).scalars()}
        customers = list(
            (await session.execute(select(Customer).order_by(col(Customer.id)))).scalars()
        )
    settings_ = fast_settings(retry_delays=())
    subscription_of: dict[Any, str] = {}
    for slug in SUBSCRIBERS:
        org = orgs[slug]
        principal = Principal(
            client_id=clients[slug],
            organization_id=org.id,
            organization_slug=slug,
            organization_kind=OrgKind(org.kind),
            scopes=frozenset({*DATA_SCOPES, MANAGE}),
            attributes=dict(org.attributes or {}),
        )
        async with db.transaction() as session:
            created = await delivery.create(
                session,
                principal,
                delivery.SubscriptionRequest(receiver.url, ["Customer"]),
                settings_,
            )
        receiver.secrets.append(created.secret)
        subscription_of[created.subscription.id] = slug
    default_rules = access.rules
    follow = PolicyFollower(db, access, SECRET.encode())

    examples: list[tuple[Document, list[tuple[int, dict[str, int]]]]] = []

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(documents(), changes)
    @example(ROW_DEPENDENT, [(0, {"city": 1}), (1, {"consent_marketing_opt_in": 0})])
    def collect(document: Document, made: list[tuple[int, dict[str, int]]]) -> None:
        examples.append((document, made))

    collect()
    secret = b"d" * 32
    seen = {"delivered": 0, "masked": 0, "hidden": 0}
    rng = random.Random(1)
    http = guarded_client(settings_)
    try:
        for number, (document, made) in enumerate(examples, start=1000):
            # The changes, written under the published (default) policy.
            await follow()
            async with db.session() as session:
                start = await outbox.head(session)
            for index, picks in made:
                values = {name: _value(name, pick) for name, pick in picks.items()}
                await touch(db, orgs["operator"], customers[index], **values)
            async with db.session() as session:
                changed = {e.record_id for e in await outbox.changes_since(session, start)}
            # Delivered under the example's policy.
            rules = PolicyRules(number, document, (), pseudonym_secret=secret)
            access.rules = rules
            before = set(receiver.accepted)
            worker = DeliveryWorker(db, access, settings_, http, rng=rng)
            await drain(worker)
            assert receiver.bad_signatures == 0
            new = set(receiver.accepted) - before
            async with db.session() as session:
                rows = {
                    r.message_id: r
                    for r in (
                        await session.execute(
                            select(WebhookDelivery).where(col(WebhookDelivery.message_id).in_(new))
                        )
                    ).scalars()
                }
                subscribers = {
                    s.id: await subscriber_of(session, s)
                    for s in (await session.execute(select(WebhookSubscription))).scalars()
                }
                truth = {
                    i: await sharing.policy_record(session, Resource.CUSTOMER, i) for i in changed
                }
            got: set[tuple[str, Any]] = set()
            for message_id in new:
                row = rows[message_id]
                acting = subscribers[row.subscription_id].principal
                assert acting is not None
                slug = acting.organization_slug
                body = receiver.accepted[message_id].body
                record = body["data"]["record"]
                true = truth[row.record_id]
                assert true is not None
                decision = evaluate(document, CATALOG, caller_of(acting), "Customer", true)
                assert decision.row_visible, (document, slug, row.record_id)
                got.add((slug, row.record_id))
                for name, fd in decision.fields.items():
                    if name in _CONDITION_ONLY or name == "id":
                        continue  # a visible row's id is always there (hub.access)
                    if fd.outcome is Outcome.VISIBLE:
                        assert record.get(name) == plain(true[name]), (name, document, slug)
                    elif fd.outcome is Outcome.MASKED and fd.mask is not None:
                        masked = apply_mask(fd.mask, true[name], secret=secret, partner=slug)
                        assert record.get(name) == plain(masked), (name, document, slug)
                        seen["masked"] += 1
                    else:
                        assert name not in record, (name, document, slug)
                        seen["hidden"] += 1
                assert set(body["data"]["changed"]) <= set(record), document
                seen["delivered"] += 1
            # None lost: every changed record a subscriber may see reached it.
            expected = {
                (slug, i)
                for i, true in truth.items()
                if true is not None
                for slug in SUBSCRIBERS
                if evaluate(
                    document,
                    CATALOG,
                    caller_of(_principal_of(subscribers, subscription_of, slug)),
                    "Customer",
                    true,
                ).row_visible
            }
            assert got == expected, document
            access.rules = default_rules
    finally:
        await http.aclose()
    assert seen["delivered"] and seen["hidden"], seen


def _principal_of(subscribers: dict[Any, Any], subscription_of: dict[Any, str], slug: str) -> Any:
    [found] = [subscribers[sub_id].principal for sub_id, s in subscription_of.items() if s == slug]
    return found
