"""The audit log and disclosure reports, for administrators: :mod:`hub.audit` and
:mod:`hub.disclosures` behind the admin check.

Each function calls :meth:`hub.access.Access.require_admin` first, before reading anything.
"""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from hub import audit, disclosures
from hub.access import access
from hub.pagination import Page, page_size
from hub.principal import Principal


async def audit_events(
    session: AsyncSession,
    principal: Principal,
    flt: audit.AuditFilter,
    *,
    first: int | None,
    after: str | None,
    default_size: int,
    max_size: int,
    writer: disclosures.DisclosureWriter | None = None,
) -> Page[audit.EventView]:
    """A page of the audit log, newest first; the reads pending in this process are
    written first (see :func:`customer_disclosures`)."""
    access.require_admin(principal)
    if writer is not None:
        await writer.flush()
    size = page_size(first, default=default_size, maximum=max_size)
    return await audit.events_page(session, flt, size=size, after=after)


async def count_audit_events(
    session: AsyncSession, principal: Principal, flt: audit.AuditFilter
) -> int:
    access.require_admin(principal)
    return await audit.count_matching(session, flt)


async def customer_disclosures(
    session: AsyncSession,
    principal: Principal,
    customer_id: uuid.UUID,
    writer: disclosures.DisclosureWriter | None = None,
) -> list[disclosures.DisclosureView]:
    """Which organizations received which fields of this customer, and when: the basis of
    a data-subject access report. The reads pending in this process are written first
    (``writer``), so a report right after a read includes it; reads pending on *other*
    replicas arrive within their flush interval (docs/audit.md)."""
    access.require_admin(principal)
    if writer is not None:
        await writer.flush()
        await writer.index()  # committed, so the next report starts from here
    return await disclosures.disclosures_of(session, customer_id)
