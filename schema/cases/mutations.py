"""Case mutations: open, escalate feedback, update (status, priority, assignee...), notes."""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry.types import Info

from hub import cases
from hub.access import Record, Resource
from hub.errors import FieldProblem
from schema.cases.types import Case, CaseNote, CasePriority, CaseStatus
from schema.common import UserError, user_errors
from schema.context import Context
from schema.ids import expect_id
from schema.writes import Idempotent, bad_id, run_write

_ASSIGNEE = "The slug of a department or supplier organization"


@strawberry.input
class OpenCaseInput:
    customer_id: strawberry.ID
    subject: str
    description: str
    product: str | None = None
    priority: CasePriority = CasePriority.NORMAL
    assigned_to: str | None = strawberry.field(
        default=None, description=f"{_ASSIGNEE}; your own organization by default"
    )


@strawberry.input(description="The fields to change; a field left out stays as it is.")
class CasePatch:
    status: CaseStatus | None = None
    priority: CasePriority | None = None
    subject: str | None = None
    description: str | None = None
    product: str | None = None
    assigned_to: str | None = strawberry.field(default=None, description=_ASSIGNEE)


@strawberry.type
class CasePayload:
    case: Case | None
    user_errors: list[UserError]


@strawberry.type
class CaseNotePayload:
    note: CaseNote | None
    user_errors: list[UserError]


def _payload(record: Record | None, errors: list[UserError]) -> CasePayload:
    return CasePayload(
        case=None if record is None else Case.from_record(record), user_errors=errors
    )


def _not_found(path: tuple[str, ...], what: str) -> list[UserError]:
    """An ID that is not one of ``what``'s: the same answer as an unknown one."""
    return user_errors([FieldProblem(path, f"no such {what}", "NOT_FOUND")])


@strawberry.type
class CaseMutations:
    @strawberry.mutation(
        description="Open a case about a customer. Takes an Idempotency-Key header."
    )
    async def open_case(self, info: Info[Context, None], input: OpenCaseInput) -> CasePayload:
        ctx = info.context
        customer_id = expect_id(str(input.customer_id), "Customer")
        if customer_id is None:
            return _payload(None, bad_id(("input", "customerId")))
        opening = cases.CaseOpening(
            customer_id=customer_id,
            subject=input.subject,
            description=input.description,
            product=input.product,
            priority=input.priority.value,
            assigned_to=input.assigned_to,
        )
        record, errors = await run_write(
            ctx,
            lambda s: cases.open_case(s, ctx.principal, opening),
            not_found_path=("input", "customerId"),
            idempotency=Idempotent(
                operation="openCase", key=None, request=opening, resource=Resource.CASE
            ),
        )
        return _payload(record, errors)

    @strawberry.mutation(
        description="Open a case from a feedback item: about its customer and product, "
        "described by its text, linked to it."
    )
    async def escalate_feedback(
        self,
        info: Info[Context, None],
        feedback_id: strawberry.ID,
        subject: str | None = None,
        priority: CasePriority = CasePriority.NORMAL,
        assigned_to: Annotated[
            str | None,
            strawberry.argument(description=f"{_ASSIGNEE}; your own organization by default"),
        ] = None,
    ) -> CasePayload:
        ctx = info.context
        found = expect_id(str(feedback_id), "Feedback")
        if found is None:
            return _payload(None, _not_found(("feedbackId",), "feedback"))
        record, errors = await run_write(
            ctx,
            lambda s: cases.escalate_feedback(
                s,
                ctx.principal,
                found,
                subject=subject,
                priority=priority.value,
                assigned_to=assigned_to,
            ),
            not_found_path=("feedbackId",),
        )
        return _payload(record, errors)

    @strawberry.mutation(
        description="Change a case: status, priority, texts, product, or reassign it. With "
        "expectedVersion, a CONFLICT error unless the case is still at that version."
    )
    async def update_case(
        self,
        info: Info[Context, None],
        id: strawberry.ID,
        patch: CasePatch,
        expected_version: int | None = None,
    ) -> CasePayload:
        ctx = info.context
        case_id = expect_id(str(id), "Case")
        if case_id is None:
            return _payload(None, _not_found(("id",), "case"))
        change = cases.CasePatch(
            status=None if patch.status is None else patch.status.value,
            priority=None if patch.priority is None else patch.priority.value,
            subject=patch.subject,
            description=patch.description,
            product=patch.product,
            assigned_to=patch.assigned_to,
        )
        record, errors = await run_write(
            ctx,
            lambda s: cases.update_case(
                s, ctx.principal, case_id, change, expected_version=expected_version
            ),
            not_found_path=("id",),
        )
        return _payload(record, errors)

    @strawberry.mutation(description="Add a note to a case's thread, as your organization.")
    async def add_case_note(
        self, info: Info[Context, None], case_id: strawberry.ID, text: str
    ) -> CaseNotePayload:
        ctx = info.context
        found = expect_id(str(case_id), "Case")
        if found is None:
            return CaseNotePayload(note=None, user_errors=_not_found(("caseId",), "case"))
        record, errors = await run_write(
            ctx,
            lambda s: cases.add_case_note(s, ctx.principal, found, text),
            not_found_path=("caseId",),
        )
        return CaseNotePayload(
            note=None if record is None else CaseNote.from_record(record), user_errors=errors
        )
