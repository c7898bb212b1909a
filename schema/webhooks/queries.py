"""Webhook queries: the caller's organization's subscriptions and their deliveries."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from hub import delivery
from hub.errors import BadInputError, NotFoundError
from schema.common import PageInfo
from schema.context import Context
from schema.ids import expect_id
from schema.webhooks.types import (
    ID_TYPE,
    WebhookDelivery,
    WebhookDeliveryPage,
    WebhookDeliveryStatus,
    WebhookSubscription,
)


def _cursor(after: str | None) -> int | None:
    if after is None:
        return None
    if not after.isdigit() or len(after) > 19:
        raise BadInputError("after: not a cursor of this list")
    return int(after)


@strawberry.type
class WebhookQueries:
    @strawberry.field(description="Your organization's webhook subscriptions, oldest first.")
    async def webhook_subscriptions(self, info: Info[Context, None]) -> list[WebhookSubscription]:
        ctx = info.context
        async with ctx.database.session() as session:
            rows = await delivery.list_owned(session, ctx.principal)
        return [WebhookSubscription.from_row(row) for row in rows]

    @strawberry.field(description="One of your subscriptions; null when unknown or not yours.")
    async def webhook_subscription(
        self, info: Info[Context, None], id: strawberry.ID
    ) -> WebhookSubscription | None:
        ctx = info.context
        found = expect_id(str(id), ID_TYPE)
        if found is None:
            return None
        async with ctx.database.session() as session:
            try:
                row = await delivery.owned(session, ctx.principal, found)
            except NotFoundError:
                return None
        return WebhookSubscription.from_row(row)

    @strawberry.field(
        description="Deliveries of one of your subscriptions, newest first; `after` is the "
        "previous page's endCursor. Null when the subscription is unknown or not yours."
    )
    async def webhook_deliveries(
        self,
        info: Info[Context, None],
        subscription_id: strawberry.ID,
        first: int = 50,
        after: str | None = None,
        status: WebhookDeliveryStatus | None = None,
    ) -> WebhookDeliveryPage | None:
        ctx = info.context
        found = expect_id(str(subscription_id), ID_TYPE)
        if found is None:
            return None
        wanted = None if status is None else delivery.DeliveryStatus(status.value)
        async with ctx.database.session() as session:
            try:
                page = await delivery.deliveries_of(
                    session, ctx.principal, found, status=wanted, first=first, before=_cursor(after)
                )
            except NotFoundError:
                return None
        end = str(page.rows[-1].position) if page.rows else None
        return WebhookDeliveryPage(
            nodes=[WebhookDelivery.from_row(row) for row in page.rows],
            page_info=PageInfo(
                has_next_page=page.has_next,
                has_previous_page=after is not None,
                start_cursor=str(page.rows[0].position) if page.rows else None,
                end_cursor=end,
            ),
        )
