"""Staff users who sign in to the console, and the state of their OAuth sessions:
authorization codes (RFC 6749 §4.1) and refresh-token families (RFC 9700 §4.14)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from hub.models._types import UTCDateTime, new_id, utcnow

STAFF_ROLES = ("admin", "policy_editor", "analyst", "member")


class StaffUser(SQLModel, table=True):
    __tablename__ = "staff_user"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    organization_id: uuid.UUID = Field(foreign_key="organization.id", index=True)
    # Normalised to lower case before it is stored or looked up.
    email: str = Field(max_length=254, unique=True, index=True)
    name: str = Field(max_length=200)
    # argon2id (argon2-cffi): passwords are low-entropy, unlike client secrets.
    password_hash: str = Field(max_length=255)
    roles: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    active: bool = True
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class AuthorizationCode(SQLModel, table=True):
    """A code issued at ``/oauth/authorize``: stored hashed, single use, short-lived."""

    __tablename__ = "authorization_code"

    code_hash: str = Field(primary_key=True, max_length=64)
    client_id: str = Field(max_length=64)
    user_id: uuid.UUID = Field(foreign_key="staff_user.id", index=True)
    redirect_uri: str = Field(max_length=2000)
    # Never empty for codes the hub issues; nullable so a code without one is refused
    # explicitly at the token endpoint (the PKCE downgrade check, RFC 9700 §2.1.1).
    code_challenge: str | None = Field(default=None, max_length=128)
    scope: str = Field(max_length=2000)
    expires_at: datetime = Field(sa_type=UTCDateTime, index=True)
    used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # The refresh-token family the first redemption started: revoked if the code is reused.
    family_id: uuid.UUID | None = None


class RefreshToken(SQLModel, table=True):
    """One refresh token of a rotating family, and the access token issued with it."""

    __tablename__ = "refresh_token"

    token_hash: str = Field(primary_key=True, max_length=64)
    family_id: uuid.UUID = Field(index=True)
    client_id: str = Field(max_length=64)
    user_id: uuid.UUID = Field(foreign_key="staff_user.id", index=True)
    scope: str = Field(max_length=2000)
    access_jti: str = Field(max_length=255)
    access_expires_at: datetime = Field(sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime, index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
