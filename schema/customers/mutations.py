"""Customer mutations: create, update, upsert (identity resolution) and, for
administrators, merging and the review queue of proposed changes."""

from __future__ import annotations

import enum
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.scalars import JSON
from strawberry.types import Info

from hub import customers, identity, review
from hub.access import Record, Resource
from hub.customers import CustomerWrite
from hub.errors import FieldProblem
from hub.idempotency import RESULT
from hub.principal import Principal
from hub.proposals import Proposal
from schema.common import UserError, user_errors
from schema.context import Context
from schema.customers.inputs import CustomerInput, CustomerPatch
from schema.customers.types import Customer
from schema.ids import expect_id, to_global_id
from schema.writes import Idempotent, bad_id, run_write


@strawberry.enum(description="What a customer write did.")
class WriteOutcome(enum.Enum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    QUEUED = "queued"


@strawberry.enum(description="Identity keys a contribution is matched by, in order.")
class MatchKey(enum.Enum):
    EXTERNAL_REF = "external_ref"
    EMAIL = "email"
    PHONE = "phone"


@strawberry.type(
    description="A contribution that did not overwrite a field set by a source of higher "
    "precedence: it waits for an administrator's review."
)
class ProposedField:
    id: strawberry.ID
    field: str
    status: str


@strawberry.input(description="The customer's id in your own system.")
class ExternalRefInput:
    id: str
    system: str | None = strawberry.field(
        default=None, description="Which of your systems, if you have several (e.g. shop)"
    )


def _proposals(write: CustomerWrite | None) -> list[ProposedField]:
    if write is None:
        return []
    return [
        ProposedField(
            id=strawberry.ID(to_global_id("ProposedChange", p.id)), field=p.field, status=p.status
        )
        for p in write.proposals
    ]


@strawberry.type
class CustomerPayload:
    customer: Customer | None
    outcome: WriteOutcome | None
    proposed_changes: list[ProposedField]
    user_errors: list[UserError]

    @classmethod
    def of(cls, write: CustomerWrite | None, errors: list[UserError]) -> CustomerPayload:
        return cls(
            customer=None if write is None else Customer.from_record(write.record),
            outcome=None if write is None else WriteOutcome(write.outcome),
            proposed_changes=_proposals(write),
            user_errors=errors,
        )


@strawberry.type
class UpsertCustomerPayload(CustomerPayload):
    matched_by: MatchKey | None


@strawberry.type
class MergeCustomersPayload:
    customer: Customer | None
    moved: JSON | None = strawberry.field(description="Rows moved to the survivor, per table")
    filled_fields: list[str]
    user_errors: list[UserError]


@strawberry.type(description="A proposed change in the review queue (administrators).")
class ProposedChange:
    id: strawberry.ID
    customer_id: strawberry.ID
    field: str
    value: JSON | None
    current_value: JSON | None
    organization: str
    source: str | None
    base_version: int
    status: str
    created_at: datetime
    decided_at: datetime | None
    decided_by: str | None
    decision_reason: str | None

    @classmethod
    def of(cls, view: review.ProposalView) -> ProposedChange:
        return cls(
            id=strawberry.ID(to_global_id("ProposedChange", view.id)),
            customer_id=strawberry.ID(to_global_id("Customer", view.customer_id)),
            field=view.field,
            value=_json(view.value),
            current_value=_json(view.current_value),
            organization=view.organization,
            source=view.source,
            base_version=view.base_version,
            status=view.status,
            created_at=view.created_at,
            decided_at=view.decided_at,
            decided_by=view.decided_by,
            decision_reason=view.decision_reason,
        )


def _json(value: object) -> JSON | None:
    """A field value as JSON: decimals and times as strings."""
    if value is None or isinstance(value, str | int | bool | dict | list):
        return value  # type: ignore[return-value]
    return str(value)  # type: ignore[return-value]


@strawberry.type
class ProposedChangePayload:
    change: ProposedChange | None
    user_errors: list[UserError]


NOT_FOUND = "NOT_FOUND"


def _keyed(write: CustomerWrite, matched_by: identity.MatchKey | None = None) -> Record:
    """A customer write as the record an idempotent write stores and replays: the
    record plus what the write did under :data:`RESULT`."""
    result = {
        "outcome": write.outcome,
        "matched_by": None if matched_by is None else matched_by.value,
        "proposals": [
            {"id": str(p.id), "field": p.field, "status": p.status} for p in write.proposals
        ],
    }
    return {**write.record, RESULT: result}


def _unkeyed(record: Record | None) -> tuple[CustomerWrite | None, identity.MatchKey | None]:
    if record is None:
        return None, None
    result = record[RESULT]
    proposals = tuple(
        Proposal(id=uuid.UUID(p["id"]), field=p["field"], status=p["status"])
        for p in result["proposals"]
    )
    shown = {k: v for k, v in record.items() if k != RESULT}
    matched = result["matched_by"]
    write = CustomerWrite(shown, result["outcome"], proposals)
    return write, None if matched is None else identity.MatchKey(matched)


def _customer_id(raw: strawberry.ID) -> uuid.UUID | None:
    return expect_id(str(raw), "Customer")


@strawberry.type
class CustomerMutations:
    @strawberry.mutation
    async def create_customer(
        self, info: Info[Context, None], input: CustomerInput
    ) -> CustomerPayload:
        ctx = info.context
        fields = input.to_fields()

        async def create(session: AsyncSession) -> Record:
            return _keyed(await customers.create_customer(session, ctx.principal, fields))

        record, errors = await run_write(
            ctx,
            create,
            not_found_path=("input",),
            idempotency=Idempotent(
                "createCustomer", input.idempotency_key, fields, Resource.CUSTOMER
            ),
        )
        return CustomerPayload.of(_unkeyed(record)[0], errors)

    @strawberry.mutation(
        description="Change the given fields if the customer is still at "
        "expectedVersion; otherwise a CONFLICT error with currentVersion. Fields set by a "
        "source of higher precedence become proposed changes instead."
    )
    async def update_customer(
        self,
        info: Info[Context, None],
        id: strawberry.ID,
        expected_version: int,
        patch: CustomerPatch,
    ) -> CustomerPayload:
        ctx = info.context
        customer_id = _customer_id(id)
        if customer_id is None:
            return CustomerPayload.of(None, bad_id(("id",)))
        write, errors = await run_write(
            ctx,
            lambda s: customers.update_customer(
                s, ctx.principal, customer_id, expected_version, patch.to_fields()
            ),
            not_found_path=("id",),
        )
        return CustomerPayload.of(write, errors)

    @strawberry.mutation(
        description="Create the customer, or contribute to the existing one it matches "
        "(by your external reference, then normalised email, then phone): never a "
        "duplicate. Needs the right to create customers."
    )
    async def upsert_customer(
        self,
        info: Info[Context, None],
        input: CustomerInput,
        external_ref: ExternalRefInput | None = None,
        match_by: list[MatchKey] | None = None,
    ) -> UpsertCustomerPayload:
        ctx = info.context
        keys = [
            identity.MatchKey(k.value) for k in (list(MatchKey) if match_by is None else match_by)
        ]
        reference = (
            None
            if external_ref is None
            else identity.Reference(external_id=external_ref.id, system=external_ref.system)
        )
        fields = input.to_fields()

        async def upsert(session: AsyncSession) -> Record:
            result = await identity.upsert_customer(
                session, ctx.principal, fields, reference=reference, match_by=keys
            )
            return _keyed(result.write, result.matched_by)

        record, errors = await run_write(
            ctx,
            upsert,
            not_found_path=("input",),
            idempotency=Idempotent(
                "upsertCustomer",
                input.idempotency_key,
                {"input": fields, "externalRef": reference, "matchBy": keys},
                Resource.CUSTOMER,
            ),
        )
        write, matched_by = _unkeyed(record)
        base = CustomerPayload.of(write, errors)
        return UpsertCustomerPayload(
            customer=base.customer,
            outcome=base.outcome,
            proposed_changes=base.proposed_changes,
            user_errors=errors,
            matched_by=None if matched_by is None else MatchKey(matched_by.value),
        )

    @strawberry.mutation(
        description="Fold a duplicate customer into the survivor (administrators)."
    )
    async def merge_customers(
        self, info: Info[Context, None], survivor: strawberry.ID, duplicate: strawberry.ID
    ) -> MergeCustomersPayload:
        ctx = info.context
        survivor_id, duplicate_id = _customer_id(survivor), _customer_id(duplicate)
        if survivor_id is None or duplicate_id is None:
            path = ("survivor",) if survivor_id is None else ("duplicate",)
            return MergeCustomersPayload(
                customer=None, moved=None, filled_fields=[], user_errors=bad_id(path)
            )

        async def merge(session: AsyncSession) -> tuple[identity.MergeResult, Record | None]:
            result = await identity.merge_customers(
                session, ctx.principal, survivor_id, duplicate_id
            )
            return result, await customers.get_customer(session, ctx.principal, survivor_id)

        done, errors = await run_write(ctx, merge, not_found_path=("survivor",))
        if done is None:
            return MergeCustomersPayload(
                customer=None, moved=None, filled_fields=[], user_errors=errors
            )
        result, record = done
        return MergeCustomersPayload(
            customer=None if record is None else Customer.from_record(record),
            moved=result.moved,  # type: ignore[arg-type]
            filled_fields=list(result.filled),
            user_errors=[],
        )

    @strawberry.mutation(description="Apply a proposed change (administrators).")
    async def approve_change(
        self, info: Info[Context, None], id: strawberry.ID, reason: str | None = None
    ) -> ProposedChangePayload:
        return await _decide(info, id, reason, review.approve_change)

    @strawberry.mutation(description="Turn down a proposed change (administrators).")
    async def reject_change(
        self, info: Info[Context, None], id: strawberry.ID, reason: str | None = None
    ) -> ProposedChangePayload:
        return await _decide(info, id, reason, review.reject_change)


Decision = Callable[
    [AsyncSession, Principal, uuid.UUID, str | None], Awaitable[review.ProposalView]
]


async def _decide(
    info: Info[Context, None], id: strawberry.ID, reason: str | None, decide: Decision
) -> ProposedChangePayload:
    ctx = info.context
    change_id = expect_id(str(id), "ProposedChange")
    if change_id is None:
        return ProposedChangePayload(
            change=None,
            user_errors=user_errors(
                [FieldProblem(("id",), "no such proposed change", "NOT_FOUND")]
            ),
        )
    view, errors = await run_write(
        ctx,
        lambda s: decide(s, ctx.principal, change_id, reason),
        not_found_path=("id",),
    )
    return ProposedChangePayload(
        change=None if view is None else ProposedChange.of(view), user_errors=errors
    )
