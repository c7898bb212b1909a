"""Outbound delivery: policy-filtered change events sent to subscribers' webhooks
(DESIGN §8, §10; docs/deliveries.md).

The modules, one concept each, importing only in this order:

- :mod:`~hub.delivery.settings`: :class:`DeliverySettings` (``HUB_DELIVERY_*``);
- :mod:`~hub.delivery.subscriptions`: endpoints, secrets and states, scoped to the
  subscriber's organization;
- :mod:`~hub.delivery.fanout`: outbox events to queued deliveries, per subscription,
  only about records the subscriber may read;
- :mod:`~hub.delivery.sender`: claim, project as the subscriber, post (signed), record
  the outcome and the disclosure;
- :mod:`~hub.delivery.deliveries`: listing and replaying;
- :mod:`~hub.delivery.worker`: the loop running fan-out and sending.

Outbound addresses are checked by :mod:`hub.netguard`; the HTTP request itself is made
by :class:`connectors.outbound.WebhookSink`.
"""

from hub.delivery.deliveries import (
    DeliveryPage,
    deliveries_of,
    get_delivery,
    list_deliveries,
    replay,
    replay_dead,
    replay_from,
)
from hub.delivery.sender import DeliveryStatus, RoundReport, send_due
from hub.delivery.settings import DeliverySettings, load_delivery_settings
from hub.delivery.subscriptions import (
    SubscriptionRequest,
    SubscriptionStatus,
    WithSecret,
    create,
    disable,
    list_owned,
    owned,
    pause,
    resume,
    rotate_secret,
)
from hub.delivery.worker import DeliveryWorker, PolicyFollower, guarded_client

__all__ = [
    "DeliveryPage",
    "DeliverySettings",
    "DeliveryStatus",
    "DeliveryWorker",
    "PolicyFollower",
    "RoundReport",
    "SubscriptionRequest",
    "SubscriptionStatus",
    "WithSecret",
    "create",
    "deliveries_of",
    "disable",
    "get_delivery",
    "guarded_client",
    "list_deliveries",
    "list_owned",
    "load_delivery_settings",
    "owned",
    "pause",
    "replay",
    "replay_dead",
    "replay_from",
    "resume",
    "rotate_secret",
    "send_due",
]
