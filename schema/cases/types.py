"""Support cases and their notes."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry.types import Info

from hub.access import REMOTE, Record, RemoteDecisions, Resource
from schema.audience import NOTHING, split_withheld
from schema.common import Connection, Node, Organization, enum_or_none
from schema.context import Context
from schema.ids import customer_reference, expect_id, to_global_id
from schema.resource_types import related_connection, resource_type

if TYPE_CHECKING:
    from schema.customers.types import Customer
    from schema.feedback.types import Feedback

CustomerT = Annotated["Customer", strawberry.lazy("schema.customers.types")]
FeedbackT = Annotated["Feedback", strawberry.lazy("schema.feedback.types")]


@strawberry.enum
class CaseStatus(enum.Enum):
    OPEN = "open"
    WAITING_ON_PARTNER = "waiting_on_partner"
    RESOLVED = "resolved"
    CLOSED = "closed"


@strawberry.enum
class CasePriority(enum.Enum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


async def _organization(info: Info[Context, None], org_id: uuid.UUID | None) -> Organization | None:
    if org_id is None:
        return None
    ref = await info.context.loaders.organizations.load(org_id)
    return None if ref is None else Organization.from_ref(ref)


@resource_type(Resource.CASE_NOTE)
@strawberry.type(description="One note of a case's thread.")
class CaseNote:
    id: strawberry.ID
    text: str | None
    created_at: datetime | None
    organization_id: strawberry.Private[uuid.UUID | None]
    withheld: strawberry.Private[frozenset[str]] = NOTHING

    @strawberry.field(description="The organization that wrote the note.")
    async def author(self, info: Info[Context, None]) -> Organization | None:
        return await _organization(info, self.organization_id)

    @classmethod
    def from_record(cls, record: Record) -> CaseNote:
        withheld, record = split_withheld("CaseNote", record)
        return cls(
            id=strawberry.ID(to_global_id("CaseNote", record["id"])),
            text=record.get("text"),
            created_at=record.get("created_at"),
            organization_id=record.get("organization_id"),
            withheld=withheld,
        )


@resource_type(
    Resource.CASE,
    connections={"Customer.cases": "Support cases about this customer, newest first."},
)
@strawberry.federation.type(
    keys=["id"],
    description="A support case about a customer and a product, assigned to a department "
    "or a supplier, with a thread of notes.",
)
class Case(Node):
    id: strawberry.ID
    product: str | None
    subject: str | None
    description: str | None
    priority: CasePriority | None
    status: CaseStatus | None
    version: int | None
    created_at: datetime | None
    updated_at: datetime | None
    customer_id: strawberry.Private[uuid.UUID | None]
    organization_id: strawberry.Private[uuid.UUID | None]
    opened_by_id: strawberry.Private[uuid.UUID | None]
    feedback_id: strawberry.Private[uuid.UUID | None]
    uuid: strawberry.Private[uuid.UUID]
    ref: strawberry.Private[object] = None  # the record's customer_ref, if any
    withheld: strawberry.Private[frozenset[str]] = NOTHING
    # Decisions of the subgraphs' fields this row may show (schema.federation).
    remote: strawberry.Private[RemoteDecisions | None] = None

    @strawberry.field(
        description="The customer this case is about: its global ID, or a stable "
        "pseudonym specific to your organization when the sharing policy masks it."
    )
    def customer_ref(self) -> str | None:
        return customer_reference(self.customer_id, self.ref)

    @classmethod
    def from_record(cls, record: Record) -> Case:
        withheld, record = split_withheld("Case", record)
        return cls(
            id=strawberry.ID(to_global_id("Case", record["id"])),
            uuid=record["id"],
            product=record.get("product"),
            subject=record.get("subject"),
            description=record.get("description"),
            priority=enum_or_none(CasePriority, record.get("priority")),
            status=enum_or_none(CaseStatus, record.get("status")),
            version=record.get("version"),
            created_at=record.get("created_at"),
            updated_at=record.get("updated_at"),
            customer_id=record.get("customer_id"),
            ref=record.get("customer_ref"),
            organization_id=record.get("organization_id"),
            opened_by_id=record.get("opened_by_id"),
            feedback_id=record.get("feedback_id"),
            withheld=withheld,
            remote=record.get(REMOTE),
        )

    @classmethod
    async def resolve_reference(cls, info: Info[Context, None], id: strawberry.ID) -> Case | None:
        """Federation ``_entities``: the same scoped lookup as ``case(id)``, batched with
        every other case of the request (one statement)."""
        case_id = expect_id(str(id), "Case")
        if case_id is None:
            return None
        record = await info.context.loaders.records.load((Resource.CASE, case_id))
        return None if record is None else cls.from_record(record)

    @strawberry.field
    async def customer(self, info: Info[Context, None]) -> CustomerT | None:
        from schema.customers.types import Customer

        if self.customer_id is None:
            return None
        record = await info.context.loaders.customers.load(self.customer_id)
        return None if record is None else Customer.from_record(record)

    @strawberry.field(description="The organization the case is assigned to.")
    async def assigned_to(self, info: Info[Context, None]) -> Organization | None:
        return await _organization(info, self.organization_id)

    @strawberry.field(description="The organization that opened the case.")
    async def opened_by(self, info: Info[Context, None]) -> Organization | None:
        return await _organization(info, self.opened_by_id)

    @strawberry.field(description="The feedback the case was escalated from, if you see it.")
    async def feedback(self, info: Info[Context, None]) -> FeedbackT | None:
        from schema.feedback.types import Feedback

        if self.feedback_id is None:
            return None
        record = await info.context.loaders.records.load((Resource.FEEDBACK, self.feedback_id))
        return None if record is None else Feedback.from_record(record)

    @strawberry.field(description="The case's thread, newest first.")
    async def notes(
        self, info: Info[Context, None], first: int | None = None, after: str | None = None
    ) -> Connection[CaseNote]:
        return await related_connection(
            info, Resource.CASE_NOTE, self.uuid, first, after, CaseNote.from_record
        )
