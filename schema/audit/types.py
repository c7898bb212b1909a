"""Types of the audit API: public shapes built from hub views, never from table rows."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from hub import audit, disclosures
from schema.ids import NODE_TYPES, to_global_id


@strawberry.input(description="Events matching every given condition; `until` is exclusive.")
class AuditEventFilter:
    action: str | None = strawberry.field(
        default=None, description="e.g. read, customer.update, policy.publish"
    )
    organization: str | None = strawberry.field(
        default=None, description="The acting organization's slug"
    )
    target: str | None = strawberry.field(default=None, description="e.g. organization:acme")
    since: datetime | None = None
    until: datetime | None = None

    def to_filter(self) -> audit.AuditFilter:
        return audit.AuditFilter(
            action=self.action,
            organization=self.organization,
            target=self.target,
            since=self.since,
            until=self.until,
        )


@strawberry.type(description="One event of the append-only, hash-chained audit log.")
class AuditEvent:
    seq: int = strawberry.field(description="Position in the chain (1, 2, 3, ... no gaps)")
    at: datetime
    actor: str = strawberry.field(description="organization/client that acted")
    organization: str | None
    client: str | None
    action: str
    target: str
    details: JSON
    prev_hash: str
    hash: str = strawberry.field(description="SHA-256 of prev_hash and this event's content")

    @classmethod
    def of(cls, view: audit.EventView) -> AuditEvent:
        return cls(
            seq=view.seq,
            at=view.at,
            actor=view.actor,
            organization=view.organization,
            client=view.client,
            action=view.action,
            target=view.target,
            details=view.details,  # type: ignore[arg-type]  # JSON scalar: a dict
            prev_hash=view.prev_hash,
            hash=view.hash,
        )


@strawberry.type(
    description="Fields of one record about the customer that an organization received."
)
class CustomerDisclosure:
    at: datetime
    organization: str = strawberry.field(description="The receiving organization's slug")
    client: str
    resource: str = strawberry.field(description="Customer, Feedback, Interaction, Purchase...")
    record_id: strawberry.ID = strawberry.field(description="The record's global ID")
    fields: list[str] = strawberry.field(description="Fields disclosed (clear or masked)")
    policy_version: int | None
    operation_name: str | None
    event_seq: int = strawberry.field(description="The `read` audit event recording it")

    @classmethod
    def of(cls, view: disclosures.DisclosureView) -> CustomerDisclosure:
        record_id = (
            to_global_id(view.resource, view.record_id)
            if view.resource in NODE_TYPES
            else str(view.record_id)
        )
        return cls(
            at=view.at,
            organization=view.organization,
            client=view.client,
            resource=view.resource,
            record_id=strawberry.ID(record_id),
            fields=view.fields,
            policy_version=view.policy_version,
            operation_name=view.operation,
            event_seq=view.event_seq,
        )
