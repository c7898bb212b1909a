"""OAuth client registration and secret checks."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from hub.models import Client, Organization


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(client: Client, secret: str) -> bool:
    if client.secret_hash is None:
        return False
    return hmac.compare_digest(client.secret_hash, hash_secret(secret))


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
    client = Client(
        client_id=new_client_id(),
        organization_id=organization.id,
        name=name,
        secret_hash=hash_secret(secret),
        grant_types=["client_credentials"],
        scopes=sorted(scopes),
    )
    session.add(client)
    await session.flush()
    return client, secret


async def find_client(session: AsyncSession, client_id: str) -> Client | None:
    result = await session.execute(select(Client).where(Client.client_id == client_id))
    return result.scalar_one_or_none()
