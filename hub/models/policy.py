"""Sharing-policy versions and the audit log."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Index, Text, Uuid
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine
from sqlmodel import Field, SQLModel

from hub.models._types import UTCDateTime, new_id, utcnow


class PolicyVersion(SQLModel, table=True):
    """One published version of the sharing policy. Rows are only ever inserted: the
    newest ``number`` is in force, and a rollback inserts a copy of an older source."""

    __tablename__ = "policy_version"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    number: int = Field(unique=True, index=True)
    source: str = Field(sa_column=Column(Text, nullable=False))
    format: str = Field(default="yaml", max_length=8)
    sha256: str = Field(max_length=64)
    action: str = Field(max_length=16)  # install | publish | rollback
    restores: int | None = None  # the version a rollback copied
    author: str = Field(max_length=200)
    reason: str = Field(max_length=2000)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class AuditEvent(SQLModel, table=True):
    """One entry of the append-only, hash-chained audit log (see :mod:`hub.audit`).

    ``seq`` numbers the chain without gaps; ``hash`` is the SHA-256 of ``prev_hash`` and
    the event's canonical content, so changing, deleting or reordering any row breaks
    every later link."""

    __tablename__ = "audit_event"
    # One action's events in chain order (the disclosure index reads the ``read`` events
    # after the last one indexed; the admin list filters by action): told only
    # ``action = ? AND seq > ?``, SQLite's planner took an index on ``action`` alone and
    # read and sorted every ``read`` event each time, a cost that grew with the log.
    __table_args__ = (Index("ix_audit_event_action_seq", "action", "seq"),)

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    seq: int = Field(sa_column=Column(BigInteger, nullable=False, unique=True))
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    actor: str = Field(max_length=200)
    organization: str | None = Field(default=None, max_length=64, index=True)
    client: str | None = Field(default=None, max_length=200)
    action: str = Field(max_length=64)
    target: str = Field(max_length=200)
    details: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)


class CustomerIds(TypeDecorator[list[uuid.UUID]]):
    """Customer ids as one column: ``uuid[]`` on PostgreSQL (which indexes the elements
    with GIN), a JSON array of canonical UUID texts on SQLite (which cannot index
    elements: its :class:`Disclosure` rows name one customer each)."""

    impl = JSON
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(postgresql.ARRAY(Uuid()))
        return dialect.type_descriptor(JSON())

    def process_bind_param(
        self, value: list[uuid.UUID] | None, dialect: Dialect
    ) -> list[Any] | None:
        if value is None or dialect.name == "postgresql":
            return value
        return [str(customer) for customer in value]

    def process_result_value(self, value: list[Any] | None, dialect: Dialect) -> list[uuid.UUID]:
        return [c if isinstance(c, uuid.UUID) else uuid.UUID(c) for c in value or ()]


class Disclosure(SQLModel, table=True):
    """That one audited read disclosed something of customers to an organization: an index
    over the ``read`` audit events, for data-subject access reports (:mod:`hub.disclosures`
    builds and reads it). The event itself says which records and fields.

    PostgreSQL keeps one row per event, naming all its customers in ``customer_ids``
    (a GIN index finds the events of a customer); SQLite, which has no such index, one
    row per event and customer (``customer_ids`` names that one, a b-tree finds it).
    ``id`` is the event's ``seq`` shifted left 24 bits, plus the customer's position in
    the event (from 1) on SQLite: the rows of an event are only ever appended, in the
    order of the events, and ``max(id)`` says how far the index goes."""

    __tablename__ = "disclosure"

    id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    event_seq: int = Field(sa_column=Column(BigInteger, nullable=False))
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    organization: str = Field(max_length=64)
    client: str = Field(max_length=200)
    policy_version: int | None = None
    customer_ids: list[uuid.UUID] = Field(sa_column=Column(CustomerIds, nullable=False))

    __table_args__ = (
        # GIN on PostgreSQL: an event's fifty customers go to the index's pending list in
        # one insert, and reach its tree sorted and in bulk (PostgreSQL cleans the list
        # when it outgrows gin_pending_list_limit, or at vacuum). SQLite ignores the
        # option: a b-tree on the one customer of each row.
        Index("ix_disclosure_customer_ids", "customer_ids", postgresql_using="gin"),
    )
