"""Policy pages: versions, source, diffs, the draft editor (validation at line and
column, impact preview), publish, rollback, and "view as".

Everything is :mod:`hub.sharing` (the policy lifecycle) and :mod:`hub.console.viewas`;
this module parses form input and renders. Publishing and rolling back are audited by
:mod:`hub.sharing` with the staff user as author, and put the new version in force on this
replica at once (others follow within ``HUB_POLICY_REFRESH_INTERVAL``).
"""

from __future__ import annotations

import uuid

from sqlmodel import col, select
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from hub import sharing
from hub.access.resources import Resource
from hub.console.auth import Ctx, page
from hub.console.roles import Permission
from hub.console.viewas import RESOURCES, record_choices, view_as
from hub.errors import ConflictError, NotFoundError
from hub.models import Organization

MAX_SOURCE = 512 * 1024


def author(ctx: Ctx) -> str:
    """``organization/console:email``: the organization and the person, for the audit log."""
    return f"{ctx.staff.principal.organization_slug}/console:{ctx.staff.email}"


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None and value.strip() else None
    except ValueError:
        return None


def _number(ctx: Ctx) -> int:
    """The ``{number}`` of a version's URL; -1 (no version) for anything else. The route
    takes it as text: Starlette's ``int`` convertor raised (a 500) on more than 4,300
    digits, before any handler could say "no such version"."""
    number = _int(ctx.request.path_params["number"])
    return -1 if number is None else number


def _format(source: str) -> sharing.Format:
    return sharing.source_format("", source)


@page(Permission.READ_POLICIES)
async def versions(ctx: Ctx) -> Response:
    async with ctx.runtime.database.session() as session:
        rows = await sharing.list_versions(session)
    params = ctx.request.query_params
    return ctx.page(
        "policies.html",
        versions=rows,
        published=_int(params.get("published")),
        rolled_back=_int(params.get("rolled_back")),
    )


@page(Permission.READ_POLICIES)
async def version(ctx: Ctx) -> Response:
    number = _number(ctx)
    async with ctx.runtime.database.session() as session:
        try:
            found = await sharing.get_version(session, number)
        except NotFoundError as error:
            return ctx.page("policies_missing.html", 404, message=str(error))
        current = await sharing.current_number(session)
    return ctx.page("policy_version.html", version=found, current=current)


@page(Permission.READ_POLICIES)
async def diff(ctx: Ctx) -> Response:
    params = ctx.request.query_params
    old, new = _int(params.get("old")), _int(params.get("new"))
    async with ctx.runtime.database.session() as session:
        numbers = [v.number for v in await sharing.list_versions(session)]
        if old is None or new is None:
            new = numbers[0] if numbers else 0
            old = numbers[1] if len(numbers) > 1 else new
        try:
            result = await sharing.diff_versions(session, old, new)
        except NotFoundError as error:
            return ctx.page("policies_missing.html", 404, message=str(error))
    return ctx.page("policy_diff.html", diff=result, numbers=numbers)


@page(Permission.EDIT_POLICIES)
async def draft(ctx: Ctx) -> Response:
    """The editor, holding a version's source (``?from=N``; the version in force by
    default): the draft lives in the page until it is published."""
    start = _int(ctx.request.query_params.get("from"))
    async with ctx.runtime.database.session() as session:
        current = await sharing.current_version(session)
        base = current
        if start is not None:
            try:
                base = await sharing.get_version(session, start)
            except NotFoundError as error:
                return ctx.page("policies_missing.html", 404, message=str(error))
    source = base.source if base is not None else sharing.default_source()
    return ctx.page(
        "policy_draft.html",
        source=source,
        expected=current.number if current else 0,
        base=base.number if base else None,
        problems=[],
        checked=False,
        reason="",
    )


def _source(ctx: Ctx) -> tuple[str, list[sharing.Problem]]:
    source = ctx.form.get("source")
    if len(source.encode()) > MAX_SOURCE:
        return source, [sharing.Problem("input", f"the draft is over {MAX_SOURCE} bytes")]
    if not source.strip():
        return source, [sharing.Problem("input", "the draft is empty")]
    return source, []


@page(Permission.EDIT_POLICIES)
async def validate(ctx: Ctx) -> Response:
    """htmx: the draft's problems (syntax, validation, guardrails, expectations) and
    warnings, each at its line and column."""
    source, problems = _source(ctx)
    if not problems:
        document, problems = sharing.check_source(source, _format(source))
        if document is not None:
            async with ctx.runtime.database.session() as session:
                problems = await sharing.publish_problems(session, document)
                problems += await sharing.unknown_organizations(session, document)
    return ctx.page("_problems.html", problems=problems, checked=True)


