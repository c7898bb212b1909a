"""Organizations: the operator, its departments and its partners."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from hub.models._types import UTCDateTime, new_id, utcnow


class OrgKind(enum.StrEnum):
    OPERATOR = "operator"
    DEPARTMENT = "department"
    SUPPLIER = "supplier"
    VENDOR = "vendor"
    DISTRIBUTOR = "distributor"

    @property
    def is_partner(self) -> bool:
        return self in PARTNER_KINDS


PARTNER_KINDS = frozenset({OrgKind.SUPPLIER, OrgKind.VENDOR, OrgKind.DISTRIBUTOR})


class Organization(SQLModel, table=True):
    __tablename__ = "organization"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    slug: str = Field(max_length=64, unique=True, index=True)
    name: str = Field(max_length=200)
    kind: str = Field(max_length=16)
    attributes: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    active: bool = True
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
