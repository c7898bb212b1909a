"""The authorization endpoint (RFC 6749 §4.1.1-4.1.2) with the staff sign-in form.

Errors about ``client_id`` or ``redirect_uri`` are shown on a page and never redirected
(§4.1.2.1: an unverified redirect is an open redirector); the redirect URI must equal a
registered one exactly (RFC 9700 §4.1.3). Other errors go back to the client with
``error=``. PKCE is S256 only for every client (RFC 9700 §2.1.1). The form carries a CSRF
token bound to the pending authorization request and to a cookie of this browser.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import logging
import secrets
import time
from urllib.parse import urlencode, urlsplit, urlunsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from hub.crypto import derive_key
from hub.models import Client
from hub.oauth._http import MAX_FORM_BYTES, FormTooLargeError, parse_form, read_body
from hub.oauth.client_auth import load_client, source_address
from hub.oauth.context import OAuthContext
from hub.oauth.pkce import challenge_problem
from hub.oauth.ratelimit import RateLimitedError
from hub.oauth.scopes import ALL_SCOPES
from hub.oauth.staff_sessions import issue_code
from hub.staff import normalise_email, sign_in

# The parameters of the pending request, echoed in the form and covered by its token.
REQUEST_PARAMS = (
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
)
COOKIE = "hub_signin"
FORM_LIFETIME = 600
_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",  # RFC 6749 §10.13: no clickjacking of the login form
    # The console's stylesheet (hub/console/static): no inline style, so no unsafe-inline.
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
}


audit = logging.getLogger("hub.audit")


class _Refused(Exception):
    """An error to show on a page: the client or its redirect URI cannot be trusted."""


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    document = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title>"
        '<link rel="stylesheet" href="/console/static/console.css"></head>'
        f'<body><main id="main" class="signin"><h1>{html.escape(title)}</h1>'
        f"{body}</main></body></html>"
    )
    return HTMLResponse(document, status_code=status, headers=_HEADERS)


def _error_page(description: str, status: int = 400) -> HTMLResponse:
    return _page("Sign-in request refused", f"<p>{html.escape(description)}</p>", status)


async def _client(runtime: OAuthContext, params: dict[str, str]) -> Client:
    client_id = params.get("client_id")
    if not client_id:
        raise _Refused("client_id is missing")
    found = await load_client(runtime, client_id)
    if found is None or not found[0].active or not found[1].active:
        raise _Refused("the client is unknown or disabled")
    client = found[0]
    if "authorization_code" not in client.grant_types:
        raise _Refused("the client is not registered for the authorization code grant")
    redirect_uri = params.get("redirect_uri")
    if not redirect_uri or redirect_uri not in client.redirect_uris:
        raise _Refused("redirect_uri is missing or not registered for this client")
    return client


def _with_query(uri: str, values: dict[str, str]) -> str:
    parts = urlsplit(uri)
    query = "&".join(q for q in (parts.query, urlencode(values)) if q)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


def _back(runtime: OAuthContext, params: dict[str, str], values: dict[str, str]) -> Response:
    """RFC 6749 §4.1.2 / §4.1.2.1 redirect with ``state`` and RFC 9207 ``iss``."""
    values = {**values, "iss": runtime.settings.issuer}
    if "state" in params:
        values["state"] = params["state"]
    location = _with_query(params["redirect_uri"], values)
    return RedirectResponse(location, status_code=303, headers={"Cache-Control": "no-store"})


def _request_problem(params: dict[str, str], client: Client) -> tuple[str, str] | None:
    if params.get("response_type") != "code":
        return "unsupported_response_type", "response_type must be code"
    problem = challenge_problem(params.get("code_challenge"), params.get("code_challenge_method"))
    if problem is not None:
        return "invalid_request", problem
    requested = params.get("scope", "").split()
    if any(s not in ALL_SCOPES or s not in client.scopes for s in requested):
        return "invalid_scope", "a requested scope is unknown or not allowed for this client"
    return None


def _form_key(runtime: OAuthContext) -> bytes:
    return derive_key(runtime.settings.master_key, "hub.oauth.authorize.csrf")


def _csrf_mac(key: bytes, nonce: str, issued: str, params: dict[str, str]) -> str:
    bound = "\n".join([nonce, issued, *(params.get(name, "") for name in REQUEST_PARAMS)])
    return hmac.new(key, bound.encode(), hashlib.sha256).hexdigest()


def _csrf_ok(runtime: OAuthContext, request: Request, form: dict[str, str]) -> bool:
    issued, _, mac = form.get("csrf", "").partition(".")
    nonce = request.cookies.get(COOKIE, "")
    if not nonce or not issued.isdigit() or int(issued) + FORM_LIFETIME < time.time():
        return False
    expected = _csrf_mac(_form_key(runtime), nonce, issued, form)
    return hmac.compare_digest(expected, mac)


def _login_form(
    runtime: OAuthContext,
    request: Request,
    params: dict[str, str],
    message: str | None = None,
    status: int = 401,
) -> HTMLResponse:
    nonce = request.cookies.get(COOKIE) or secrets.token_urlsafe(24)
    issued = str(int(time.time()))
    csrf = f"{issued}.{_csrf_mac(_form_key(runtime), nonce, issued, params)}"
    hidden = "".join(
        f'<input type="hidden" name="{name}" value="{html.escape(params[name])}">'
        for name in REQUEST_PARAMS
        if name in params
    )
    error = "" if message is None else f'<p role="alert">{html.escape(message)}</p>'
    body = (
        f'{error}<form method="post" action="/oauth/authorize">{hidden}'
        f'<input type="hidden" name="csrf" value="{csrf}">'
        '<label>Email <input type="email" name="email" autocomplete="username" required>'
        '</label><label>Password <input type="password" name="password" '
        'autocomplete="current-password" required></label>'
        '<button type="submit">Sign in</button></form>'
    )
    response = _page("Sign in to Partner Hub", body, 200 if message is None else status)
    secure = runtime.settings.issuer.startswith("https://")
    response.set_cookie(
        COOKIE,
        nonce,
        max_age=FORM_LIFETIME,
        path="/oauth/authorize",
        httponly=True,
        secure=secure,
        samesite="lax",
    )
    return response


def _account(email: str) -> str:
    """The failure budgets' key for a staff email: hashed (bounded, never the address in
    the counters or the log), and prefixed so it never names an OAuth client."""
    return "staff:" + hashlib.sha256(normalise_email(email).encode()).hexdigest()[:32]


async def authorization_endpoint(request: Request) -> Response:
    """GET shows the sign-in form for a valid request; POST signs in and issues a code."""
    runtime: OAuthContext = request.app.state.runtime
    if request.method == "GET":
        params = {k: v for k, v in request.query_params.items() if v}
        if len(request.query_params.getlist("client_id")) > 1:
            return _error_page("client_id is repeated")
    else:
        try:
            # Bounded: the sign-in form is posted before anyone is authenticated.
            parsed = parse_form(await read_body(request))
        except FormTooLargeError:
            return _error_page(f"the form is over {MAX_FORM_BYTES} bytes", 413)
        if parsed is None:
            return _error_page("the form is malformed")
        params = parsed
    try:
        client = await _client(runtime, params)
    except _Refused as refused:
        return _error_page(str(refused))
    problem = _request_problem(params, client)
    if problem is not None:
        return _back(runtime, params, {"error": problem[0], "error_description": problem[1]})
    if request.method == "GET":
        return _login_form(runtime, request, params)
    if not _csrf_ok(runtime, request, params):
        return _login_form(runtime, request, params, "The form expired; sign in again.")
    # Password guesses are budgeted like client secrets at the token endpoint (per account
    # and address, per account, doubling blocks; a known address keeps signing in): there
    # was no limit at all on guessing a staff admin's password. Decided before the
    # password is checked, so a refused guess reveals nothing and costs no argon2.
    account = _account(params.get("email", ""))
    address = source_address(request)
    failures = runtime.rate_limiter.failures
    try:
        known = await failures.check(account, address)
    except RateLimitedError as error:
        message = f"Too many failed sign-ins; try again in {error.retry_after} seconds."
        response = _login_form(runtime, request, params, message, 429)
        response.headers["Retry-After"] = str(error.retry_after)
        return response
    async with runtime.database.session() as session:
        signed_in = await sign_in(session, params.get("email", ""), params.get("password", ""))
    if signed_in is None:
        for limit, seconds in await failures.failed(account, address):
            fields: dict[str, object] = {"event": "staff_sign_in_blocked", "limit": limit}
            fields |= {"account": account, "source_address": address, "seconds": seconds}
            audit.warning("staff sign-in blocked", extra={"fields": fields})
        return _login_form(runtime, request, params, "The email or password is wrong.")
    await failures.succeeded(account, address, known)
    requested = params.get("scope", "").split()
    code = await issue_code(
        runtime.database,
        client_id=client.client_id,
        user_id=signed_in.user.id,
        redirect_uri=params["redirect_uri"],
        code_challenge=params["code_challenge"],
        scope=" ".join(sorted(set(requested or client.scopes))),
    )
    return _back(runtime, params, {"code": code})
