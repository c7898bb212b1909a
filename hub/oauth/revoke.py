"""Token revocation (RFC 7009): ``POST /oauth/revoke``.

The client authenticates (§2.1) and may revoke its own tokens. Success, and an invalid,
expired or unknown token, all answer 200 with an empty body (§2.2): the client cannot act
on the difference. A token issued to another client is refused (§2.1, last paragraph).
The ``jti`` goes to the shared deny list (:mod:`hub.oauth.revocation`).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from hub.oauth._http import NO_STORE, OAuthError, read_form
from hub.oauth.client_auth import authenticate_client
from hub.oauth.context import OAuthContext
from hub.oauth.revocation import record_revocation
from hub.oauth.tokens import InvalidTokenError, verify_access_token


async def revocation_endpoint(request: Request) -> Response:
    runtime: OAuthContext = request.app.state.runtime
    try:
        form = await read_form(request)
        caller = await authenticate_client(request, form, runtime)
        token = form.get("token")
        if not token:
            raise OAuthError("invalid_request", "token is required")
        # token_type_hint is optional and may be ignored (§2.1): one kind of token here.
        settings = runtime.settings
        try:
            claims = verify_access_token(
                runtime.keyring, token, issuer=settings.issuer, audience=settings.token_audience
            )
        except InvalidTokenError:
            return Response(status_code=200, headers=NO_STORE)
        if claims["client_id"] != caller.client.client_id:
            raise OAuthError("unauthorized_client", "the token was not issued to this client")
    except OAuthError as error:
        return error.response()
    jti = str(claims["jti"])
    await record_revocation(
        runtime.database, jti=jti, client_id=caller.client.client_id, expires_at=int(claims["exp"])
    )
    runtime.revocations.add(jti)
    return Response(status_code=200, headers=NO_STORE)
