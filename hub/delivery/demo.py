"""The demo's outbound subscription: the distributor acme-distribution's endpoint on
this machine (``hub demo`` prints how to receive and deliver; docs/deliveries.md)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from hub.delivery.settings import DeliverySettings
from hub.delivery.subscriptions import SubscriptionRequest, WithSecret, create
from hub.models import Client, Organization, OrgKind
from hub.oauth.scopes import Scope
from hub.principal import Principal

DEMO_SUBSCRIBER = "acme-distribution"


async def register_demo_subscription(session: AsyncSession, url: str) -> WithSecret:
    """Subscribe the demo distributor (as its client) to its customers' changes at
    ``url``, a loopback address: allowed here only, the demo being local."""
    found = await session.execute(
        select(Client, Organization)
        .join(Organization, col(Organization.id) == col(Client.organization_id))
        .where(col(Organization.slug) == DEMO_SUBSCRIBER)
        .order_by(col(Client.created_at))
    )
    client, org = found.first() or (None, None)
    if client is None or org is None:
        raise LookupError(f"the demo has no {DEMO_SUBSCRIBER} client")
    principal = Principal(
        client_id=client.client_id,
        organization_id=org.id,
        organization_slug=org.slug,
        organization_kind=OrgKind(org.kind),
        scopes=frozenset({*client.scopes, Scope.WEBHOOKS_MANAGE}),
        attributes=dict(org.attributes or {}),
    )
    request = SubscriptionRequest(
        url=url, resources=["Customer", "Feedback"], description="demo: the distributor's CRM"
    )
    return await create(session, principal, request, DeliverySettings(allow_loopback=True))
