"""Shared OAuth state every replica must see: used client assertions and revoked tokens."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from hub.models._types import UTCDateTime, utcnow


class UsedAssertion(SQLModel, table=True):
    """A client assertion's ``jti``, kept until its ``exp`` so it is accepted once (RFC 7523 §3)."""

    __tablename__ = "used_assertion"
    __table_args__ = (UniqueConstraint("client_id", "jti", name="uq_used_assertion_client_jti"),)

    id: int | None = Field(default=None, primary_key=True)
    client_id: str = Field(max_length=64)
    jti: str = Field(max_length=255)
    expires_at: datetime = Field(sa_type=UTCDateTime, index=True)


class RevokedToken(SQLModel, table=True):
    """An access token's ``jti`` revoked before its ``exp`` (RFC 7009 §2)."""

    __tablename__ = "revoked_token"

    jti: str = Field(primary_key=True, max_length=255)
    client_id: str = Field(max_length=64)
    expires_at: datetime = Field(sa_type=UTCDateTime, index=True)
    revoked_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
