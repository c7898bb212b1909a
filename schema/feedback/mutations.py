"""Feedback mutations."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from hub import feedback
from schema.common import Channel, UserError
from schema.context import Context
from schema.feedback.types import Feedback, FeedbackKind, Scale, Visibility
from schema.ids import expect_id
from schema.writes import bad_id, run_write


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
        )
        return FeedbackPayload(
            feedback=None if record is None else Feedback.from_record(record), user_errors=errors
        )
