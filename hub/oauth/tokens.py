"""JWT access tokens per RFC 9068, issued and verified by the hub."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError

from hub.oauth.keys import ALGORITHM, KeyRing

# RFC 9068 §2.1: the "typ" header is "at+jwt"; "application/at+jwt" is the same media type.
ACCESS_TOKEN_TYPES = frozenset({"at+jwt", "application/at+jwt"})
_LEEWAY = 30  # seconds of clock skew tolerated between replicas


class InvalidTokenError(Exception):
    """The bearer token is unusable; the message is safe to return to the client."""


@dataclass(frozen=True)
class AccessToken:
    token: str
    expires_in: int
    scope: str
    jti: str = ""
    expires_at: int = 0


def issue_access_token(
    keyring: KeyRing,
    *,
    issuer: str,
    audience: str,
    client_id: str,
    organization_slug: str,
    scopes: list[str],
    ttl: int,
    subject: str | None = None,
    roles: list[str] | None = None,
) -> AccessToken:
    """RFC 9068 §2.2 claims: iss, exp, aud, sub, client_id, iat, jti, plus scope and org.

    ``sub`` is the client for client_credentials (§2.2) and the staff user otherwise, who
    also gets a ``roles`` claim (RFC 9068 §2.2.3.1).
    """
    now = int(time.time())
    scope = " ".join(scopes)
    claims: dict[str, Any] = {
        "iss": issuer,
        "sub": subject or client_id,
        "aud": audience,
        "exp": now + ttl,
        "iat": now,
        "jti": secrets.token_urlsafe(16),
        "client_id": client_id,
        "scope": scope,
        "org": organization_slug,
    }
    if roles is not None:
        claims["roles"] = sorted(roles)
    header = {"alg": ALGORITHM, "typ": "at+jwt", "kid": keyring.signing_kid}
    token = jwt.encode(header, claims, keyring.signing_key, algorithms=[ALGORITHM])
    return AccessToken(
        token=token, expires_in=ttl, scope=scope, jti=claims["jti"], expires_at=now + ttl
    )


_REQUIRED = ("iss", "sub", "aud", "exp", "iat", "jti", "client_id")


def verify_access_token(
    keyring: KeyRing, token: str, *, issuer: str, audience: str
) -> dict[str, Any]:
    """Validate per RFC 9068 §4; returns the claims or raises :class:`InvalidTokenError`."""
    try:
        decoded = jwt.decode(token, keyring.public_keys, algorithms=[ALGORITHM])
    except (JoseError, ValueError, TypeError):
        raise InvalidTokenError("the token is malformed or its signature is invalid") from None
    typ = str(decoded.header.get("typ", "")).lower()
    if typ not in ACCESS_TOKEN_TYPES:
        raise InvalidTokenError("the token is not an access token (typ must be at+jwt)")
    claims = decoded.claims
    missing = [name for name in _REQUIRED if name not in claims]
    if missing:
        raise InvalidTokenError(f"the token lacks the {', '.join(missing)} claim(s)")
    registry = jwt.JWTClaimsRegistry(
        leeway=_LEEWAY,
        iss={"essential": True, "value": issuer},
    )
    try:
        registry.validate(claims)
    except JoseError:
        raise InvalidTokenError("the token is expired or was not issued by this hub") from None
    aud = claims["aud"]
    audiences = [aud] if isinstance(aud, str) else aud
    if not isinstance(audiences, list) or audience not in audiences:
        raise InvalidTokenError("the token is not meant for this hub (aud)")
    if not isinstance(claims.get("scope", ""), str):
        raise InvalidTokenError("the token's scope claim is malformed")
    return claims
