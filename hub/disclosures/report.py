"""Reports over the disclosure index, for administrators only.

:func:`disclosures_of` lists every disclosure of one customer (customers merged into it
included) as :class:`DisclosureView` rows, bringing the index up to date first;
:data:`EXPORT_COLUMNS` is their column order in exports. No access check here: the
callers (:mod:`hub.admin.audit`, the admin export) check.

May import :mod:`hub.disclosures.index`, :mod:`hub.disclosures.write` and
:mod:`hub.models`; never :mod:`hub.access`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from hub.disclosures.index import events_naming, index_pending
from hub.disclosures.write import records_of_event
from hub.models import AuditEvent


@dataclass(frozen=True)
class DisclosureView:
    """One record of a customer disclosed to an organization, for access reports."""

    at: datetime
    organization: str
    client: str
    resource: str
    record_id: uuid.UUID
    customer_id: uuid.UUID
    fields: list[str]
    policy_version: int | None
    event_seq: int
    operation: str | None

    def as_json(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "organization": self.organization,
            "client": self.client,
            "customer_id": str(self.customer_id),
            "resource": self.resource,
            "record_id": str(self.record_id),
            "fields": self.fields,
            "policy_version": self.policy_version,
            "event_seq": self.event_seq,
            "operation": self.operation,
        }


EXPORT_COLUMNS = (
    "at",
    "organization",
    "client",
    "customer_id",
    "resource",
    "record_id",
    "fields",
    "policy_version",
    "event_seq",
    "operation",
)


async def merged_into(session: AsyncSession, customer_id: uuid.UUID) -> set[uuid.UUID]:
    """The customer and every customer merged into it, however many merges ago (from the
    ``customer.merge`` events of the audit log)."""
    found, frontier = {customer_id}, [customer_id]
    while frontier:
        targets = [f"Customer:{c}" for c in frontier]
        rows = await session.execute(
            select(col(AuditEvent.details)).where(
                col(AuditEvent.action) == "customer.merge", col(AuditEvent.target).in_(targets)
            )
        )
        merged = {uuid.UUID(details["duplicate"]) for details in rows.scalars()} - found
        found |= merged
        frontier = list(merged)
    return found


async def disclosures_of(session: AsyncSession, customer_id: uuid.UUID) -> list[DisclosureView]:
    """Every disclosure of one customer, oldest first (no access check: callers check).
    The index is brought up to date first, in the session, so the report is complete.
    Disclosures of customers merged into this one count as its own: reads recorded (or
    indexed) after a merge still name the duplicate.

    The index finds the events; each event says which records and fields it disclosed,
    and those about these customers are the report's rows."""
    await index_pending(session)
    customers = await merged_into(session, customer_id)
    events = events_naming((await session.connection()).dialect.name, customers)
    statement = (
        select(
            col(AuditEvent.seq),
            col(AuditEvent.at),
            col(AuditEvent.organization),
            col(AuditEvent.client),
            col(AuditEvent.details),
        )
        .where(col(AuditEvent.seq).in_(events))
        .order_by(col(AuditEvent.seq))
    )
    wanted = {str(c) for c in customers}
    views = []
    for seq, at, organization, client, details in (await session.execute(statement)).all():
        found = [
            (resource, record, about, fields)
            for resource, record, about, fields in records_of_event(details)
            if about in wanted
        ]
        for resource, record, about, fields in sorted(found):
            views.append(
                DisclosureView(
                    at=at,
                    organization=organization or "",
                    client=client or "",
                    resource=resource,
                    record_id=uuid.UUID(record),
                    customer_id=uuid.UUID(about),
                    fields=list(fields),
                    policy_version=details.get("policy_version"),
                    event_seq=seq,
                    operation=details.get("operation"),
                )
            )
    return views
