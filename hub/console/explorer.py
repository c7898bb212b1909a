"""The GraphQL explorer: GraphiQL (vendored) on the signed-in session, with a "view as
organization" switch.

Queries go to ``POST /console/explorer/graphql?as=<slug>``, which checks the session,
role and CSRF token like every console action, refuses anything but queries (the explorer
is read-only), and runs the operation on the hub's own GraphQL endpoint (handed in by
``app.py``) as a stand-in caller of that organization holding the read scopes, so the
schema, the errors and the data are exactly what that organization's clients get. Without
``as`` the query runs as the signed-in user. Each query (introspection aside) is audited
as the staff user (``console.explore``, with the organization and the query's SHA-256);
partner reads it makes are recorded in the read audit under the client
``console:<email>``.
"""

from __future__ import annotations

import hashlib
from typing import Any

import httpx
import orjson
from graphql import GraphQLError, OperationDefinitionNode, OperationType, parse
from sqlmodel import col, select
from starlette.authentication import AuthCredentials
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from hub import audit
from hub.console.auth import Ctx, page
from hub.console.roles import Permission
from hub.models import Organization, OrgKind
from hub.oauth.bearer import PrincipalUser
from hub.oauth.scopes import Scope as OAuthScope
from hub.principal import Principal

READ_SCOPES = frozenset({OAuthScope.CUSTOMERS_READ.value, OAuthScope.FEEDBACK_READ.value})
MAX_QUERY_BYTES = 100_000


def _error(message: str, status: int = 400, code: str = "BAD_USER_INPUT") -> Response:
    body = {"errors": [{"message": message, "extensions": {"code": code}}]}
    return JSONResponse(body, status_code=status)


def read_only_problem(query: str, operation_name: str | None) -> str | None:
    """Why the document may not run in the explorer, or None (queries only)."""
    try:
        document = parse(query)
    except GraphQLError:
        return None  # the endpoint reports syntax errors itself
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name:
        operations = [o for o in operations if o.name and o.name.value == operation_name]
    if any(o.operation is not OperationType.QUERY for o in operations):
        return "the explorer is read-only: mutations and subscriptions are not run"
    return None


def _introspection_only(query: str) -> bool:
    try:
        document = parse(query)
    except GraphQLError:
        return False
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode):
            for selection in definition.selection_set.selections:
                name = getattr(getattr(selection, "name", None), "value", "")
                if not name.startswith("__"):
                    return False
    return True


def _stand_in(org: Organization, email: str) -> Principal:
    return Principal(
        client_id=f"console:{email}",
        organization_id=org.id,
        organization_slug=org.slug,
        organization_kind=OrgKind(org.kind),
        scopes=READ_SCOPES,
        attributes=dict(org.attributes or {}),
    )


class _AsCaller:
    """The GraphQL endpoint with the caller already authenticated (as the middleware
    would have left it)."""

    def __init__(self, endpoint: ASGIApp, app: Any, principal: Principal) -> None:
        self.endpoint, self.app, self.principal = endpoint, app, principal

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope = {
            **scope,
            "app": self.app,
            "user": PrincipalUser(self.principal),
            "auth": AuthCredentials(sorted(self.principal.scopes)),
        }
        await self.endpoint(scope, receive, send)


def routes(graphql: ASGIApp) -> list[Route]:
    @page(Permission.EXPLORE)
    async def explorer(ctx: Ctx) -> Response:
        async with ctx.runtime.database.session() as session:
            statement = select(Organization).order_by(col(Organization.slug))
            orgs = list((await session.execute(statement)).scalars())
        return ctx.page("explorer.html", orgs=orgs, selected=ctx.request.query_params.get("as"))

    @page(Permission.EXPLORE)
    async def run(ctx: Ctx) -> Response:
        request = ctx.request
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            return _error("send the operation as application/json", 415)
        # Counted while it streams in: reading it all first held any size in memory.
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_QUERY_BYTES:
                return _error(f"the request is over {MAX_QUERY_BYTES} bytes", 413)
            chunks.append(chunk)
        body = b"".join(chunks)
        try:
            params = orjson.loads(body)
        except orjson.JSONDecodeError:
            return _error("the body is not JSON")
        if not isinstance(params, dict) or not isinstance(params.get("query"), str):
            return _error("query must be a string")
        name = params.get("operationName")
        problem = read_only_problem(params["query"], name if isinstance(name, str) else None)
        if problem is not None:
            return _error(problem, 400, "FORBIDDEN")
        slug = request.query_params.get("as") or ""
        principal = ctx.staff.principal
        async with ctx.runtime.database.transaction() as session:
            if slug:
                org = (
                    await session.execute(
                        select(Organization).where(col(Organization.slug) == slug)
                    )
                ).scalar_one_or_none()
                if org is None:
                    return _error(f"no organization {slug!r}", 404, "NOT_FOUND")
                principal = _stand_in(org, ctx.staff.email)
            if not _introspection_only(params["query"]):
                digest = hashlib.sha256(params["query"].encode()).hexdigest()
                details = {
                    "as": slug or None,
                    "operation": name if isinstance(name, str) else None,
                    "query_sha256": digest,
                }
                target = f"organization:{slug or principal.organization_slug}"
                await audit.record(session, ctx.staff.principal, "console.explore", target, details)
        transport = httpx.ASGITransport(app=_AsCaller(graphql, request.app, principal))
        async with httpx.AsyncClient(transport=transport, base_url=str(request.base_url)) as http:
            answer = await http.post(
                "/graphql",
                content=body,
                headers={
                    "content-type": "application/json",
                    "accept": "application/graphql-response+json, application/json",
                },
            )
        return Response(
            answer.content,
            status_code=answer.status_code,
            media_type=answer.headers.get("content-type", "application/json"),
        )

    return [
        Route("/explorer", explorer),
        Route("/explorer/graphql", run, methods=["POST"]),
    ]
