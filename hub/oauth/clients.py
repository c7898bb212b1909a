"""OAuth client registration, secret checks and rotation, disabling (RFC 6749 §2)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from hub.models import Client, Organization
from hub.models._types import utcnow

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
    """Register a client_credentials client; returns it and its secret (shown only once)."""
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
) -> Client:
    return Client(
        client_id=new_client_id(),
        organization_id=organization.id,
        name=name,
        secret_hash=secret_hash,
        jwks=jwks,
        grant_types=["client_credentials"],
        scopes=sorted(scopes),
    )


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
