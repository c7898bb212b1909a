"""Every console endpoint is wrapped by :func:`page`: it opens the session cookie,
refreshes the staff token when it is about to expire, authenticates it exactly as the API
does (:func:`hub.oauth.bearer.authenticate_token`: signature, revocation, disabled user or
client), checks the role's permission, and on POST the CSRF token (form field ``csrf`` or
header ``X-CSRF-Token``, which the console's script adds to htmx requests) before the
handler runs.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from starlette.authentication import AuthenticationError
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

import hub.console.render as render
import hub.console.session as cookies
from hub.console.client import ConsoleUnavailableError, ensure_console_client
from hub.console.forms import Form, FormError, read_form
from hub.console.roles import Permission, permissions
from hub.console.tokens import TokenRequestError, refresh
from hub.oauth.bearer import authenticate_token
from hub.principal import Principal
from hub.runtime import Runtime

logger = logging.getLogger(__name__)
REFRESH_MARGIN = 30.0  # seconds before expiry when the token is renewed
CSRF_HEADER = "x-csrf-token"

NAV = (
    ("Dashboard", "/console/", Permission.DASHBOARD),
    ("Policies", "/console/policies", Permission.READ_POLICIES),
    ("View as", "/console/policies/view-as", Permission.EDIT_POLICIES),
    ("Explorer", "/console/explorer", Permission.EXPLORE),
    ("Organizations", "/console/organizations", Permission.ADMINISTER),
    ("Review", "/console/review", Permission.ADMINISTER),
    ("Connectors", "/console/connectors", Permission.ADMINISTER),
    ("Audit", "/console/audit", Permission.ADMINISTER),
)


@dataclass(frozen=True)
class Staff:
    """The signed-in staff user: the API's principal for their token, and their roles."""

    principal: Principal
    email: str
    csrf: str

    @property
    def roles(self) -> frozenset[str]:
        return self.principal.roles

    def can(self, permission: Permission) -> bool:
        return permission in permissions(self.roles)


@dataclass(frozen=True)
class Ctx:
    """What a console handler gets: the request, the runtime, the user and the form."""

    request: Request
    runtime: Runtime
    staff: Staff
    form: Form

    def page(self, template: str, status: int = 200, **values: Any) -> Response:
        """A page or an htmx fragment, with the user and the navigation it may see."""
        staff = self.staff
        path = self.request.url.path
        shown = [(label, href) for label, href, needed in NAV if staff.can(needed)]
        # The entry whose path is the longest prefix of this page's is the current one.
        best = max((href for _, href in shown if path.startswith(href)), key=len, default="")
        nav = [(label, href, href == best) for label, href in shown]
        context = {
            "staff": staff,
            "csrf": staff.csrf,
            "nav": nav,
            "path": path,
            "Permission": Permission,
            **values,
        }
        return render.html(template, context, status)

    @property
    def htmx(self) -> bool:
        return self.request.headers.get("hx-request") == "true"


Handler = Callable[[Ctx], Awaitable[Response]]


def to_signin(request: Request) -> Response:
    """Back to sign-in (keeping where the user was going, if it was a page)."""
    target = request.url.path if request.method == "GET" else "/console/"
    location = f"/console/login?next={quote(target, safe='/')}"
    if request.headers.get("hx-request") == "true":
        response: Response = Response(status_code=401, headers={"HX-Redirect": location})
    else:
        response = RedirectResponse(location, status_code=303)
    runtime: Runtime = request.app.state.runtime
    cookies.clear_cookie(
        response, cookies.COOKIE, secure=cookies.secure(request, runtime.settings.issuer)
    )
    return response


def refused(request: Request, message: str, status: int = 403) -> Response:
    return render.html("refused.html", {"message": message, "status": status}, status)


async def _fresh(
    request: Request, runtime: Runtime, current: cookies.Session
) -> cookies.Session | None:
    if current.expires_at - REFRESH_MARGIN > time.time():
        return current
    if not current.refresh_token:
        return None
    try:
        async with runtime.database.transaction() as session:
            client_id = await ensure_console_client(session, runtime.settings.issuer)
        tokens = await refresh(request, client_id, current.refresh_token)
    except (TokenRequestError, ConsoleUnavailableError) as error:
        logger.info("console session ended: %s", error)
        return None
    return current.refreshed(tokens)


def csrf_ok(request: Request, form: Form, expected: str) -> bool:
    offered = request.headers.get(CSRF_HEADER) or form.get("csrf")
    return bool(offered) and hmac.compare_digest(offered.encode(), expected.encode())


def _holds_nul(request: Request) -> bool:
    """Whether a path or query parameter holds a NUL. None may: no slug, name, id or
    filter has one, and PostgreSQL cannot even compare text with one (handlers passing
    one to a query answered 500 there). Form fields are checked by :func:`read_form`."""
    values = [v for pair in request.query_params.multi_items() for v in pair]
    values += [v for v in request.path_params.values() if isinstance(v, str)]
    return any("\x00" in value for value in values)


def page(permission: Permission) -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
    """Wrap a handler: sign-in, role and CSRF checks first (see the module docstring)."""

    def wrap(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            runtime: Runtime = request.app.state.runtime
            master_key = runtime.settings.master_key
            stored = cookies.read_session(request, master_key)
            if stored is None:
                return to_signin(request)
            current = await _fresh(request, runtime, stored)
            if current is None:
                return to_signin(request)
            try:
                principal = await authenticate_token(runtime, current.access_token)
            except AuthenticationError:
                return to_signin(request)
            staff = Staff(principal, current.email, current.csrf)
            if not staff.can(permission):
                roles = ", ".join(sorted(staff.roles)) or "none"
                return refused(request, f"Your roles ({roles}) do not allow this page or action.")
            if _holds_nul(request):
                return refused(request, "The address holds a NUL character.", 400)
            try:
                form = await read_form(request)
            except FormError as error:
                return refused(request, str(error), 400)
            if request.method == "POST" and not csrf_ok(request, form, current.csrf):
                return refused(request, "The request has no valid CSRF token; reload the page.")
            response = await handler(Ctx(request, runtime, staff, form))
            if current is not stored:
                cookies.set_cookie(
                    response,
                    cookies.COOKIE,
                    cookies.seal(master_key, "session", current),
                    secure=cookies.secure(request, runtime.settings.issuer),
                    max_age=runtime.settings.refresh_token_ttl,
                )
            return response

        endpoint.__name__ = handler.__name__
        endpoint.__doc__ = handler.__doc__
        return endpoint

    return wrap
