"""Customer mutations."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from hub import customers
from schema.common import UserError
from schema.context import Context
from schema.customers.inputs import CustomerInput, CustomerPatch
from schema.customers.types import Customer
from schema.ids import expect_id
from schema.writes import bad_id, run_write


@strawberry.type
class CustomerPayload:
    customer: Customer | None
    user_errors: list[UserError]


@strawberry.type
class CustomerMutations:
    @strawberry.mutation
    async def create_customer(
        self, info: Info[Context, None], input: CustomerInput
    ) -> CustomerPayload:
        ctx = info.context
        record, errors = await run_write(
            ctx,
            lambda s: customers.create_customer(s, ctx.principal, input.to_fields()),
            not_found_path=("input",),
        )
        return CustomerPayload(
            customer=None if record is None else Customer.from_record(record), user_errors=errors
        )

    @strawberry.mutation(
        description="Change the given fields if the customer is still at "
        "expectedVersion; otherwise a CONFLICT error with currentVersion."
    )
    async def update_customer(
        self,
        info: Info[Context, None],
        id: strawberry.ID,
        expected_version: int,
        patch: CustomerPatch,
    ) -> CustomerPayload:
        ctx = info.context
        customer_id = expect_id(str(id), "Customer")
        if customer_id is None:
            return CustomerPayload(customer=None, user_errors=bad_id(("id",)))
        record, errors = await run_write(
            ctx,
            lambda s: customers.update_customer(
                s, ctx.principal, customer_id, expected_version, patch.to_fields()
            ),
            not_found_path=("id",),
        )
        return CustomerPayload(
            customer=None if record is None else Customer.from_record(record), user_errors=errors
        )
