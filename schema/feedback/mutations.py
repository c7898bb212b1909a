"""Feedback mutations."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from hub import feedback
from hub.access import Resource
from hub.errors import FieldProblem
from schema.common import Channel, UserError, user_errors
from schema.context import Context
from schema.feedback.types import Feedback, FeedbackKind, FeedbackStatus, Scale, Visibility
from schema.ids import expect_id
from schema.writes import IDEMPOTENCY_KEY, Idempotent, bad_id, run_write


@strawberry.input
class SubmitFeedbackInput:
    customer_id: strawberry.ID
    channel: Channel
    kind: FeedbackKind
    text: str
    scale: Scale | None = None
    score: int | None = strawberry.field(default=None, description="Within the scale's range")
    product: str | None = None
    tags: list[str] = strawberry.field(default_factory=list)
    visibility: Visibility = Visibility.INTERNAL
    external_ref: str | None = None
    idempotency_key: str | None = strawberry.field(default=None, description=IDEMPOTENCY_KEY)


@strawberry.type
class FeedbackPayload:
    feedback: Feedback | None
    user_errors: list[UserError]


@strawberry.type
class FeedbackMutations:
    @strawberry.mutation
    async def submit_feedback(
        self, info: Info[Context, None], input: SubmitFeedbackInput
    ) -> FeedbackPayload:
        ctx = info.context
        customer_id = expect_id(str(input.customer_id), "Customer")
        if customer_id is None:
            return FeedbackPayload(feedback=None, user_errors=bad_id(("input", "customerId")))
        submission = feedback.FeedbackSubmission(
            customer_id=customer_id,
            channel=input.channel.value,
            kind=input.kind.value,
            text=input.text,
            scale=None if input.scale is None else input.scale.value,
            score=input.score,
            product=input.product,
            tags=list(input.tags),
            visibility=input.visibility.value,
            external_ref=input.external_ref,
        )
        record, errors = await run_write(
            ctx,
            lambda s: feedback.submit_feedback(s, ctx.principal, submission),
            not_found_path=("input", "customerId"),
            idempotency=Idempotent(
                operation="submitFeedback",
                key=input.idempotency_key,
                request=submission,
                resource=Resource.FEEDBACK,
            ),
        )
        return FeedbackPayload(
            feedback=None if record is None else Feedback.from_record(record), user_errors=errors
        )

    @strawberry.mutation(
        description="Move feedback along its lifecycle: NEW -> TRIAGED -> ACTIONED -> "
        "CLOSED (steps may be skipped; CLOSED may be reopened to TRIAGED). With "
        "expectedStatus, a CONFLICT error unless the feedback is still in that status."
    )
    async def update_feedback_status(
        self,
        info: Info[Context, None],
        id: strawberry.ID,
        status: FeedbackStatus,
        expected_status: FeedbackStatus | None = None,
    ) -> FeedbackPayload:
        ctx = info.context
        feedback_id = expect_id(str(id), "Feedback")
        if feedback_id is None:
            return FeedbackPayload(feedback=None, user_errors=no_feedback(("id",)))
        expected = None if expected_status is None else expected_status.value
        record, errors = await run_write(
            ctx,
            lambda s: feedback.update_feedback_status(
                s, ctx.principal, feedback_id, status.value, expected_status=expected
            ),
            not_found_path=("id",),
        )
        return FeedbackPayload(
            feedback=None if record is None else Feedback.from_record(record), user_errors=errors
        )


def no_feedback(path: tuple[str, ...]) -> list[UserError]:
    """An ID that is not a feedback's: the same answer as an unknown one."""
    return user_errors([FieldProblem(path, "no such feedback", "NOT_FOUND")])