@page(Permission.EDIT_POLICIES)
async def preview(ctx: Ctx) -> Response:
    """htmx: per organization, the fields and rows gained or lost if the draft were
    published now (:func:`hub.sharing.preview` on the current data)."""
    source, problems = _source(ctx)
    impacts: list[sharing.OrganizationImpact] = []
    if not problems:
        async with ctx.runtime.database.session() as session:
            problems, impacts = await sharing.preview(
                session, source, _format(source), ctx.runtime.settings.master_key
            )
    changed = [i for i in impacts if any(r.changed for r in i.resources)]
    return ctx.page(
        "_impact.html", problems=problems, impacts=impacts, changed=changed, checked=True
    )


@page(Permission.EDIT_POLICIES)
async def publish(ctx: Ctx) -> Response:
    source, problems = _source(ctx)
    reason = ctx.form.get("reason").strip()
    expected = _int(ctx.form.get("expected_version"))
    if not reason:
        problems.append(sharing.Problem("input", "give a reason for publishing"))
    if not problems:
        try:
            async with ctx.runtime.database.transaction() as session:
                published = await sharing.publish(
                    session,
                    source,
                    author=author(ctx),
                    reason=reason,
                    fmt=_format(source),
                    expected_current=expected,
                )
                number = published.number
        except sharing.PolicyRejectedError as error:
            problems = error.problems
        except ConflictError as error:
            problems = [sharing.Problem("conflict", str(error))]
        else:
            await ctx.runtime.reload_policy()
            return RedirectResponse(f"/console/policies?published={number}", status_code=303)
    return ctx.page(
        "policy_draft.html",
        422,
        source=source,
        expected=expected or 0,
        base=None,
        problems=problems,
        checked=True,
        reason=reason,
    )


@page(Permission.EDIT_POLICIES)
async def rollback(ctx: Ctx) -> Response:
    number = _number(ctx)
    reason = ctx.form.get("reason").strip()
    message: str | None = None
    if not reason:
        message = "Give a reason for the rollback."
    else:
        try:
            async with ctx.runtime.database.transaction() as session:
                restored = await sharing.rollback(
                    session, number, author=author(ctx), reason=reason
                )
                new = restored.number
        except sharing.PolicyRejectedError as error:
            message = f"{error}: {sharing.describe(error.problems)}"
        except NotFoundError as error:
            message = str(error)
        else:
            await ctx.runtime.reload_policy()
            return RedirectResponse(f"/console/policies?rolled_back={new}", status_code=303)
    async with ctx.runtime.database.session() as session:
        rows = await sharing.list_versions(session)
    return ctx.page("policies.html", 422, versions=rows, error=message)


@page(Permission.EDIT_POLICIES)
async def view_as_page(ctx: Ctx) -> Response:
    params = ctx.request.query_params
    resource_name = params.get("resource") or Resource.CUSTOMER.value
    resource = next((r for r in RESOURCES if r.value == resource_name), Resource.CUSTOMER)
    org_slug = params.get("org") or ""
    record = (params.get("record_id") or params.get("id") or "").strip()
    search = params.get("q") or ""
    result = None
    message = None
    async with ctx.runtime.database.session() as session:
        statement = select(Organization).order_by(col(Organization.slug))
        orgs = list((await session.execute(statement)).scalars())
        choices = await record_choices(session, resource, search)
        if org_slug and record:
            try:
                result = await view_as(session, org_slug, resource, uuid.UUID(record))
            except ValueError:
                message = "That record id is not a UUID."
            except NotFoundError as error:
                message = str(error)
    return ctx.page(
        "view_as.html",
        orgs=orgs,
        resources=[r.value for r in RESOURCES],
        resource=resource.value,
        org=org_slug,
        record=record,
        choices=choices,
        search=search,
        result=result,
        message=message,
    )


routes = [
    Route("/policies", versions),
    Route("/policies/versions/{number}", version),
    Route("/policies/versions/{number}/rollback", rollback, methods=["POST"]),
    Route("/policies/diff", diff),
    Route("/policies/draft", draft),
    Route("/policies/draft/validate", validate, methods=["POST"]),
    Route("/policies/draft/preview", preview, methods=["POST"]),
    Route("/policies/draft/publish", publish, methods=["POST"]),
    Route("/policies/view-as", view_as_page),
]
