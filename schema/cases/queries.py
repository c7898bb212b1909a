"""Case queries."""

from __future__ import annotations

import strawberry
from sqlalchemy import ColumnElement
from strawberry.types import Info

from hub import cases
from hub.access import Resource
from hub.principal import Principal
from schema.cases.types import Case, CasePriority, CaseStatus
from schema.common import Connection, page_connection
from schema.context import Context
from schema.ids import customer_filter, expect_id


@strawberry.input
class CaseFilter:
    status: CaseStatus | None = None
    priority: CasePriority | None = None
    product: str | None = None
    customer_id: strawberry.ID | None = None
    assigned_to: str | None = strawberry.field(
        default=None, description="The slug of the organization the case is assigned to"
    )

    def to_hub(self) -> cases.CaseFilter:
        return cases.CaseFilter(
            status=None if self.status is None else self.status.value,
            priority=None if self.priority is None else self.priority.value,
            product=self.product,
            # An ID that is not a customer's matches nothing, like an unknown one.
            customer_id=customer_filter(self.customer_id),
            assigned_to=self.assigned_to,
        )

    def conditions(self, principal: Principal) -> list[ColumnElement[bool]]:
        """What the list selects (the compiled read path's ``ListFilter``)."""
        return cases.filter_conditions(principal, self.to_hub())


@strawberry.type
class CaseQueries:
    @strawberry.field(description="Support cases the caller may see, newest first.")
    async def cases(
        self,
        info: Info[Context, None],
        first: int | None = None,
        after: str | None = None,
        filter: CaseFilter | None = None,
    ) -> Connection[Case]:
        ctx = info.context
        flt = (filter or CaseFilter()).to_hub()
        return await page_connection(
            ctx.database,
            lambda session: cases.list_cases(
                session,
                ctx.principal,
                flt=flt,
                first=first,
                after=after,
                default_size=ctx.settings.default_page_size,
                max_size=ctx.settings.max_page_size,
            ),
            lambda session: cases.count_cases(session, ctx.principal, flt),
            Case.from_record,
        )

    @strawberry.field(description="One case by global ID; null when unknown or not yours.")
    async def case(self, info: Info[Context, None], id: strawberry.ID) -> Case | None:
        case_id = expect_id(str(id), "Case")
        if case_id is None:
            return None
        record = await info.context.loaders.records.load((Resource.CASE, case_id))
        return None if record is None else Case.from_record(record)
