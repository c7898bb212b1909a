"""The revoked-token deny list: JWT access tokens are self-contained, so revoking one
(RFC 7009 §2) means recording its ``jti`` until it would have expired anyway.

The table is shared by every replica; each keeps an in-memory copy refreshed every
``HUB_REVOCATION_REFRESH_INTERVAL`` seconds, so the resource side checks a set, not the
database, on every request (DESIGN §6: "revoked jtis honoured by every replica").
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from hub.db import Database
from hub.models import AuthorizationCode, RefreshToken, RevokedToken, UsedAssertion
from hub.models._types import utcnow


async def record_revocation(
    database: Database, *, jti: str, client_id: str, expires_at: int
) -> None:
    """Add ``jti`` to the deny list until ``expires_at`` (idempotent: RFC 7009 §2.2)."""
    values = {
        "jti": jti,
        "client_id": client_id,
        "expires_at": datetime.fromtimestamp(expires_at, UTC),
        "revoked_at": utcnow(),
    }
    async with database.transaction() as session:
        dialect = database.engine.dialect.name
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        statement = insert(RevokedToken).values(**values).on_conflict_do_nothing()
        await session.execute(statement)


async def is_revoked(session: AsyncSession, jti: str) -> bool:
    """Read the table itself (introspection answers must be exact, not a few seconds old)."""
    found = await session.execute(select(col(RevokedToken.jti)).where(col(RevokedToken.jti) == jti))
    return found.first() is not None


async def prune_expired(database: Database) -> None:
    """Drop deny-list, used-assertion, code and refresh rows that can no longer matter."""
    now = utcnow()
    async with database.transaction() as session:
        await session.execute(delete(RevokedToken).where(col(RevokedToken.expires_at) < now))
        await session.execute(delete(UsedAssertion).where(col(UsedAssertion.expires_at) < now))
        # Codes and refresh families: kept a day past expiry so a late replay is still
        # recognised as reuse (and revokes) rather than looking unknown.
        stale = now - timedelta(days=1)
        await session.execute(
            delete(AuthorizationCode).where(col(AuthorizationCode.expires_at) < stale)
        )
        await session.execute(delete(RefreshToken).where(col(RefreshToken.expires_at) < stale))


class RevocationList:
    """This replica's copy of the deny list: ``jti in revocations``."""

    def __init__(self) -> None:
        self._revoked: frozenset[str] = frozenset()

    def __contains__(self, jti: object) -> bool:
        return jti in self._revoked

    def add(self, jti: str) -> None:
        """Honour a revocation made here at once, before the next refresh."""
        self._revoked = self._revoked | {jti}

    async def refresh(self, database: Database) -> None:
        async with database.session() as session:
            rows = await session.execute(
                select(col(RevokedToken.jti)).where(col(RevokedToken.expires_at) >= utcnow())
            )
            self._revoked = frozenset(str(jti) for (jti,) in rows)
