"""Feedback queries."""

from __future__ import annotations

from datetime import datetime

import strawberry
from sqlalchemy import ColumnElement
from strawberry.types import Info

from hub import feedback
from hub.principal import Principal
from schema.common import Connection, page_connection
from schema.context import Context
from schema.feedback.types import Feedback, FeedbackKind, FeedbackStatus
from schema.ids import customer_filter


@strawberry.input
class FeedbackFilter:
    kind: FeedbackKind | None = None
    status: FeedbackStatus | None = None
    product: str | None = None
    customer_id: strawberry.ID | None = None
    since: datetime | None = None

    def to_hub(self) -> feedback.FeedbackFilter:
        return feedback.FeedbackFilter(
            kind=None if self.kind is None else self.kind.value,
            status=None if self.status is None else self.status.value,
            product=self.product,
            customer_id=customer_filter(self.customer_id),
            since=self.since,
        )

    def conditions(self, principal: Principal) -> list[ColumnElement[bool]]:
        """What the list selects (the compiled read path's ``ListFilter``)."""
        return feedback.filter_conditions(principal, self.to_hub())


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
        flt = (filter or FeedbackFilter()).to_hub()
        return await page_connection(
            ctx.database,
            lambda session: feedback.list_feedback(
                session,
                ctx.principal,
                flt=flt,
                first=first,
                after=after,
                default_size=ctx.settings.default_page_size,
                max_size=ctx.settings.max_page_size,
            ),
            lambda session: feedback.count_feedback(session, ctx.principal, flt),
            Feedback.from_record,
        )
