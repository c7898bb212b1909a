"""Data-encryption keys for sensitive customer fields (see :mod:`hub.vault`)."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from hub.models._types import UTCDateTime, utcnow


class DataKey(SQLModel, table=True):
    """One random AES-256 data key, wrapped under a key derived from the master key.
    The newest is active for new values; older ones open values not yet re-encrypted."""

    __tablename__ = "data_key"

    kid: str = Field(primary_key=True, max_length=32)
    wrapped: str = Field(max_length=200)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
