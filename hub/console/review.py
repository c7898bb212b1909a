"""The review queue: proposed changes to approve or reject, and duplicate candidates to
merge (:mod:`hub.review`, :mod:`hub.identity`; both check ``hub:admin`` and audit)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlmodel import col, select
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from hub import review as queue
from hub.console.actions import attempt
from hub.console.auth import Ctx, page
from hub.console.roles import Permission
from hub.identity import duplicate_candidates, merge_customers
from hub.models import Customer


async def _render(ctx: Ctx, *, status: int = 200, error: str | None = None) -> Response:
    principal = ctx.staff.principal
    async with ctx.runtime.database.session() as session:
        proposals = await queue.list_proposals(session, principal, status="pending", limit=200)
        groups = await duplicate_candidates(session, principal, limit=50)
        ids = {p.customer_id for p in proposals} | {i for g in groups for i in g.customer_ids}
        rows = await session.execute(select(Customer).where(col(Customer.id).in_(ids)))
        customers: dict[uuid.UUID, Any] = {c.id: c for c in rows.scalars()}
    return ctx.page(
        "review.html",
        status,
        proposals=proposals,
        groups=groups,
        customers=customers,
        error=error,
        done=ctx.request.query_params.get("done"),
    )


@page(Permission.ADMINISTER)
async def index(ctx: Ctx) -> Response:
    return await _render(ctx)


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


@page(Permission.ADMINISTER)
async def decide(ctx: Ctx) -> Response:
    change_id = _uuid(ctx.request.path_params["change_id"])
    decision = ctx.form.get("decision")
    reason = ctx.form.get("reason").strip() or None
    if change_id is None or decision not in ("approve", "reject"):
        return await _render(ctx, status=422, error="choose approve or reject for a change")
    act = queue.approve_change if decision == "approve" else queue.reject_change
    _, problem = await attempt(ctx, lambda s: act(s, ctx.staff.principal, change_id, reason))
    if problem is not None:
        return await _render(ctx, status=422, error=problem)
    done = "approved" if decision == "approve" else "rejected"
    return RedirectResponse(f"/console/review?done={done}", status_code=303)


@page(Permission.ADMINISTER)
async def merge(ctx: Ctx) -> Response:
    survivor = _uuid(ctx.form.get("survivor"))
    duplicate = _uuid(ctx.form.get("duplicate"))
    if survivor is None or duplicate is None:
        return await _render(ctx, status=422, error="choose the customer to keep and the other")
    _, problem = await attempt(
        ctx, lambda s: merge_customers(s, ctx.staff.principal, survivor, duplicate)
    )
    if problem is not None:
        return await _render(ctx, status=422, error=problem)
    return RedirectResponse("/console/review?done=merged", status_code=303)


routes = [
    Route("/review", index),
    Route("/review/changes/{change_id}", decide, methods=["POST"]),
    Route("/review/merge", merge, methods=["POST"]),
]
