"""Interaction and purchase mutations."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import strawberry
from strawberry.types import Info

from hub import activity
from hub.access import Resource
from schema.activity.types import Direction, Interaction, Purchase
from schema.common import Channel, UserError
from schema.context import Context
from schema.ids import expect_id
from schema.writes import IDEMPOTENCY_KEY, Idempotent, bad_id, run_write


@strawberry.input
class LogInteractionInput:
    customer_id: strawberry.ID
    channel: Channel
    direction: Direction
    summary: str
    occurred_at: datetime | None = None
    idempotency_key: str | None = strawberry.field(default=None, description=IDEMPOTENCY_KEY)


@strawberry.input
class ReportPurchaseInput:
    customer_id: strawberry.ID
    sku: str
    quantity: int
    amount: Decimal
    currency: str = strawberry.field(description="ISO 4217, e.g. EUR")
    purchased_at: datetime | None = None
    idempotency_key: str | None = strawberry.field(default=None, description=IDEMPOTENCY_KEY)


@strawberry.type
class InteractionPayload:
    interaction: Interaction | None
    user_errors: list[UserError]


@strawberry.type
class PurchasePayload:
    purchase: Purchase | None
    user_errors: list[UserError]


@strawberry.type
class ActivityMutations:
    @strawberry.mutation
    async def log_interaction(
        self, info: Info[Context, None], input: LogInteractionInput
    ) -> InteractionPayload:
        ctx = info.context
        customer_id = expect_id(str(input.customer_id), "Customer")
        if customer_id is None:
            return InteractionPayload(interaction=None, user_errors=bad_id(("input", "customerId")))
        data = activity.InteractionInput(
            customer_id=customer_id,
            channel=input.channel.value,
            direction=input.direction.value,
            summary=input.summary,
            occurred_at=input.occurred_at,
        )
        record, errors = await run_write(
            ctx,
            lambda s: activity.log_interaction(s, ctx.principal, data),
            not_found_path=("input", "customerId"),
            idempotency=Idempotent(
                operation="logInteraction",
                key=input.idempotency_key,
                request=data,
                resource=Resource.INTERACTION,
            ),
        )
        return InteractionPayload(
            interaction=None if record is None else Interaction.from_record(record),
            user_errors=errors,
        )

    @strawberry.mutation
    async def report_purchase(
        self, info: Info[Context, None], input: ReportPurchaseInput
    ) -> PurchasePayload:
        ctx = info.context
        customer_id = expect_id(str(input.customer_id), "Customer")
        if customer_id is None:
            return PurchasePayload(purchase=None, user_errors=bad_id(("input", "customerId")))
        data = activity.PurchaseInput(
            customer_id=customer_id,
            sku=input.sku,
            quantity=input.quantity,
            amount=input.amount,
            currency=input.currency,
            purchased_at=input.purchased_at,
        )
        record, errors = await run_write(
            ctx,
            lambda s: activity.report_purchase(s, ctx.principal, data),
            not_found_path=("input", "customerId"),
            idempotency=Idempotent(
                operation="reportPurchase",
                key=input.idempotency_key,
                request=data,
                resource=Resource.PURCHASE,
            ),
        )
        return PurchasePayload(
            purchase=None if record is None else Purchase.from_record(record), user_errors=errors
        )
