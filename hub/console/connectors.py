"""Connectors: status and run history, run now, dead letters with the raw record and the
reason, replay; outbound webhook subscriptions and their deliveries (replay).

The work is :mod:`hub.sync.admin`, :mod:`hub.sync.replay`, :mod:`hub.delivery.admin` and
the server's background workers (:class:`hub.workers.ServerWorkers`, for runs started
now); each checks ``hub:admin`` and audits.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from sqlmodel import col, select
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from hub.access import access
from hub.console.actions import attempt, message_of
from hub.console.auth import Ctx, page
from hub.console.roles import Permission
from hub.delivery import admin as deliveries
from hub.errors import HubError
from hub.models import Organization
from hub.models.delivery import WebhookSubscription
from hub.sync import admin as sync_admin
from hub.sync.replay import replay_dead_letter
from hub.workers import ServerWorkers


@page(Permission.ADMINISTER)
async def index(ctx: Ctx) -> Response:
    async with ctx.runtime.database.session() as session:
        rows = await sync_admin.list_connectors(session, ctx.staff.principal)
    return ctx.page("connectors.html", connectors=rows)


async def _detail(ctx: Ctx, name: str, *, status: int = 200, error: str | None = None) -> Response:
    principal = ctx.staff.principal
    try:
        async with ctx.runtime.database.session() as session:
            connector = await sync_admin.get_connector(session, principal, name)
            runs = await sync_admin.runs_page(session, principal, name, first=20, after=None)
            letters = await sync_admin.dead_letters_page(
                session, principal, name, first=50, after=None
            )
    except HubError as problem:
        return ctx.page("policies_missing.html", 404, message=message_of(problem))
    return ctx.page(
        "connector.html",
        status,
        connector=connector,
        runs=runs.items,
        letters=letters.items,
        pretty=lambda value: json.dumps(sync_admin.redact(value), indent=2, default=str),
        error=error,
        done=ctx.request.query_params.get("done"),
    )


@page(Permission.ADMINISTER)
async def detail(ctx: Ctx) -> Response:
    return await _detail(ctx, ctx.request.path_params["name"])


@page(Permission.ADMINISTER)
async def run_now(ctx: Ctx) -> Response:
    name = ctx.request.path_params["name"]
    workers = getattr(ctx.request.app.state, "workers", None)
    if not isinstance(workers, ServerWorkers):
        return await _detail(ctx, name, status=503, error="this server runs no background work")
    try:
        run = await workers.request_run(ctx.staff.principal, name)
    except HubError as error:
        return await _detail(ctx, name, status=422, error=message_of(error))
    done = "started" if run is None else f"run-{run.status}"
    return RedirectResponse(f"/console/connectors/{name}?done={done}", status_code=303)


@page(Permission.ADMINISTER)
async def replay(ctx: Ctx) -> Response:
    name = ctx.request.path_params["name"]
    try:
        letter_id = uuid.UUID(ctx.request.path_params["letter_id"])
    except ValueError:
        return await _detail(ctx, name, status=404, error="no such dead letter")
    runtime = ctx.runtime
    replayed, problem = await attempt(
        ctx,
        lambda s: replay_dead_letter(
            s,
            ctx.staff.principal,
            letter_id,
            database=runtime.database,
            master_key=runtime.settings.master_key,
        ),
    )
    if replayed is None:
        return await _detail(ctx, name, status=422, error=problem)
    outcome = replayed.outcome.value.replace("_", "-")
    return RedirectResponse(f"/console/connectors/{name}?done=replayed-{outcome}", status_code=303)


@page(Permission.ADMINISTER)
async def outbound(ctx: Ctx) -> Response:
    return await _outbound(ctx)


async def _outbound(ctx: Ctx, *, status: int = 200, error: str | None = None) -> Response:
    principal = ctx.staff.principal
    access.require_admin(principal)
    async with ctx.runtime.database.session() as session:
        subscriptions: list[Any] = list(
            (
                await session.execute(
                    select(WebhookSubscription, col(Organization.slug))
                    .join(Organization, col(Organization.id) == WebhookSubscription.organization_id)
                    .order_by(col(Organization.slug), col(WebhookSubscription.created_at))
                )
            ).all()
        )
        recent = await deliveries.deliveries_page(session, principal, first=50)
    return ctx.page(
        "deliveries.html",
        status,
        subscriptions=subscriptions,
        deliveries=recent.items,
        error=error,
        done=ctx.request.query_params.get("done"),
    )


@page(Permission.ADMINISTER)
async def replay_delivery(ctx: Ctx) -> Response:
    reference = ctx.request.path_params["delivery_id"]
    _, problem = await attempt(
        ctx, lambda s: deliveries.replay_delivery(s, ctx.staff.principal, reference)
    )
    if problem is not None:
        return await _outbound(ctx, status=422, error=problem)
    return RedirectResponse("/console/deliveries?done=queued", status_code=303)


routes = [
    Route("/connectors", index),
    Route("/connectors/{name}", detail),
    Route("/connectors/{name}/run", run_now, methods=["POST"]),
    Route("/connectors/{name}/dead-letters/{letter_id}/replay", replay, methods=["POST"]),
    Route("/deliveries", outbound),
    Route("/deliveries/{delivery_id}/replay", replay_delivery, methods=["POST"]),
]
