"""Webhook mutations: create (the secret shown once), rotate the secret, pause, resume."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from hub import delivery
from hub.delivery.subscriptions import WithSecret
from hub.errors import FieldProblem
from hub.models.delivery import WebhookSubscription as SubscriptionRow
from schema.common import UserError, user_errors
from schema.context import Context
from schema.ids import expect_id
from schema.webhooks.types import (
    ID_TYPE,
    WebhookOperation,
    WebhookResource,
    WebhookSubscription,
)
from schema.writes import run_write


@strawberry.input
class CreateWebhookSubscriptionInput:
    url: str = strawberry.field(
        description="https:// endpoint; its addresses must be public (checked now and at "
        "every delivery)"
    )
    resources: list[WebhookResource]  # type: ignore[valid-type]
    operations: list[WebhookOperation] | None = strawberry.field(  # type: ignore[valid-type]
        default=None, description="Only these operations; all of them when left out"
    )
    description: str = ""


@strawberry.type
class WebhookSecretPayload:
    subscription: WebhookSubscription | None
    secret: str | None = strawberry.field(
        description="The signing secret (whsec_...), shown this once: store it now"
    )
    user_errors: list[UserError]


@strawberry.type
class WebhookSubscriptionPayload:
    subscription: WebhookSubscription | None
    user_errors: list[UserError]


def _not_found() -> list[UserError]:
    return user_errors([FieldProblem(("id",), "no such webhook subscription", "NOT_FOUND")])


def _with_secret(made: WithSecret | None, errors: list[UserError]) -> WebhookSecretPayload:
    if made is None:
        return WebhookSecretPayload(subscription=None, secret=None, user_errors=errors)
    return WebhookSecretPayload(
        subscription=WebhookSubscription.from_row(made.subscription),
        secret=made.secret,
        user_errors=errors,
    )


def _plain(row: SubscriptionRow | None, errors: list[UserError]) -> WebhookSubscriptionPayload:
    return WebhookSubscriptionPayload(
        subscription=None if row is None else WebhookSubscription.from_row(row),
        user_errors=errors,
    )


@strawberry.type
class WebhookMutations:
    @strawberry.mutation(
        description="Register an endpoint for your organization's changes, as your client "
        "sees them. Returns the signing secret once."
    )
    async def create_webhook_subscription(
        self, info: Info[Context, None], input: CreateWebhookSubscriptionInput
    ) -> WebhookSecretPayload:
        ctx = info.context
        request = delivery.SubscriptionRequest(
            url=input.url,
            resources=[str(r.value) for r in input.resources],  # type: ignore[attr-defined]
            operations=[str(o.value) for o in input.operations or ()],  # type: ignore[attr-defined]
            description=input.description,
        )
        settings = delivery.load_delivery_settings()
        made, errors = await run_write(
            ctx,
            lambda s: delivery.create(s, ctx.principal, request, settings),
            not_found_path=("input",),
        )
        return _with_secret(made, errors)

    @strawberry.mutation(
        description="A new signing secret (returned once); the old one keeps signing beside "
        "it for a day, so your receiver can switch without missing a delivery."
    )
    async def rotate_webhook_secret(
        self, info: Info[Context, None], id: strawberry.ID
    ) -> WebhookSecretPayload:
        ctx = info.context
        found = expect_id(str(id), ID_TYPE)
        if found is None:
            return _with_secret(None, _not_found())
        settings = delivery.load_delivery_settings()
        made, errors = await run_write(
            ctx,
            lambda s: delivery.rotate_secret(s, ctx.principal, found, settings),
            not_found_path=("id",),
        )
        return _with_secret(made, errors)

    @strawberry.mutation(description="Stop sending; changes keep being queued until resumed.")
    async def pause_webhook_subscription(
        self, info: Info[Context, None], id: strawberry.ID
    ) -> WebhookSubscriptionPayload:
        ctx = info.context
        found = expect_id(str(id), ID_TYPE)
        if found is None:
            return _plain(None, _not_found())
        row, errors = await run_write(
            ctx, lambda s: delivery.pause(s, ctx.principal, found), not_found_path=("id",)
        )
        return _plain(row, errors)

    @strawberry.mutation(
        description="Send again: what was queued while paused; after a disable, the URL is "
        "checked again and changes from now on are sent."
    )
    async def resume_webhook_subscription(
        self, info: Info[Context, None], id: strawberry.ID
    ) -> WebhookSubscriptionPayload:
        ctx = info.context
        found = expect_id(str(id), ID_TYPE)
        if found is None:
            return _plain(None, _not_found())
        settings = delivery.load_delivery_settings()
        row, errors = await run_write(
            ctx,
            lambda s: delivery.resume(s, ctx.principal, found, settings),
            not_found_path=("id",),
        )
        return _plain(row, errors)
