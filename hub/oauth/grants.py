"""Token-endpoint grants of staff sessions: ``authorization_code`` with PKCE (RFC 6749
§4.1.3, RFC 7636 §4.5-4.6) and ``refresh_token`` with rotation (RFC 6749 §6, RFC 9700
§4.14.2). Every failure about the grant itself is ``invalid_grant`` (RFC 6749 §5.2)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlmodel import col

from hub.models import Organization, StaffUser
from hub.models._types import utcnow
from hub.oauth._http import OAuthError
from hub.oauth.client_auth import AuthenticatedClient
from hub.oauth.context import OAuthContext
from hub.oauth.pkce import verifier_matches
from hub.oauth.scopes import Scope, grantable_scopes
from hub.oauth.staff_sessions import (
    ReusedError,
    claim_code,
    claim_refresh_token,
    store_refresh_token,
)
from hub.oauth.tokens import issue_access_token


def _require(form: dict[str, str], name: str) -> str:
    value = form.get(name)
    if not value:
        raise OAuthError("invalid_request", f"{name} is required")
    return value


async def _active_user(runtime: OAuthContext, user_id: uuid.UUID) -> tuple[StaffUser, Organization]:
    async with runtime.database.session() as session:
        row = (
            await session.execute(
                select(StaffUser, Organization)
                .join(Organization, col(Organization.id) == col(StaffUser.organization_id))
                .where(col(StaffUser.id) == user_id)
            )
        ).first()
    if row is None or not row[0].active or not row[1].active:
        raise OAuthError("invalid_grant", "the staff user is disabled")
    return row[0], row[1]


def _forget(runtime: OAuthContext, error: ReusedError) -> None:
    # Honour the revocation on this replica at once; others follow within the refresh.
    for jti in error.revoked:
        runtime.revocations.add(jti)


async def _tokens(
    runtime: OAuthContext,
    caller: AuthenticatedClient,
    user_id: uuid.UUID,
    scope: str,
    family_id: uuid.UUID,
    family_expires_at: datetime | None,
) -> dict[str, object]:
    settings = runtime.settings
    user, org = await _active_user(runtime, user_id)
    allowed = set(grantable_scopes(org.kind, caller.client.scopes))
    if "admin" not in user.roles:
        allowed.discard(Scope.HUB_ADMIN)
    granted = sorted(s for s in scope.split() if s in allowed)
    issued = issue_access_token(
        runtime.keyring,
        issuer=settings.issuer,
        audience=settings.token_audience,
        client_id=caller.client.client_id,
        organization_slug=org.slug,
        scopes=granted,
        ttl=settings.access_token_ttl,
        subject=str(user.id),
        roles=list(user.roles),
    )
    expires_at = family_expires_at or utcnow() + timedelta(seconds=settings.refresh_token_ttl)
    refresh = await store_refresh_token(
        runtime.database,
        family_id=family_id,
        client_id=caller.client.client_id,
        user_id=user.id,
        scope=issued.scope,
        access_jti=issued.jti,
        access_expires_at=issued.expires_at,
        expires_at=expires_at,
    )
    return {
        "access_token": issued.token,
        "token_type": "Bearer",
        "expires_in": issued.expires_in,
        "scope": issued.scope,
        "refresh_token": refresh.token,
    }


async def authorization_code_grant(
    runtime: OAuthContext, caller: AuthenticatedClient, form: dict[str, str]
) -> dict[str, object]:
    """RFC 6749 §4.1.3: the code, bound to this client and redirect_uri, plus the PKCE
    verifier (RFC 7636 §4.5). A verifier for a code stored without a challenge is refused
    (RFC 9700 §2.1.1: the PKCE downgrade)."""
    code = _require(form, "code")
    redirect_uri = _require(form, "redirect_uri")
    verifier = form.get("code_verifier")
    try:
        claimed = await claim_code(runtime.database, code, caller.client.client_id)
    except ReusedError as error:
        _forget(runtime, error)
        raise OAuthError("invalid_grant", "the code was already used") from None
    if claimed is None:
        raise OAuthError("invalid_grant", "the code is unknown, expired or another client's")
    if claimed.redirect_uri != redirect_uri:
        raise OAuthError("invalid_grant", "redirect_uri differs from the authorization request")
    if claimed.code_challenge is None or claimed.family_id is None:
        raise OAuthError("invalid_grant", "the code has no PKCE challenge; it cannot be redeemed")
    if not verifier_matches(verifier, claimed.code_challenge):
        raise OAuthError("invalid_grant", "code_verifier does not match the code_challenge")
    return await _tokens(runtime, caller, claimed.user_id, claimed.scope, claimed.family_id, None)


async def refresh_token_grant(
    runtime: OAuthContext, caller: AuthenticatedClient, form: dict[str, str]
) -> dict[str, object]:
    """RFC 6749 §6 with rotation: the presented token is spent, a new one of the same
    family is returned; the family keeps its original expiry (sessions end on time)."""
    token = _require(form, "refresh_token")
    try:
        claimed = await claim_refresh_token(runtime.database, token, caller.client.client_id)
    except ReusedError as error:
        _forget(runtime, error)
        raise OAuthError("invalid_grant", "the refresh token was already used") from None
    if claimed is None:
        raise OAuthError("invalid_grant", "the refresh token is unknown, expired or another's")
    scope = claimed.scope
    requested = form.get("scope")
    if requested is not None:
        # §6: a narrower scope may be asked for, never a wider one.
        extra = set(requested.split()) - set(scope.split())
        if extra:
            raise OAuthError("invalid_scope", f"scope not granted: {' '.join(sorted(extra))}")
        scope = requested
    return await _tokens(
        runtime, caller, claimed.user_id, scope, claimed.family_id, claimed.expires_at
    )


STAFF_GRANTS: dict[
    str, Callable[[OAuthContext, AuthenticatedClient, dict[str, str]], Awaitable[dict[str, object]]]
] = {
    "authorization_code": authorization_code_grant,
    "refresh_token": refresh_token_grant,
}
