"""Assignment and consent mutations."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.types import Info

from hub import assignments, consent
from hub.access import Resource
from schema.common import UserError
from schema.context import Context
from schema.customers.types import Customer, CustomerPartner
from schema.ids import expect_id
from schema.writes import IDEMPOTENCY_KEY, Idempotent, bad_id, run_write


@strawberry.input
class RecordConsentInput:
    customer_id: strawberry.ID
    source: str = strawberry.field(
        description="Where the consent was given, e.g. preference-centre or a form's name"
    )
    share_with_partners: bool | None = None
    marketing_opt_in: bool | None = None
    given_at: datetime | None = strawberry.field(
        default=None, description="When the customer gave it (default: now)"
    )
    idempotency_key: str | None = strawberry.field(default=None, description=IDEMPOTENCY_KEY)


@strawberry.type
class ConsentPayload:
    customer: Customer | None
    user_errors: list[UserError]


@strawberry.type
class AssignmentPayload:
    assignment: CustomerPartner | None
    user_errors: list[UserError]


@strawberry.type
class UnassignmentPayload:
    removed: bool = strawberry.field(
        description="False when the partner was not assigned (nothing to do)."
    )
    user_errors: list[UserError]


@strawberry.type
class ContributionMutations:
    @strawberry.mutation(
        description="Record the consent the customer gave (at least one of "
        "shareWithPartners and marketingOptIn); bumps the customer's version."
    )
    async def record_consent(
        self, info: Info[Context, None], input: RecordConsentInput
    ) -> ConsentPayload:
        ctx = info.context
        customer_id = expect_id(str(input.customer_id), "Customer")
        if customer_id is None:
            return ConsentPayload(customer=None, user_errors=bad_id(("input", "customerId")))
        data = consent.ConsentInput(
            customer_id=customer_id,
            source=input.source,
            share_with_partners=input.share_with_partners,
            marketing_opt_in=input.marketing_opt_in,
            given_at=input.given_at,
        )
        record, errors = await run_write(
            ctx,
            lambda s: consent.record_consent(s, ctx.principal, data),
            not_found_path=("input", "customerId"),
            idempotency=Idempotent(
                operation="recordConsent",
                key=input.idempotency_key,
                request=data,
                resource=Resource.CUSTOMER,
            ),
        )
        return ConsentPayload(
            customer=None if record is None else Customer.from_record(record), user_errors=errors
        )

    @strawberry.mutation(
        description="Assign a partner organization (slug or id) to serve the customer "
        "in a role (operator administrators only). Assigning again returns the same "
        "assignment, with the role given."
    )
    async def assign_partner(
        self, info: Info[Context, None], customer_id: strawberry.ID, partner: str, role: str
    ) -> AssignmentPayload:
        ctx = info.context
        parsed = expect_id(str(customer_id), "Customer")
        if parsed is None:
            return AssignmentPayload(assignment=None, user_errors=bad_id(("customerId",)))
        record, errors = await run_write(
            ctx,
            lambda s: assignments.assign_partner(s, ctx.principal, parsed, partner, role),
            not_found_path=("customerId",),
            retry_duplicate=True,  # a concurrent identical assignment: return it
        )
        return AssignmentPayload(
            assignment=None if record is None else CustomerPartner.from_record(record),
            user_errors=errors,
        )

    @strawberry.mutation(
        description="End a partner's assignment to the customer (operator "
        "administrators only); removed is false if it was not assigned."
    )
    async def unassign_partner(
        self, info: Info[Context, None], customer_id: strawberry.ID, partner: str
    ) -> UnassignmentPayload:
        ctx = info.context
        parsed = expect_id(str(customer_id), "Customer")
        if parsed is None:
            return UnassignmentPayload(removed=False, user_errors=bad_id(("customerId",)))
        removed, errors = await run_write(
            ctx,
            lambda s: assignments.unassign_partner(s, ctx.principal, parsed, partner),
            not_found_path=("customerId",),
        )
        return UnassignmentPayload(removed=bool(removed), user_errors=errors)
