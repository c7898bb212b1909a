"""The signed checkpoint of the audit chain's head (see :mod:`hub.audit_anchor`)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, SmallInteger
from sqlmodel import Field, SQLModel

from hub.models._types import UTCDateTime


class AuditAnchor(SQLModel, table=True):
    """One row (``id`` 1): the ``seq`` and ``hash`` of the newest audit event, when they
    were anchored, and an HMAC over the three under a key derived from the master key,
    which the database never holds. Every append batch updates it in its transaction."""

    __tablename__ = "audit_anchor"

    id: int = Field(
        default=1, sa_column=Column(SmallInteger, primary_key=True, autoincrement=False)
    )
    seq: int = Field(sa_column=Column(BigInteger, nullable=False))
    hash: str = Field(max_length=64)
    at: datetime = Field(sa_type=UTCDateTime)
    mac: str = Field(max_length=64)
