"""Feedback about a customer's experience."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry.types import Info

from hub.access import REMOTE, Record, RemoteDecisions, Resource
from schema.audience import NOTHING, split_withheld
from schema.common import Channel, Node, Organization, enum_or_none
from schema.context import Context
from schema.ids import customer_reference, expect_id, to_global_id
from schema.resource_types import resource_type

if TYPE_CHECKING:
    from schema.customers.types import Customer

CustomerT = Annotated["Customer", strawberry.lazy("schema.customers.types")]


@strawberry.enum
class FeedbackKind(enum.Enum):
    COMPLAINT = "complaint"
    PRAISE = "praise"
    SUGGESTION = "suggestion"
    BUG = "bug"
    QUESTION = "question"


@strawberry.enum
class FeedbackStatus(enum.Enum):
    NEW = "new"
    TRIAGED = "triaged"
    ACTIONED = "actioned"
    CLOSED = "closed"


@strawberry.enum
class Visibility(enum.Enum):
    INTERNAL = "internal"
    PARTNERS = "partners"


@strawberry.enum(description="CSAT scores run 1-5, NPS scores 0-10.")
class Scale(enum.Enum):
    CSAT = "csat"
    NPS = "nps"


@resource_type(Resource.FEEDBACK)
@strawberry.federation.type(keys=["id"])
class Feedback(Node):
    id: strawberry.ID
    channel: Channel | None
    kind: FeedbackKind | None
    scale: Scale | None
    score: int | None
    text: str | None
    product: str | None
    tags: list[str] | None
    status: FeedbackStatus | None
    visibility: Visibility | None
    external_ref: str | None
    created_at: datetime | None
    updated_at: datetime | None
    customer_id: strawberry.Private[uuid.UUID | None]
    organization_id: strawberry.Private[uuid.UUID | None]
    ref: strawberry.Private[object] = None  # the record's customer_ref, if any
    withheld: strawberry.Private[frozenset[str]] = NOTHING
    # Decisions of the subgraphs' fields this row may show (schema.federation).
    remote: strawberry.Private[RemoteDecisions | None] = None

    @strawberry.field(
        description="The customer this feedback is about: its global ID, or a stable "
        "pseudonym specific to your organization when the sharing policy masks it."
    )
    def customer_ref(self) -> str | None:
        # Encoded on demand: most queries never ask for it.
        return customer_reference(self.customer_id, self.ref)

    @classmethod
    def from_record(cls, record: Record) -> Feedback:
        withheld, record = split_withheld("Feedback", record)
        return cls(
            id=strawberry.ID(to_global_id("Feedback", record["id"])),
            channel=enum_or_none(Channel, record.get("channel")),
            kind=enum_or_none(FeedbackKind, record.get("kind")),
            scale=enum_or_none(Scale, record.get("scale")),
            score=record.get("score"),
            text=record.get("text"),
            product=record.get("product"),
            tags=record.get("tags"),
            status=enum_or_none(FeedbackStatus, record.get("status")),
            visibility=enum_or_none(Visibility, record.get("visibility")),
            external_ref=record.get("external_ref"),
            created_at=record.get("created_at"),
            updated_at=record.get("updated_at"),
            customer_id=record.get("customer_id"),
            ref=record.get("customer_ref"),
            organization_id=record.get("organization_id"),
            withheld=withheld,
            remote=record.get(REMOTE),
        )

    @classmethod
    async def resolve_reference(
        cls, info: Info[Context, None], id: strawberry.ID
    ) -> Feedback | None:
        feedback_id = expect_id(str(id), "Feedback")
        if feedback_id is None:
            return None
        record = await info.context.loaders.records.load((Resource.FEEDBACK, feedback_id))
        return None if record is None else cls.from_record(record)

    @strawberry.field
    async def customer(self, info: Info[Context, None]) -> CustomerT | None:
        from schema.customers.types import Customer

        if self.customer_id is None:
            return None
        record = await info.context.loaders.customers.load(self.customer_id)
        return None if record is None else Customer.from_record(record)

    @strawberry.field(description="The organization that contributed this feedback.")
    async def organization(self, info: Info[Context, None]) -> Organization | None:
        if self.organization_id is None:
            return None
        ref = await info.context.loaders.organizations.load(self.organization_id)
        return None if ref is None else Organization.from_ref(ref)
