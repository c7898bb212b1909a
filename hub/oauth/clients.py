"""OAuth client registration, secret checks and rotation, disabling (RFC 6749 §2)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from hub.models import Client, Organization
from hub.models._types import utcnow
from hub.oauth.scopes import check_grantable

DEFAULT_ROTATION_OVERLAP = 24 * 3600


class UnknownClientError(LookupError):
    pass


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(client: Client, secret: str, now: datetime | None = None) -> bool:
    """The current secret, or the previous one until its overlap period ends."""
    offered = hash_secret(secret)
    if client.secret_hash is not None and hmac.compare_digest(client.secret_hash, offered):
        return True
    if client.previous_secret_hash is None or client.previous_secret_expires_at is None:
        return False
    if client.previous_secret_expires_at <= (now or utcnow()):
        return False
    return hmac.compare_digest(client.previous_secret_hash, offered)


def new_client_id() -> str:
    return "hub_" + secrets.token_hex(12)


def new_client_secret() -> str:
    # 256 bits of randomness (RFC 6749 §10.10: credentials must be unguessable).
    return secrets.token_urlsafe(32)


async def create_client(
    session: AsyncSession, *, organization: Organization, name: str, scopes: list[str]
) -> tuple[Client, str]:
    """Register a client_credentials client; returns it and its secret (shown only once).

    Raises :class:`hub.oauth.scopes.ScopeNotGrantableError` for a scope the organization's
    kind may never hold.
    """
    secret = new_client_secret()
    client = _new_client(organization, name, scopes, secret_hash=hash_secret(secret))
    session.add(client)
    await session.flush()
    return client, secret


async def create_key_client(
    session: AsyncSession,
    *,
    organization: Organization,
    name: str,
    scopes: list[str],
    jwks: dict[str, Any],
) -> Client:
    """Register a private_key_jwt client (RFC 7523 §2.2); it has no secret.

    ``jwks`` must come from :func:`hub.oauth.client_keys.validate_client_jwks`.
    """
    client = _new_client(organization, name, scopes, jwks=jwks)
    session.add(client)
    await session.flush()
    return client


def _new_client(
    organization: Organization,
    name: str,
    scopes: list[str],
    *,
    secret_hash: str | None = None,
    jwks: dict[str, Any] | None = None,
    grant_types: list[str] | None = None,
    redirect_uris: list[str] | None = None,
) -> Client:
    # Every registration path (CLI, GraphQL admin, demo) passes here: a partner's client
    # can never be stored with hub:admin (ScopeNotGrantableError).
    check_grantable(organization.kind, scopes)
    return Client(
        client_id=new_client_id(),
        organization_id=organization.id,
        name=name,
        secret_hash=secret_hash,
        jwks=jwks,
        grant_types=grant_types or ["client_credentials"],
        redirect_uris=redirect_uris or [],
        scopes=sorted(scopes),
    )


class RedirectUriError(ValueError):
    """A redirect URI the hub will not register; the message says why."""


def check_redirect_uri(uri: str) -> str:
    """RFC 6749 §3.1.2: absolute, no fragment; https, or http on a loopback host only
    (RFC 8252 §7.3). Matched later by exact string comparison (RFC 9700 §4.1.3)."""
    parts = urlsplit(uri)
    if parts.fragment or "#" in uri:
        raise RedirectUriError(f"{uri!r} must not contain a fragment")
    loopback = parts.hostname in ("127.0.0.1", "localhost", "::1")
    if not parts.hostname or not (parts.scheme == "https" or (parts.scheme == "http" and loopback)):
        raise RedirectUriError(f"{uri!r} must be an https URL (or http on a loopback address)")
    return uri


async def create_code_client(
    session: AsyncSession,
    *,
    organization: Organization,
    name: str,
    scopes: list[str],
    redirect_uris: list[str],
    public: bool,
) -> tuple[Client, str | None]:
    """Register an authorization_code client (RFC 6749 §4.1) with its exact redirect URIs;
    a public one has no secret (``token_endpoint_auth_method`` ``none``), a confidential
    one gets a secret (shown once). Both may use refresh tokens (RFC 6749 §6)."""
    if not redirect_uris:
        raise RedirectUriError("an authorization_code client needs at least one redirect URI")
    uris = [check_redirect_uri(uri) for uri in redirect_uris]
    secret = None if public else new_client_secret()
    client = _new_client(
        organization,
        name,
        scopes,
        secret_hash=None if secret is None else hash_secret(secret),
        grant_types=["authorization_code", "refresh_token"],
        redirect_uris=uris,
    )
    session.add(client)
    await session.flush()
    return client, secret


async def find_client(session: AsyncSession, client_id: str) -> Client | None:
    result = await session.execute(select(Client).where(Client.client_id == client_id))
    return result.scalar_one_or_none()


async def _require(session: AsyncSession, client_id: str) -> Client:
    client = await find_client(session, client_id)
    if client is None:
        raise UnknownClientError(f"no client with id {client_id!r}")
    return client


async def rotate_secret(
    session: AsyncSession, client_id: str, *, overlap: int = DEFAULT_ROTATION_OVERLAP
) -> tuple[Client, str]:
    """Issue a new secret; the current one keeps working for ``overlap`` seconds."""
    client = await _require(session, client_id)
    secret = new_client_secret()
    if client.secret_hash is not None and overlap > 0:
        client.previous_secret_hash = client.secret_hash
        client.previous_secret_expires_at = utcnow() + timedelta(seconds=overlap)
    else:
        client.previous_secret_hash = None
        client.previous_secret_expires_at = None
    client.secret_hash = hash_secret(secret)
    await session.flush()
    return client, secret


async def disable_client(session: AsyncSession, client_id: str) -> Client:
    """Refuse the client at the token endpoint now and its tokens at the resource side
    within ``HUB_CLIENT_CACHE_TTL`` seconds (:class:`hub.oauth.directory.ClientDirectory`)."""
    client = await _require(session, client_id)
    client.active = False
    await session.flush()
    return client
