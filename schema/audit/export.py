"""``GET /admin/exports/disclosures?customer=<id>&format=csv|json``: a customer's
disclosure report as a file (administrators only, bearer token required)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from hub import audit, disclosures
from hub.access import access
from hub.admin import audit as audit_admin
from hub.errors import BadInputError, ForbiddenError
from hub.oauth.bearer import PrincipalUser, unauthorized
from hub.runtime import Runtime
from schema.audit.extension import disclosure_writer
from schema.audit.queries import customer_id_of

MEDIA = {"csv": "text/csv; charset=utf-8", "json": "application/json"}


def _error(status: int, code: str, message: str) -> Response:
    body = {"errors": [{"message": message, "extensions": {"code": code}}]}
    return JSONResponse(body, status_code=status)


async def export_disclosures(request: Request) -> Response:
    user = request.user if "user" in request.scope else None
    if not isinstance(user, PrincipalUser):
        return unauthorized()
    try:
        # Before looking at the parameters: a non-admin learns nothing about them.
        access.require_admin(user.principal)
    except ForbiddenError as error:
        return _error(403, "FORBIDDEN", str(error))
    fmt = request.query_params.get("format", "json")
    if fmt not in MEDIA:
        return _error(400, "BAD_USER_INPUT", "format must be csv or json")
    runtime: Runtime = request.app.state.runtime
    try:
        customer_id = customer_id_of(request.query_params.get("customer", ""))
        async with runtime.database.session() as session:
            views = await audit_admin.customer_disclosures(
                session, user.principal, customer_id, disclosure_writer(request)
            )
    except ForbiddenError as error:
        return _error(403, "FORBIDDEN", str(error))
    except BadInputError as error:
        return _error(400, "BAD_USER_INPUT", str(error))
    body = audit.render(
        [view.as_json() for view in views],
        disclosures.EXPORT_COLUMNS,
        "csv" if fmt == "csv" else "json",
    )
    filename = f"disclosures-{customer_id}.{fmt}"
    return Response(
        body,
        media_type=MEDIA[fmt],
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
        },
    )


routes = [Route("/admin/exports/disclosures", export_disclosures, methods=["GET"])]
