"""Feedback queries."""

from __future__ import annotations

import uuid
from datetime import datetime

import strawberry
from strawberry.types import Info

from hub import feedback
from schema.common import Connection, connection
from schema.context import Context
from schema.feedback.types import Feedback, FeedbackKind, FeedbackStatus
from schema.ids import expect_id


@strawberry.input
class FeedbackFilter:
    kind: FeedbackKind | None = None
    status: FeedbackStatus | None = None
    product: str | None = None
    customer_id: strawberry.ID | None = None
    since: datetime | None = None


@strawberry.type
class FeedbackQueries:
    @strawberry.field(description="Feedback the caller may see, newest first.")
    async def feedback(
        self,
        info: Info[Context, None],
        first: int | None = None,
        after: str | None = None,
        filter: FeedbackFilter | None = None,
    ) -> Connection[Feedback]:
        ctx = info.context
        given = filter or FeedbackFilter()
        customer_id = None
        if given.customer_id is not None:
            customer_id = expect_id(str(given.customer_id), "Customer")
            if customer_id is None:
                # An ID that is not a customer's matches nothing, like an unknown one.
                customer_id = _NO_CUSTOMER
        flt = feedback.FeedbackFilter(
            kind=None if given.kind is None else given.kind.value,
            status=None if given.status is None else given.status.value,
            product=given.product,
            customer_id=customer_id,
            since=given.since,
        )
        async with ctx.database.session() as session:
            page = await feedback.list_feedback(
                session,
                ctx.principal,
                flt=flt,
                first=first,
                after=after,
                default_size=ctx.settings.default_page_size,
                max_size=ctx.settings.max_page_size,
            )

        async def count() -> int:
            async with ctx.database.session() as session:
                return await feedback.count_feedback(session, ctx.principal, flt)

        return connection(page, Feedback.from_record, count)


_NO_CUSTOMER = uuid.UUID(int=0)
