"""Customer, its consent, and who serves it."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from decimal import Decimal

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from hub.access import REMOTE, WITHHELD, Record, RemoteDecisions, Resource
from schema.audience import NOTHING, split_withheld, withheld_fields, without_withheld
from schema.common import Connection, Node, Organization, enum_or_none
from schema.context import Context
from schema.ids import expect_id, to_global_id
from schema.resource_types import registry_connections, related_connection, resource_type


@strawberry.enum
class CustomerKind(enum.Enum):
    PERSON = "person"
    COMPANY = "company"


@strawberry.enum
class Segment(enum.Enum):
    CONSUMER = "consumer"
    SMB = "smb"
    MID_MARKET = "mid_market"
    ENTERPRISE = "enterprise"


@strawberry.enum
class LifecycleStage(enum.Enum):
    LEAD = "lead"
    PROSPECT = "prospect"
    CUSTOMER = "customer"
    CHURNED = "churned"


@strawberry.type
class Consent:
    share_with_partners: bool | None
    marketing_opt_in: bool | None
    given_at: datetime | None
    source: str | None
    withheld: strawberry.Private[frozenset[str]] = NOTHING


_CONSENT = (
    "consent_share_with_partners",
    "consent_marketing_opt_in",
    "consent_given_at",
    "consent_source",
)


# API paths of the customer fields, for provenance entries.
PROVENANCE_PATHS = {
    "lifecycle_stage": "lifecycleStage",
    "lifetime_value": "lifetimeValue",
    "consent_share_with_partners": "consent.shareWithPartners",
    "consent_marketing_opt_in": "consent.marketingOptIn",
    "consent_source": "consent.source",
}


@strawberry.type(description="Who set a customer field, and when.")
class FieldProvenance:
    field: str = strawberry.field(description="The field's path, e.g. lifecycleStage")
    organization: str | None = strawberry.field(description="The contributing organization")
    source: str | None = strawberry.field(description="The connector, if one synced it")
    at: datetime | None
    approved_by: str | None = strawberry.field(
        description="The administrator who approved it, when it was a proposed change"
    )


def _provenance(record: Record) -> list[FieldProvenance] | None:
    """Provenance entries under the same policy as the fields themselves: only for the
    fields this record shows (clear or masked), and only if provenance is shown at all."""
    stamps = record.get("provenance")
    if not isinstance(stamps, dict):
        return None
    entries = []
    for name in sorted(stamps):
        stamp = stamps[name]
        if name not in record or not isinstance(stamp, dict):
            continue
        at = stamp.get("at")
        entries.append(
            FieldProvenance(
                field=PROVENANCE_PATHS.get(name, name),
                organization=stamp.get("organization"),
                source=stamp.get("source"),
                at=datetime.fromisoformat(at) if isinstance(at, str) else None,
                approved_by=stamp.get("approved_by"),
            )
        )
    return entries


@resource_type(Resource.ASSIGNMENT)
@strawberry.type
class CustomerPartner:
    """A partner organization serving this customer, in a role, since a date."""

    role: str | None
    since: datetime | None
    organization_id: strawberry.Private[uuid.UUID | None]
    withheld: strawberry.Private[frozenset[str]] = NOTHING

    @strawberry.field
    async def organization(self, info: Info[Context, None]) -> Organization | None:
        if self.organization_id is None:
            return None
        ref = await info.context.loaders.organizations.load(self.organization_id)
        return None if ref is None else Organization.from_ref(ref)

    @classmethod
    def from_record(cls, record: Record) -> CustomerPartner:
        withheld, record = split_withheld("CustomerPartner", record)
        return cls(
            role=record.get("role"),
            since=record.get("since"),
            organization_id=record.get("organization_id"),
            withheld=withheld,
        )


# Its connections to the records hanging off it (feedback, interactions...) come from the
# registry (reached_by "Customer.<field>"), generated before the resolvers written here.
@resource_type(Resource.CUSTOMER)
@strawberry.federation.type(keys=["id"], description="A person or company the operator serves.")
@registry_connections
class Customer(Node):
    id: strawberry.ID
    kind: CustomerKind | None
    name: str | None
    email: str | None
    phone: str | None
    company: str | None
    title: str | None
    city: str | None
    region: str | None
    country: str | None = strawberry.field(description="ISO 3166-1 alpha-2")
    segment: Segment | None
    lifecycle_stage: LifecycleStage | None
    lifetime_value: Decimal | None
    consent: Consent | None
    traits: JSON | None
    provenance: list[FieldProvenance] | None = strawberry.field(
        description="Who set each field you can see, and when"
    )
    version: int | None
    created_at: datetime | None
    updated_at: datetime | None
    uuid: strawberry.Private[uuid.UUID]
    withheld: strawberry.Private[frozenset[str]] = NOTHING
    # Decisions of the subgraphs' fields this row may show (schema.federation).
    remote: strawberry.Private[RemoteDecisions | None] = None

    @classmethod
    def from_record(cls, record: Record) -> Customer:
        withheld = consent_withheld = NOTHING
        if WITHHELD in record:
            withheld = withheld_fields("Customer", record)
            consent_withheld = withheld_fields("Consent", record)
            record = without_withheld(record)
        consent = None
        if consent_withheld or any(name in record for name in _CONSENT):
            consent = Consent(
                share_with_partners=record.get("consent_share_with_partners"),
                marketing_opt_in=record.get("consent_marketing_opt_in"),
                given_at=record.get("consent_given_at"),
                source=record.get("consent_source"),
                withheld=consent_withheld,
            )
        return cls(
            id=strawberry.ID(to_global_id("Customer", record["id"])),
            uuid=record["id"],
            kind=enum_or_none(CustomerKind, record.get("kind")),
            name=record.get("name"),
            email=record.get("email"),
            phone=record.get("phone"),
            company=record.get("company"),
            title=record.get("title"),
            city=record.get("city"),
            region=record.get("region"),
            country=record.get("country"),
            segment=enum_or_none(Segment, record.get("segment")),
            lifecycle_stage=enum_or_none(LifecycleStage, record.get("lifecycle_stage")),
            lifetime_value=record.get("lifetime_value"),
            consent=consent,
            traits=record.get("traits"),
            provenance=_provenance(record),
            version=record.get("version"),
            created_at=record.get("created_at"),
            updated_at=record.get("updated_at"),
            withheld=withheld,
            remote=record.get(REMOTE),
        )

    @classmethod
    async def resolve_reference(
        cls, info: Info[Context, None], id: strawberry.ID
    ) -> Customer | None:
        """Federation ``_entities``: the same scoped lookup as ``customer(id)``."""
        customer_id = expect_id(str(id), "Customer")
        if customer_id is None:
            return None
        record = await info.context.loaders.customers.load(customer_id)
        return None if record is None else cls.from_record(record)

    @strawberry.field
    async def partners(
        self, info: Info[Context, None], first: int | None = None, after: str | None = None
    ) -> Connection[CustomerPartner]:
        return await related_connection(
            info, Resource.ASSIGNMENT, self.uuid, first, after, CustomerPartner.from_record
        )
