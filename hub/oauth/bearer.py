"""Resource side: turn a bearer access token into a :class:`Principal` (RFC 6750).

Authentication happens once, in middleware; endpoints read ``request.user``. A token's
verification is remembered by :mod:`hub.oauth.verified_tokens`; revocation and disabled
clients or staff users are checked on every request all the same.
"""

from __future__ import annotations

from starlette.authentication import (
    AuthCredentials,
    AuthenticationBackend,
    AuthenticationError,
    BaseUser,
)
from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse, Response

from hub.oauth.context import OAuthContext
from hub.oauth.directory import ClientIdentity
from hub.oauth.staff_directory import StaffIdentity
from hub.oauth.tokens import InvalidTokenError, verify_access_token
from hub.oauth.verified_tokens import VerifiedToken, token_key
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
        principal = await authenticate_token(conn.app.state.runtime, token)
        return AuthCredentials(sorted(principal.scopes)), PrincipalUser(principal)


async def authenticate_token(runtime: OAuthContext, token: str) -> Principal:
    """The caller a bearer access token stands for; :class:`AuthenticationError` when it
    is invalid, revoked, or its client or staff user is disabled. Also used by the
    console (:mod:`hub.console`), which keeps its staff token in its session cookie."""
    verified = _verified(runtime, token)
    # What can change under a valid token is checked on every request, cached or not.
    # RFC 7009 §2: a revoked token is refused; the set is refreshed from the database
    # every HUB_REVOCATION_REFRESH_INTERVAL seconds on every replica.
    if verified.jti in runtime.revocations:
        raise AuthenticationError("the token has been revoked")
    client = await runtime.clients.lookup(verified.client_id)
    if client is None or not client.active:
        raise AuthenticationError("the token's client is disabled or unknown")
    staff: StaffIdentity | None = None
    if verified.roles is not None:
        staff = await runtime.staff.lookup(
            runtime.database, runtime.settings.client_cache_ttl, verified.subject
        )
        if staff is None or not staff.active:
            raise AuthenticationError("the token's staff user is disabled or unknown")
    memo = verified.memo
    if memo is not None and memo[0] is client and memo[1] is staff:
        principal = memo[2]
    else:
        principal = _principal(verified, client, staff)
        verified.memo = (client, staff, principal)
    return principal


def _verified(runtime: OAuthContext, token: str) -> VerifiedToken:
    """The token's RFC 9068 §4 validation: remembered from an earlier request while it
    still stands (:mod:`hub.oauth.verified_tokens`), else done now."""
    key = token_key(token)
    keyring = runtime.keyring
    cached = runtime.verified_tokens.get(key, keyring)
    if cached is not None:
        return cached
    settings = runtime.settings
    try:
        claims = verify_access_token(
            keyring, token, issuer=settings.issuer, audience=settings.token_audience
        )
    except InvalidTokenError as error:
        raise AuthenticationError(str(error)) from None
    roles: frozenset[str] | None = None
    if "roles" in claims:
        # A staff user's token (authorization code grant): ``sub`` is the user, who acts
        # for their own organization with the token's ``roles`` (RFC 9068 §2.2.3.1).
        listed = claims["roles"]
        if not isinstance(listed, list) or not all(isinstance(role, str) for role in listed):
            raise AuthenticationError("the token's roles claim is malformed")
        roles = frozenset(listed)
    verified = VerifiedToken(
        jti=str(claims["jti"]),
        client_id=str(claims["client_id"]),
        subject=str(claims["sub"]),
        scopes=frozenset(str(claims.get("scope", "")).split()),
        roles=roles,
        expires_at=float(claims["exp"]),
        keyring=keyring,
    )
    runtime.verified_tokens.put(key, verified)
    return verified


def _principal(
    verified: VerifiedToken, client: ClientIdentity, staff: StaffIdentity | None
) -> Principal:
    """The caller: the client's organization, or the staff user's with their roles."""
    if staff is None:
        return Principal(
            client_id=client.client_id,
            organization_id=client.organization_id,
            organization_slug=client.organization_slug,
            organization_kind=client.organization_kind,
            attributes=client.organization_attributes,
            scopes=verified.scopes,
            token_id=verified.jti,
        )
    return Principal(
        client_id=client.client_id,
        organization_id=staff.organization_id,
        organization_slug=staff.organization_slug,
        organization_kind=staff.organization_kind,
        attributes=staff.organization_attributes,
        scopes=verified.scopes,
        roles=verified.roles or frozenset(),
        token_id=verified.jti,
        subject=verified.subject,
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
