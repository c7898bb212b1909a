"""OAuth clients and the hub's signing keys."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from hub.models._types import UTCDateTime, new_id, utcnow


class Client(SQLModel, table=True):
    __tablename__ = "client"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    client_id: str = Field(max_length=64, unique=True, index=True)
    organization_id: uuid.UUID = Field(foreign_key="organization.id", index=True)
    name: str = Field(max_length=200)
    # SHA-256 of a 256-bit random secret: high entropy makes a slow hash unnecessary and
    # keeps the token endpoint fast (argon2 is for human passwords).
    secret_hash: str | None = Field(default=None, max_length=128)
    # The secret replaced by the last rotation keeps working until this time (overlap).
    previous_secret_hash: str | None = Field(default=None, max_length=128)
    previous_secret_expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # The client's public keys for private_key_jwt (RFC 7523 §2.2); never fetched remotely.
    jwks: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    grant_types: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    scopes: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    # authorization_code clients: compared by exact string match (RFC 9700 §4.1.3).
    redirect_uris: list[str] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False, server_default="[]")
    )
    active: bool = True
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class SigningKey(SQLModel, table=True):
    __tablename__ = "signing_key"

    kid: str = Field(primary_key=True, max_length=64)
    algorithm: str = Field(max_length=16)
    # The private JWK, encrypted with the hub's master key (AES-GCM).
    private_jwk_encrypted: str
    public_jwk: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    retired_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
