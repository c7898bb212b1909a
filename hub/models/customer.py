"""Customers, who serves them (CustomerPartner), and their references in other systems."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Column, Numeric, UniqueConstraint
from sqlmodel import Field, SQLModel

from hub.models._sealed import EncryptedText
from hub.models._types import UTCDateTime, new_id, utcnow

CUSTOMER_KINDS = ("person", "company")
LIFECYCLE_STAGES = ("lead", "prospect", "customer", "churned")
SEGMENTS = ("consumer", "smb", "mid_market", "enterprise")


class Customer(SQLModel, table=True):
    __tablename__ = "customer"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    kind: str = Field(default="person", max_length=16)
    name: str = Field(max_length=200, index=True)
    # Sensitive: encrypted at rest; exact matching goes through the keyed blind indexes.
    email: str | None = Field(default=None, sa_type=EncryptedText("customer.email"))
    phone: str | None = Field(default=None, sa_type=EncryptedText("customer.phone"))
    email_index: str | None = Field(default=None, max_length=64, index=True)
    phone_index: str | None = Field(default=None, max_length=64, index=True)
    company: str | None = Field(default=None, max_length=200, index=True)
    title: str | None = Field(default=None, max_length=200)
    city: str | None = Field(default=None, max_length=120)
    region: str | None = Field(default=None, max_length=64, index=True)
    country: str | None = Field(default=None, max_length=2)
    segment: str | None = Field(default=None, max_length=32, index=True)
    lifecycle_stage: str = Field(default="lead", max_length=32, index=True)
    lifetime_value: Decimal | None = Field(default=None, sa_column=Column(Numeric(14, 2)))
    consent_share_with_partners: bool = False
    consent_marketing_opt_in: bool = False
    consent_given_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    consent_source: str | None = Field(default=None, max_length=120)
    traits: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    provenance: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    version: int = 1
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)


class CustomerPartner(SQLModel, table=True):
    __tablename__ = "customer_partner"
    __table_args__ = (UniqueConstraint("customer_id", "organization_id"),)

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    customer_id: uuid.UUID = Field(foreign_key="customer.id", index=True)
    organization_id: uuid.UUID = Field(foreign_key="organization.id", index=True)
    role: str = Field(max_length=32)
    since: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ExternalRef(SQLModel, table=True):
    __tablename__ = "external_ref"
    __table_args__ = (UniqueConstraint("source", "external_id"),)

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    source: str = Field(max_length=64)
    external_id: str = Field(max_length=200)
    customer_id: uuid.UUID = Field(foreign_key="customer.id", index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
