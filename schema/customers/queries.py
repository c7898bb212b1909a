"""Customer queries."""

from __future__ import annotations

import enum
from datetime import datetime

import strawberry
from strawberry.types import Info

from hub import customers, identity, review
from schema.common import Connection, page_connection
from schema.context import Context
from schema.customers.mutations import ProposedChange
from schema.customers.types import Customer, LifecycleStage, Segment
from schema.ids import expect_id


@strawberry.input
class CustomerFilter:
    search: str | None = strawberry.field(default=None, description="Text in name or company")
    region: str | None = None
    segment: Segment | None = None
    lifecycle_stage: LifecycleStage | None = None
    updated_since: datetime | None = None

    def to_hub(self) -> customers.CustomerFilter:
        return customers.CustomerFilter(
            search=self.search,
            region=self.region,
            segment=None if self.segment is None else self.segment.value,
            lifecycle_stage=None if self.lifecycle_stage is None else self.lifecycle_stage.value,
            updated_since=self.updated_since,
        )


CustomerOrderField = strawberry.enum(customers.CustomerOrderField, name="CustomerOrderField")


@strawberry.enum
class OrderDirection(enum.Enum):
    ASC = "asc"
    DESC = "desc"


@strawberry.input
class CustomerOrder:
    field: CustomerOrderField = customers.CustomerOrderField.NAME  # type: ignore[valid-type]
    direction: OrderDirection = OrderDirection.ASC

    def to_hub(self) -> customers.CustomerOrder:
        return customers.CustomerOrder(
            field=self.field, descending=self.direction is OrderDirection.DESC
        )


@strawberry.type
class CustomerQueries:
    @strawberry.field(description="A customer by global ID; null when unknown or not yours.")
    async def customer(self, info: Info[Context, None], id: strawberry.ID) -> Customer | None:
        return await Customer.resolve_reference(info, id)

    @strawberry.field
    async def customers(
        self,
        info: Info[Context, None],
        first: int | None = None,
        after: str | None = None,
        filter: CustomerFilter | None = None,
        order_by: CustomerOrder | None = None,
    ) -> Connection[Customer]:
        ctx = info.context
        flt = (filter or CustomerFilter()).to_hub()
        return await page_connection(
            ctx.database,
            lambda session: customers.list_customers(
                session,
                ctx.principal,
                flt=flt,
                order=order_by.to_hub() if order_by is not None else None,
                first=first,
                after=after,
                default_size=ctx.settings.default_page_size,
                max_size=ctx.settings.max_page_size,
            ),
            lambda session: customers.count_customers(session, ctx.principal, flt),
            Customer.from_record,
        )


@strawberry.type(description="Customers that look like one person (administrators).")
class DuplicateGroup:
    reason: str = strawberry.field(description="email or phone: the identity key they share")
    customers: list[Customer]


@strawberry.type
class ReviewQueries:
    @strawberry.field(
        description="Groups of customers sharing a normalised email or phone, largest "
        "first (administrators): candidates for mergeCustomers."
    )
    async def duplicate_candidates(
        self, info: Info[Context, None], first: int = 50
    ) -> list[DuplicateGroup]:
        ctx = info.context
        async with ctx.database.session() as session:
            groups = await identity.duplicate_candidates(session, ctx.principal, limit=first)
            ids = [i for g in groups for i in g.customer_ids]
            records = await customers.get_customers(session, ctx.principal, ids)
        return [
            DuplicateGroup(
                reason=g.reason,
                customers=[
                    Customer.from_record(records[i]) for i in g.customer_ids if i in records
                ],
            )
            for g in groups
        ]

    @strawberry.field(description="The review queue of proposed changes (administrators).")
    async def proposed_changes(
        self,
        info: Info[Context, None],
        status: str | None = "pending",
        customer_id: strawberry.ID | None = None,
        first: int = 50,
    ) -> list[ProposedChange]:
        ctx = info.context
        customer = None
        if customer_id is not None:
            customer = expect_id(str(customer_id), "Customer")
            if customer is None:
                return []
        async with ctx.database.session() as session:
            views = await review.list_proposals(
                session, ctx.principal, status=status, customer_id=customer, limit=first
            )
        return [ProposedChange.of(view) for view in views]
