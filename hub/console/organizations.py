"""Organizations and their OAuth clients: create, edit attributes, disable; register
clients with a secret or a JWKS (the secret shown once, on the answer to the request that
made it, never again), rotate, disable; assign partners to customers.

All of it is :mod:`hub.admin` and :mod:`hub.assignments`, which check ``hub:admin`` again
and audit every change with the staff user as the actor.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from hub import admin, assignments
from hub.console.actions import attempt
from hub.console.auth import Ctx, page
from hub.console.roles import Permission
from hub.models import OrgKind
from hub.oauth.scopes import ALL_SCOPES

KINDS = [kind.value for kind in OrgKind]


def _json(text: str, what: str) -> tuple[Any, str | None]:
    if not text.strip():
        return None, None
    try:
        return json.loads(text), None
    except json.JSONDecodeError as error:
        return None, f"{what} is not JSON: {error.msg} at line {error.lineno}, column {error.colno}"
    # The standard parser recurses once per nesting level and refuses integers past
    # 4,300 digits with these two (not JSONDecodeError): they were 500s.
    except RecursionError:
        return None, f"{what} is nested too deeply"
    except ValueError:
        return None, f"{what} holds a number too long to read"


@page(Permission.ADMINISTER)
async def index(ctx: Ctx) -> Response:
    async with ctx.runtime.database.session() as session:
        orgs = await admin.list_organizations(session, ctx.staff.principal)
    return ctx.page(
        "organizations.html",
        orgs=orgs,
        kinds=KINDS,
        error=None,
        form=ctx.form,
        done=ctx.request.query_params.get("done"),
    )


@page(Permission.ADMINISTER)
async def create(ctx: Ctx) -> Response:
    attributes, problem = _json(ctx.form.get("attributes"), "attributes")
    if problem is None:
        fields = admin.OrganizationFields(
            slug=ctx.form.get("slug").strip(),
            name=ctx.form.get("name").strip(),
            kind=ctx.form.get("kind"),
            attributes=attributes,
        )
        created, problem = await attempt(
            ctx, lambda s: admin.create_organization(s, ctx.staff.principal, fields)
        )
        if created is not None:
            return RedirectResponse(f"/console/organizations/{created.slug}", status_code=303)
    return await _index_with_error(ctx, problem or "")


async def _index_with_error(ctx: Ctx, message: str) -> Response:
    async with ctx.runtime.database.session() as session:
        orgs = await admin.list_organizations(session, ctx.staff.principal)
    return ctx.page(
        "organizations.html", 422, orgs=orgs, kinds=KINDS, error=message, form=ctx.form, done=None
    )


async def _detail(
    ctx: Ctx,
    slug: str,
    *,
    status: int = 200,
    error: str | None = None,
    secret: admin.RegisteredClient | None = None,
    done: str | None = None,
) -> Response:
    principal = ctx.staff.principal
    async with ctx.runtime.database.session() as session:
        orgs = {o.slug: o for o in await admin.list_organizations(session, principal)}
        org = orgs.get(slug)
        if org is None:
            return ctx.page("policies_missing.html", 404, message="no such organization")
        clients = await admin.list_clients(session, principal, slug)
    return ctx.page(
        "organization.html",
        status,
        org=org,
        attributes=json.dumps(org.attributes, indent=2, sort_keys=True),
        clients=clients,
        scopes=sorted(ALL_SCOPES),
        error=error,
        secret=secret,
        done=done or ctx.request.query_params.get("done"),
        partner=OrgKind(org.kind).is_partner,
    )


@page(Permission.ADMINISTER)
async def detail(ctx: Ctx) -> Response:
    return await _detail(ctx, ctx.request.path_params["slug"])


@page(Permission.ADMINISTER)
async def update(ctx: Ctx) -> Response:
    slug = ctx.request.path_params["slug"]
    attributes, problem = _json(ctx.form.get("attributes") or "{}", "attributes")
    if problem is None:
        patch = admin.OrganizationFields(name=ctx.form.get("name"), attributes=attributes)
        _, problem = await attempt(
            ctx, lambda s: admin.update_organization(s, ctx.staff.principal, slug, patch)
        )
    if problem is not None:
        return await _detail(ctx, slug, status=422, error=problem)
    return RedirectResponse(f"/console/organizations/{slug}?done=saved", status_code=303)


@page(Permission.ADMINISTER)
async def disable(ctx: Ctx) -> Response:
    slug = ctx.request.path_params["slug"]
    _, problem = await attempt(
        ctx, lambda s: admin.disable_organization(s, ctx.staff.principal, slug)
    )
    if problem is not None:
        return await _detail(ctx, slug, status=422, error=problem)
    return RedirectResponse(f"/console/organizations/{slug}?done=disabled", status_code=303)


@page(Permission.ADMINISTER)
async def register(ctx: Ctx) -> Response:
    slug = ctx.request.path_params["slug"]
    jwks, problem = _json(ctx.form.get("jwks"), "the JWKS")
    if problem is None:
        fields = admin.RegisterFields(
            organization=slug,
            name=ctx.form.get("name"),
            scopes=ctx.form.getlist("scopes"),
            jwks=jwks,
        )
        registered, problem = await attempt(
            ctx, lambda s: admin.register_client(s, ctx.staff.principal, fields)
        )
        if registered is not None:
            # The secret is in this answer only (no-store); reloading does not show it.
            return await _detail(ctx, slug, secret=registered, done="registered")
    return await _detail(ctx, slug, status=422, error=problem)


@page(Permission.ADMINISTER)
async def rotate(ctx: Ctx) -> Response:
    slug = ctx.request.path_params["slug"]
    client_id = ctx.request.path_params["client_id"]
    try:
        overlap = int(ctx.form.get("overlap") or "0")
    except ValueError:
        return await _detail(ctx, slug, status=422, error="overlap: a number of seconds")
    rotated, problem = await attempt(
        ctx, lambda s: admin.rotate_client_secret(s, ctx.staff.principal, client_id, overlap)
    )
    if rotated is None:
        return await _detail(ctx, slug, status=422, error=problem)
    return await _detail(ctx, slug, secret=rotated, done="rotated")


@page(Permission.ADMINISTER)
async def disable_client(ctx: Ctx) -> Response:
    slug = ctx.request.path_params["slug"]
    client_id = ctx.request.path_params["client_id"]
    _, problem = await attempt(
        ctx, lambda s: admin.disable_client(s, ctx.staff.principal, client_id)
    )
    if problem is not None:
        return await _detail(ctx, slug, status=422, error=problem)
    return RedirectResponse(f"/console/organizations/{slug}?done=client-disabled", status_code=303)


@page(Permission.ADMINISTER)
async def assign(ctx: Ctx) -> Response:
    """Assign a partner to a customer (by the customer's id)."""
    slug = ctx.request.path_params["slug"]
    role = ctx.form.get("role").strip() or "reseller"
    try:
        customer_id = uuid.UUID(ctx.form.get("customer_id").strip())
    except ValueError:
        return await _detail(ctx, slug, status=422, error="customer: give the customer's id")

    async def work(session: AsyncSession) -> object:
        return await assignments.assign_partner(
            session, ctx.staff.principal, customer_id, slug, role
        )

    _, problem = await attempt(ctx, work)
    if problem is not None:
        return await _detail(ctx, slug, status=422, error=problem)
    return RedirectResponse(f"/console/organizations/{slug}?done=assigned", status_code=303)


routes = [
    Route("/organizations", index),
    Route("/organizations", create, methods=["POST"]),
    Route("/organizations/{slug}", detail),
    Route("/organizations/{slug}", update, methods=["POST"]),
    Route("/organizations/{slug}/disable", disable, methods=["POST"]),
    Route("/organizations/{slug}/clients", register, methods=["POST"]),
    Route("/organizations/{slug}/clients/{client_id}/rotate", rotate, methods=["POST"]),
    Route("/organizations/{slug}/clients/{client_id}/disable", disable_client, methods=["POST"]),
    Route("/organizations/{slug}/assignments", assign, methods=["POST"]),
]
