"""Audit queries (administrators only: the hub functions check)."""

from __future__ import annotations

import uuid

import strawberry
from strawberry.types import Info

from hub.admin import audit as audit_admin
from hub.errors import BadInputError
from schema.audit.extension import disclosure_writer
from schema.audit.types import AuditEvent, AuditEventFilter, CustomerDisclosure
from schema.common import Connection, connection
from schema.context import Context
from schema.ids import expect_id


def customer_id_of(value: str) -> uuid.UUID:
    """A customer's global ID or a plain UUID."""
    found = expect_id(value, "Customer")
    if found is not None:
        return found
    try:
        return uuid.UUID(value)
    except ValueError:
        raise BadInputError("customerId must be a customer's global ID or a UUID") from None


@strawberry.type
class AuditQueries:
    @strawberry.field(description="The audit log, newest first (administrators only).")
    async def audit_events(
        self,
        info: Info[Context, None],
        filter: AuditEventFilter | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[AuditEvent]:
        ctx = info.context
        flt = (filter or AuditEventFilter()).to_filter()
        async with ctx.database.session() as session:
            page = await audit_admin.audit_events(
                session,
                ctx.principal,
                flt,
                first=first,
                after=after,
                default_size=ctx.settings.default_page_size,
                max_size=ctx.settings.max_page_size,
                writer=disclosure_writer(ctx.request),
            )

        async def count() -> int:
            async with ctx.database.session() as session:
                return await audit_admin.count_audit_events(session, ctx.principal, flt)

        return connection(page, AuditEvent.of, count)

    @strawberry.field(
        description="Which organizations received which fields of this customer, and when "
        "(administrators only; the basis of a data-subject access report)."
    )
    async def customer_disclosures(
        self, info: Info[Context, None], customer_id: strawberry.ID
    ) -> list[CustomerDisclosure]:
        ctx = info.context
        async with ctx.database.session() as session:
            views = await audit_admin.customer_disclosures(
                session,
                ctx.principal,
                customer_id_of(str(customer_id)),
                disclosure_writer(ctx.request),
            )
        return [CustomerDisclosure.of(view) for view in views]
