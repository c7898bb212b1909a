"""Sign-in and sign-out: the authorization code flow with PKCE (RFC 6749 §4.1, RFC 7636)
against the hub's own ``/oauth/authorize`` (which shows the staff sign-in form) and
``/oauth/token``.

``/console/login`` makes a verifier and ``state``, keeps them in a short-lived encrypted
cookie and sends the browser to ``/oauth/authorize``; ``/console/callback`` checks
``state`` and ``iss`` (RFC 9207), redeems the code with the verifier and stores the tokens
in the session cookie (:mod:`hub.console.session`).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from urllib.parse import urlencode

from starlette.authentication import AuthenticationError
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

import hub.console.render as render
import hub.console.session as cookies
from hub.console.auth import csrf_ok, refused
from hub.console.client import SCOPES, ConsoleUnavailableError, ensure_console_client, redirect_uri
from hub.console.forms import FormError, read_form
from hub.console.tokens import TokenRequestError, token_request
from hub.models import RefreshToken, StaffUser
from hub.oauth.bearer import authenticate_token
from hub.oauth.pkce import s256
from hub.oauth.staff_sessions import revoke_family
from hub.runtime import Runtime


def _next(value: str | None) -> str:
    """Only a console path: never an open redirect."""
    if value and value.startswith("/console") and not value.startswith("//"):
        return value
    return "/console/"


async def login(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    settings = runtime.settings
    try:
        async with runtime.database.transaction() as session:
            client_id = await ensure_console_client(session, settings.issuer)
    except ConsoleUnavailableError as error:
        return refused(request, str(error), 503)
    verifier = secrets.token_urlsafe(48)
    state = secrets.token_urlsafe(24)
    pending = cookies.PendingSignIn(verifier, state, _next(request.query_params.get("next")))
    query = urlencode(
        {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": redirect_uri(settings.issuer),
            "scope": " ".join(SCOPES),
            "state": state,
            "code_challenge": s256(verifier),
            "code_challenge_method": "S256",
        }
    )
    response = RedirectResponse(f"{settings.issuer}/oauth/authorize?{query}", status_code=303)
    cookies.set_cookie(
        response,
        cookies.SIGNIN_COOKIE,
        cookies.seal(settings.master_key, "signin", pending),
        secure=cookies.secure(request, settings.issuer),
        max_age=cookies.SIGNIN_LIFETIME,
    )
    return response


async def callback(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    settings = runtime.settings
    params = request.query_params
    pending = cookies.read_pending(request, settings.master_key)
    if pending is None:
        return refused(
            request, "The sign-in took too long or started elsewhere; sign in again.", 400
        )
    if not hmac.compare_digest(params.get("state", ""), pending.state):
        return refused(request, "The sign-in answer does not match its request (state).", 400)
    if params.get("iss") not in (None, settings.issuer):
        return refused(request, "The sign-in answer came from another issuer.", 400)
    if "error" in params:
        return refused(request, f"Sign-in refused: {params.get('error_description', '')}", 400)
    try:
        async with runtime.database.transaction() as session:
            client_id = await ensure_console_client(session, settings.issuer)
        tokens = await token_request(
            request,
            {
                "grant_type": "authorization_code",
                "code": params.get("code", ""),
                "redirect_uri": redirect_uri(settings.issuer),
                "code_verifier": pending.verifier,
                "client_id": client_id,
            },
        )
        principal = await authenticate_token(runtime, str(tokens["access_token"]))
    except (TokenRequestError, AuthenticationError, ConsoleUnavailableError) as error:
        return refused(request, f"Sign-in failed: {error}", 400)
    async with runtime.database.session() as session:
        user = await session.get(StaffUser, uuid.UUID(principal.subject or str(uuid.UUID(int=0))))
    email = user.email if user is not None else ""
    response = RedirectResponse(pending.next, status_code=303)
    secure = cookies.secure(request, settings.issuer)
    cookies.clear_cookie(response, cookies.SIGNIN_COOKIE, secure=secure)
    cookies.set_cookie(
        response,
        cookies.COOKIE,
        cookies.seal(settings.master_key, "session", cookies.Session.new(tokens, email)),
        secure=secure,
        max_age=settings.refresh_token_ttl,
    )
    return response


async def _end(runtime: Runtime, refresh_token: str) -> None:
    """Revoke the session's refresh-token family and the access tokens it issued (RFC
    7009 in spirit: the console is a public client, so it does this in process)."""
    token_hash = hashlib.sha256(refresh_token.encode()).hexdigest()
    async with runtime.database.session() as session:
        row = await session.get(RefreshToken, token_hash)
    if row is None:
        return
    for jti in await revoke_family(runtime.database, row.family_id):
        runtime.revocations.add(jti)


async def logout(request: Request) -> Response:
    """POST with the CSRF token: end the session on the server and forget the cookie."""
    runtime: Runtime = request.app.state.runtime
    current = cookies.read_session(request, runtime.settings.master_key)
    try:
        form = await read_form(request)
    except FormError as error:
        return refused(request, str(error), 400)
    if current is not None and not csrf_ok(request, form, current.csrf):
        return refused(request, "The request has no valid CSRF token; reload the page.")
    if current is not None and current.refresh_token:
        await _end(runtime, current.refresh_token)
    response = render.html("signed_out.html", {})
    cookies.clear_cookie(
        response, cookies.COOKIE, secure=cookies.secure(request, runtime.settings.issuer)
    )
    return response
