"""Resource side: turn a bearer access token into a :class:`Principal` (RFC 6750).

Authentication happens once, in middleware; endpoints read ``request.user``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from starlette.authentication import (
    AuthCredentials,
    AuthenticationBackend,
    AuthenticationError,
    BaseUser,
)
from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse, Response

from hub.oauth.context import OAuthContext
from hub.oauth.tokens import InvalidTokenError, verify_access_token
from hub.principal import Principal

REALM = "partner-hub"


class PrincipalUser(BaseUser):
    def __init__(self, principal: Principal) -> None:
        self.principal = principal

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def display_name(self) -> str:
        return self.principal.client_id


class BearerTokenBackend(AuthenticationBackend):
    """Validates ``Authorization: Bearer`` tokens; other schemes are left to their routes."""

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, BaseUser] | None:
        header = conn.headers.get("authorization")
        if not header:
            return None
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer":
            return None
        token = token.strip()
        if not token or " " in token:
            raise AuthenticationError("the Authorization header is malformed")
        runtime: OAuthContext = conn.app.state.runtime
        settings = runtime.settings
        try:
            claims = verify_access_token(
                runtime.keyring, token, issuer=settings.issuer, audience=settings.token_audience
            )
        except InvalidTokenError as error:
            raise AuthenticationError(str(error)) from None
        # RFC 7009 §2: a revoked token is refused; the set is refreshed from the database
        # every HUB_REVOCATION_REFRESH_INTERVAL seconds on every replica.
        if claims["jti"] in runtime.revocations:
            raise AuthenticationError("the token has been revoked")
        identity = await runtime.clients.lookup(str(claims["client_id"]))
        if identity is None or not identity.active:
            raise AuthenticationError("the token's client is disabled or unknown")
        scopes = frozenset(str(claims.get("scope", "")).split())
        principal = Principal(
            client_id=identity.client_id,
            organization_id=identity.organization_id,
            organization_slug=identity.organization_slug,
            organization_kind=identity.organization_kind,
            attributes=identity.organization_attributes,
            scopes=scopes,
            token_id=str(claims["jti"]),
        )
        if "roles" in claims:
            principal = await _staff_principal(runtime, claims, principal)
        return AuthCredentials(sorted(scopes)), PrincipalUser(principal)


async def _staff_principal(
    runtime: OAuthContext, claims: dict[str, Any], principal: Principal
) -> Principal:
    """A staff user's token (authorization code grant): ``sub`` is the user, who acts for
    their own organization with the token's ``roles`` (RFC 9068 §2.2.3.1)."""
    roles = claims["roles"]
    if not isinstance(roles, list) or not all(isinstance(role, str) for role in roles):
        raise AuthenticationError("the token's roles claim is malformed")
    settings = runtime.settings
    user = await runtime.staff.lookup(
        runtime.database, settings.client_cache_ttl, str(claims["sub"])
    )
    if user is None or not user.active:
        raise AuthenticationError("the token's staff user is disabled or unknown")
    return replace(
        principal,
        organization_id=user.organization_id,
        organization_slug=user.organization_slug,
        organization_kind=user.organization_kind,
        attributes=user.organization_attributes,
        roles=frozenset(roles),
        subject=str(claims["sub"]),
    )


def _quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', "'")


def unauthorized(description: str | None = None) -> Response:
    """401 with the RFC 6750 §3 challenge; no error code when no token was sent (§3.1)."""
    if description is None:
        challenge = f'Bearer realm="{REALM}"'
        body = {
            "errors": [
                {
                    "message": "authentication required: send a bearer access token",
                    "extensions": {"code": "UNAUTHENTICATED"},
                }
            ]
        }
    else:
        challenge = (
            f'Bearer realm="{REALM}", error="invalid_token", '
            f'error_description="{_quote(description)}"'
        )
        body = {
            "errors": [
                {
                    "message": f"invalid token: {description}",
                    "extensions": {"code": "UNAUTHENTICATED"},
                }
            ]
        }
    return JSONResponse(body, status_code=401, headers={"WWW-Authenticate": challenge})


def on_auth_error(_conn: HTTPConnection, error: AuthenticationError) -> Response:
    return unauthorized(str(error))
