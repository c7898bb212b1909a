"""Customer feedback: the scoped list, submissions and the status lifecycle."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from hub.access import Action, Record, Resource, access, pipeline
from hub.access.pipeline import Update, WriteRequest
from hub.errors import ConflictError, FieldProblem, InvalidInputError
from hub.filters import exact, not_before
from hub.models import Feedback
from hub.models._types import utcnow
from hub.models.activity import CHANNELS, FEEDBACK_KINDS, FEEDBACK_STATUSES, SCALES, VISIBILITIES
from hub.outbox import Operation
from hub.pagination import Page
from hub.principal import Principal
from hub.related import count_of, page_of
from hub.validation import Problems


@dataclass(frozen=True)
class FeedbackFilter:
    kind: str | None = None
    status: str | None = None
    product: str | None = None
    customer_id: uuid.UUID | None = None
    since: datetime | None = None


def _conditions(principal: Principal, flt: FeedbackFilter) -> list[ColumnElement[bool]]:
    access.require_filters(principal, Resource.FEEDBACK, flt)
    return [
        access.row_filter(principal, Resource.FEEDBACK),
        *exact(
            (Feedback.kind, flt.kind),
            (Feedback.status, flt.status),
            (Feedback.product, flt.product),
            (Feedback.customer_id, flt.customer_id),
        ),
        *not_before(Feedback.created_at, flt.since, "since"),
    ]


def filter_conditions(principal: Principal, flt: FeedbackFilter) -> list[ColumnElement[bool]]:
    """What ``feedback(filter:)`` selects for the principal: its row policy and the
    filter (refused when the filter reveals a field it does not read in clear)."""
    return _conditions(principal, flt)


async def list_feedback(
    session: AsyncSession,
    principal: Principal,
    *,
    flt: FeedbackFilter,
    first: int | None,
    after: str | None,
    default_size: int,
    max_size: int,
) -> Page[Record]:
    return await page_of(
        session,
        principal,
        Resource.FEEDBACK,
        _conditions(principal, flt),
        first=first,
        after=after,
        default_size=default_size,
        max_size=max_size,
    )


async def count_feedback(session: AsyncSession, principal: Principal, flt: FeedbackFilter) -> int:
    return await count_of(session, Resource.FEEDBACK, _conditions(principal, flt))


@dataclass
class FeedbackSubmission:
    customer_id: uuid.UUID
    channel: str
    kind: str
    text: str
    scale: str | None = None
    score: int | None = None
    product: str | None = None
    tags: list[str] = field(default_factory=list)
    visibility: str = "internal"
    external_ref: str | None = None
    # When the customer gave it, if earlier than now (an import from another system).
    created_at: datetime | None = None


@dataclass(frozen=True)
class CleanSubmission:
    """A submission validated: ``values`` by column and ``given``, each field the write
    sets with its input name (for the pipeline's field check)."""

    values: dict[str, Any]
    given: dict[str, str]


def clean_submission(submission: FeedbackSubmission) -> CleanSubmission:
    """Validate and normalise a submission (every problem at its input path)."""
    p = Problems("input")
    channel = p.choice("channel", submission.channel, CHANNELS, required=True)
    kind = p.choice("kind", submission.kind, FEEDBACK_KINDS, required=True)
    text = p.text("text", submission.text, max_length=5000, required=True)
    scale = p.choice("scale", submission.scale, SCALES)
    score = submission.score
    if scale is not None and score is None:
        p.add("score", f"is required with the {scale} scale", "REQUIRED")
    elif scale is None and score is not None and submission.scale is None:
        p.add("scale", "is required with a score", "REQUIRED")
    elif scale is not None:
        low, high = SCALES[scale]
        score = p.integer("score", score, low=low, high=high)
    product = p.text("product", submission.product, max_length=120)
    tags = [t.strip().lower() for t in submission.tags if t.strip()]
    if len(tags) > 20 or any(len(t) > 40 for t in tags):
        p.add("tags", "at most 20 tags of at most 40 characters", "TOO_LONG")
    visibility = p.choice("visibility", submission.visibility, VISIBILITIES, required=True)
    external_ref = p.text("externalRef", submission.external_ref, max_length=200)
    if submission.created_at is not None and submission.created_at > utcnow():
        p.add("createdAt", "must not be in the future", "INVALID")
    p.raise_any()
    given = {"customer_id": "customerId", "channel": "channel", "kind": "kind", "text": "text"}
    optional = {
        "scale": ("scale", scale),
        "score": ("score", score),
        "product": ("product", product),
        "tags": ("tags", tags or None),
        "external_ref": ("externalRef", external_ref),
        # The default visibility is no choice; choosing who else sees it is.
        "visibility": ("visibility", None if visibility == "internal" else visibility),
        "created_at": ("createdAt", submission.created_at),
    }
    given |= {name: path for name, (path, value) in optional.items() if value is not None}
    values = {
        "customer_id": submission.customer_id,
        "channel": channel or "",
        "kind": kind or "",
        "scale": scale,
        "score": score,
        "text": text or "",
        "product": product,
        "tags": sorted(set(tags)),
        "visibility": visibility or "internal",
        "external_ref": external_ref,
    }
    return CleanSubmission(values, given)


async def submit_feedback(
    session: AsyncSession, principal: Principal, submission: FeedbackSubmission
) -> Record:
    """Validate, check the write against the customer, and store; the contributing
    organization is always the caller's (a preset, never taken from input)."""
    clean = clean_submission(submission)

    def build() -> Feedback:
        now = utcnow()
        return Feedback(
            **clean.values,
            organization_id=principal.organization_id,
            status=FEEDBACK_STATUSES[0],
            created_at=submission.created_at or now,
            updated_at=now,
        )

    written = await pipeline.create(
        session,
        principal,
        WriteRequest(
            Resource.FEEDBACK,
            Action.CREATE,
            audit="feedback.create",
            operation=Operation.CREATE,
            about=submission.customer_id,
            given=clean.given,
        ),
        build,
    )
    return written.record


# The status lifecycle (DESIGN §3): forward moves, skipping steps allowed (a duplicate
# goes straight from new to closed); closed feedback may be reopened, to triaged, when
# the customer comes back about it. Nothing else moves backwards: "actioned" records
# that something was done, and undoing that claim would rewrite history.
TRANSITIONS: dict[str, frozenset[str]] = {
    "new": frozenset({"triaged", "actioned", "closed"}),
    "triaged": frozenset({"actioned", "closed"}),
    "actioned": frozenset({"closed"}),
    "closed": frozenset({"triaged"}),
}


async def update_feedback_status(
    session: AsyncSession,
    principal: Principal,
    feedback_id: uuid.UUID,
    status: str,
    *,
    expected_status: str | None = None,
) -> Record:
    """Move feedback along its lifecycle (:data:`TRANSITIONS`) under the policy's
    Feedback ``write`` rule (``status`` among its fields). ``expected_status`` makes it
    a compare-and-set: CONFLICT unless the feedback is still in that status. Setting
    the status it already has changes nothing and is not audited."""
    # Arguments, not an input object: problems point at the argument itself.
    allowed = ", ".join(FEEDBACK_STATUSES)
    problems = [
        FieldProblem((name,), f"must be one of {allowed}", "NOT_ALLOWED")
        for name, value in (("status", status), ("expectedStatus", expected_status))
        if value is not None and value not in FEEDBACK_STATUSES
    ]
    if problems:
        raise InvalidInputError(problems)
    # Messages name the current status only to a caller that may read it.
    shown = "status" in access.readable_fields(principal, Resource.FEEDBACK)

    def change(current: Feedback) -> Update | None:
        before = current.status
        if expected_status is not None and before != expected_status:
            raise ConflictError(
                f"the feedback is {before}, not {expected_status}"
                if shown
                else f"the feedback is not {expected_status}"
            )
        if before == status:
            return None
        if status not in TRANSITIONS[before]:
            moves = " or ".join(sorted(TRANSITIONS[before]))
            message = (
                f"feedback that is {before} can move to {moves} only"
                if shown
                else f"this feedback cannot move to {status} now"
            )
            raise InvalidInputError([FieldProblem(("status",), message, "INVALID_TRANSITION")])
        # Compare-and-set on the status read: a concurrent move makes it match no row,
        # and this one would then be a transition from a status nobody checked.
        return Update(
            {"status": status, "updated_at": utcnow()}, where=(col(Feedback.status) == before,)
        )

    written = await pipeline.update(
        session,
        principal,
        WriteRequest(
            Resource.FEEDBACK,
            Action.UPDATE,
            audit="feedback.status",
            operation=Operation.STATUS,
            target=feedback_id,
            # An argument, not an input object: a problem points at the argument itself.
            given={"status": "status"},
            root=None,
        ),
        change,
        conflict=lambda _: ConflictError(
            "the feedback's status changed meanwhile; read it and retry"
        ),
    )
    return written.record
