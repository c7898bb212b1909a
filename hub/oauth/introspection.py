"""Token introspection (RFC 7662): ``POST /oauth/introspect``.

Only authenticated clients may ask (§2.1, any method of :mod:`hub.oauth.client_auth`), and
a client learns about its own tokens only: another client's token, like an invalid,
expired or revoked one, is ``{"active": false}`` with nothing else (§2.2, §4).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from hub.oauth._http import NO_STORE, OAuthError, read_form
from hub.oauth.client_auth import authenticate_client
from hub.oauth.context import OAuthContext
from hub.oauth.revocation import is_revoked
from hub.oauth.tokens import InvalidTokenError, verify_access_token

_INACTIVE = {"active": False}
# RFC 7662 §2.2 members copied from the token's claims when it is active.
_CLAIMS = ("scope", "client_id", "exp", "iat", "nbf", "sub", "aud", "iss", "jti")


async def introspect(runtime: OAuthContext, token: str, client_id: str) -> dict[str, Any]:
    """The §2.2 answer for ``token`` as seen by the client ``client_id``."""
    settings = runtime.settings
    try:
        claims = verify_access_token(
            runtime.keyring, token, issuer=settings.issuer, audience=settings.token_audience
        )
    except InvalidTokenError:
        return _INACTIVE
    if claims["client_id"] != client_id:
        return _INACTIVE
    async with runtime.database.session() as session:
        if await is_revoked(session, str(claims["jti"])):
            return _INACTIVE
    answer: dict[str, Any] = {"active": True, "token_type": "Bearer"}
    answer.update({name: claims[name] for name in _CLAIMS if name in claims})
    return answer


async def introspection_endpoint(request: Request) -> Response:
    runtime: OAuthContext = request.app.state.runtime
    try:
        form = await read_form(request)
        caller = await authenticate_client(request, form, runtime)
    except OAuthError as error:
        return error.response()
    token = form.get("token")
    if not token:
        return OAuthError("invalid_request", "token is required").response()
    # token_type_hint is optional and only a hint (§2.1): there is one kind of token here.
    answer = await introspect(runtime, token, caller.client.client_id)
    return JSONResponse(answer, headers=NO_STORE)
