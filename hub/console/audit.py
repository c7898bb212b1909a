"""The audit log: search events, a customer's disclosure report (who received which
fields, when, under which policy version) with its CSV export, and the chain's
verification (:mod:`hub.admin.audit`, :mod:`hub.audit_verify`)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from starlette.responses import Response
from starlette.routing import Route

from hub import audit, audit_anchor, disclosures
from hub.access import access
from hub.admin import audit as audit_admin
from hub.audit_verify import verify_log
from hub.console.auth import Ctx, page
from hub.console.roles import Permission
from hub.errors import BadInputError

PAGE = 50


def _writer(ctx: Ctx) -> disclosures.DisclosureWriter | None:
    writer = getattr(ctx.request.app.state, "disclosures", None)
    return writer if isinstance(writer, disclosures.DisclosureWriter) else None


def _day(value: str, field: str, problems: list[str]) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    except ValueError:
        problems.append(f"{field}: a date such as 2026-01-31")
        return None


@page(Permission.ADMINISTER)
async def events(ctx: Ctx) -> Response:
    params = ctx.request.query_params
    problems: list[str] = []
    flt = audit.AuditFilter(
        action=params.get("action") or None,
        organization=params.get("organization") or None,
        target=params.get("target") or None,
        since=_day(params.get("since", ""), "since", problems),
        until=_day(params.get("until", ""), "until", problems),
    )
    found: Any = None
    total = 0
    if not problems:
        try:
            async with ctx.runtime.database.session() as session:
                found = await audit_admin.audit_events(
                    session,
                    ctx.staff.principal,
                    flt,
                    first=PAGE,
                    after=params.get("after") or None,
                    default_size=PAGE,
                    max_size=PAGE,
                    writer=_writer(ctx),
                )
                total = await audit_admin.count_audit_events(session, ctx.staff.principal, flt)
        except BadInputError as error:
            problems.append(str(error))
    return ctx.page(
        "audit.html",
        params=params,
        events=found.items if found else [],
        next_cursor=found.cursor(len(found.items) - 1) if found and found.has_next else None,
        total=total,
        problems=problems,
    )


def _customer(ctx: Ctx) -> uuid.UUID | None:
    try:
        return uuid.UUID(ctx.request.query_params.get("customer", "").strip())
    except ValueError:
        return None


@page(Permission.ADMINISTER)
async def report(ctx: Ctx) -> Response:
    customer_id = _customer(ctx)
    views: list[disclosures.DisclosureView] = []
    if customer_id is not None:
        async with ctx.runtime.database.session() as session:
            views = await audit_admin.customer_disclosures(
                session, ctx.staff.principal, customer_id, _writer(ctx)
            )
    given = ctx.request.query_params.get("customer", "")
    return ctx.page(
        "disclosures.html",
        customer=customer_id,
        given=given,
        invalid=bool(given) and customer_id is None,
        views=views,
    )


@page(Permission.ADMINISTER)
async def report_csv(ctx: Ctx) -> Response:
    customer_id = _customer(ctx)
    if customer_id is None:
        return Response("customer: give a customer id\n", status_code=400, media_type="text/plain")
    async with ctx.runtime.database.session() as session:
        views = await audit_admin.customer_disclosures(
            session, ctx.staff.principal, customer_id, _writer(ctx)
        )
    body = audit.render([v.as_json() for v in views], disclosures.EXPORT_COLUMNS, "csv")
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={
            "content-disposition": f'attachment; filename="disclosures-{customer_id}.csv"',
            "cache-control": "no-store",
        },
    )


@page(Permission.ADMINISTER)
async def verify(ctx: Ctx) -> Response:
    """Walk the chain and check its head against the anchor (on request: it reads the
    whole log)."""
    access.require_admin(ctx.staff.principal)
    key = audit_anchor.key_for(ctx.runtime.settings.master_key)
    async with ctx.runtime.database.session() as session:
        verdict = await verify_log(session, key)
    return ctx.page("audit_verify.html", verdict=verdict)


routes = [
    Route("/audit", events),
    Route("/audit/disclosures", report),
    Route("/audit/disclosures.csv", report_csv),
    Route("/audit/verify", verify),
]
