"""Authorization codes and refresh-token families of staff sessions.

Codes (RFC 6749 §4.1.2, §10.5): 256 random bits, stored hashed, single use, 60 s. A code
redeemed twice is an attack signal: the second attempt fails and everything the first one
issued is revoked (§4.1.2, RFC 9700 §4.5). Refresh tokens (RFC 6749 §6, RFC 9700 §4.14.2)
rotate on every use; a used one presented again revokes its whole family, including the
access tokens issued from it (their ``jti`` go to the deny list).
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from hub.db import Database
from hub.models import AuthorizationCode, RefreshToken
from hub.models._types import utcnow
from hub.oauth.revocation import record_revocation

CODE_LIFETIME = 60


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _new_secret() -> str:
    return secrets.token_urlsafe(32)  # 256 bits (RFC 6749 §10.10)


async def issue_code(
    database: Database,
    *,
    client_id: str,
    user_id: uuid.UUID,
    redirect_uri: str,
    code_challenge: str | None,
    scope: str,
) -> str:
    code = _new_secret()
    async with database.transaction() as session:
        session.add(
            AuthorizationCode(
                code_hash=_hash(code),
                client_id=client_id,
                user_id=user_id,
                redirect_uri=redirect_uri,
                code_challenge=code_challenge,
                scope=scope,
                expires_at=utcnow() + timedelta(seconds=CODE_LIFETIME),
            )
        )
    return code


class ReusedError(Exception):
    """A used code or refresh token came back: what it issued is revoked (``revoked``)."""

    def __init__(self, revoked: list[str]) -> None:
        super().__init__("reused")
        self.revoked = revoked


async def claim_code(database: Database, code: str, client_id: str) -> AuthorizationCode | None:
    """Mark the code used (atomically: one redemption wins) and return it.

    None for an unknown, expired or other client's code; :class:`ReusedError` for a
    used one, after revoking the family its first redemption started.
    """
    code_hash = _hash(code)
    family_id = uuid.uuid4()
    now = utcnow()
    async with database.transaction() as session:
        claimed = await session.execute(
            update(AuthorizationCode)
            .where(col(AuthorizationCode.code_hash) == code_hash)
            .where(col(AuthorizationCode.client_id) == client_id)
            .where(col(AuthorizationCode.used_at).is_(None))
            .values(used_at=now, family_id=family_id)
        )
        row = await session.get(AuthorizationCode, code_hash)
    if row is None or row.client_id != client_id:
        return None
    if getattr(claimed, "rowcount", 0) != 1:
        revoked = [] if row.family_id is None else await revoke_family(database, row.family_id)
        raise ReusedError(revoked)
    if row.expires_at <= now:
        return None
    return row


@dataclass(frozen=True)
class IssuedRefresh:
    token: str
    family_id: uuid.UUID


async def store_refresh_token(
    database: Database,
    *,
    family_id: uuid.UUID,
    client_id: str,
    user_id: uuid.UUID,
    scope: str,
    access_jti: str,
    access_expires_at: int,
    expires_at: datetime,
) -> IssuedRefresh:
    token = _new_secret()
    async with database.transaction() as session:
        session.add(
            RefreshToken(
                token_hash=_hash(token),
                family_id=family_id,
                client_id=client_id,
                user_id=user_id,
                scope=scope,
                access_jti=access_jti,
                access_expires_at=datetime.fromtimestamp(access_expires_at, tz=utcnow().tzinfo),
                expires_at=expires_at,
            )
        )
    return IssuedRefresh(token, family_id)


async def claim_refresh_token(
    database: Database, token: str, client_id: str
) -> RefreshToken | None:
    """Rotate out ``token`` (atomically) and return it; None if unknown, expired or another
    client's; :class:`ReusedError` (family revoked) if it was used or revoked."""
    token_hash = _hash(token)
    now = utcnow()
    async with database.transaction() as session:
        claimed = await session.execute(
            update(RefreshToken)
            .where(col(RefreshToken.token_hash) == token_hash)
            .where(col(RefreshToken.client_id) == client_id)
            .where(col(RefreshToken.used_at).is_(None))
            .where(col(RefreshToken.revoked_at).is_(None))
            .values(used_at=now)
        )
        row = await session.get(RefreshToken, token_hash)
    if row is None or row.client_id != client_id:
        return None
    if getattr(claimed, "rowcount", 0) != 1:
        raise ReusedError(await revoke_family(database, row.family_id))
    if row.expires_at <= now:
        return None
    return row


async def _family(session: AsyncSession, family_id: uuid.UUID) -> list[RefreshToken]:
    rows = await session.execute(
        select(RefreshToken).where(col(RefreshToken.family_id) == family_id)
    )
    return list(rows.scalars())


async def revoke_family(database: Database, family_id: uuid.UUID) -> list[str]:
    """Kill every refresh token of the family and deny-list its access tokens' ``jti``."""
    now = utcnow()
    async with database.transaction() as session:
        await session.execute(
            update(RefreshToken)
            .where(col(RefreshToken.family_id) == family_id)
            .where(col(RefreshToken.revoked_at).is_(None))
            .values(revoked_at=now)
        )
        members = await _family(session, family_id)
    revoked = []
    for member in members:
        if member.access_expires_at > now:
            await record_revocation(
                database,
                jti=member.access_jti,
                client_id=member.client_id,
                expires_at=int(member.access_expires_at.timestamp()),
            )
            revoked.append(member.access_jti)
    return revoked
