"""Types of the connector and delivery admin: public shapes built from hub views."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

import strawberry
from strawberry.scalars import JSON

from hub.delivery.admin import DeliveryView
from hub.sync.admin import ConnectorView, DeadLetterView, RunView
from hub.sync.replay import ReplayOutcome as HubReplayOutcome
from schema.common import PageInfo, UserError
from schema.ids import to_global_id
from schema.webhooks.types import ID_TYPE

SUBSCRIPTION_ID_TYPE = ID_TYPE

RUN_ID_TYPE = "SyncRun"
DEAD_LETTER_ID_TYPE = "SyncDeadLetter"
DELIVERY_ID_TYPE = "WebhookDelivery"


def schedule_text(seconds: int | None) -> str | None:
    """``900`` as ``15m`` (as a definition may write it)."""
    if seconds is None:
        return None
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


@strawberry.enum(description="running, or how a run ended (interrupted: its process stopped).")
class SyncRunStatus(enum.Enum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    INTERRUPTED = "interrupted"


@strawberry.type(description="One run of a connector: what it did to the records it read.")
class SyncRun:
    id: strawberry.ID
    connector: str
    status: SyncRunStatus
    started_at: datetime
    finished_at: datetime | None
    duration_ms: int | None
    read: int
    created: int
    updated: int
    unchanged: int
    queued: int = strawberry.field(description="Changes left for review (source precedence)")
    dead_lettered: int
    error: str | None

    @classmethod
    def of(cls, view: RunView) -> SyncRun:
        return cls(
            id=strawberry.ID(to_global_id(RUN_ID_TYPE, view.id)),
            connector=view.connector,
            status=SyncRunStatus(view.status),
            started_at=view.started_at,
            finished_at=view.finished_at,
            duration_ms=view.duration_ms,
            read=view.read,
            created=view.created,
            updated=view.updated,
            unchanged=view.unchanged,
            queued=view.queued,
            dead_lettered=view.dead_lettered,
            error=view.error,
        )


@strawberry.type(description="An inbound connector; its credentials are never shown.")
class Connector:
    name: str
    kind: str = strawberry.field(description="files, sql, ... (connectors/__init__.py)")
    resource: str = strawberry.field(description="What it writes: Feedback or Customer")
    organization: str = strawberry.field(description="The slug of the organization it writes as")
    schedule: str | None = strawberry.field(description="How often the worker runs it, e.g. 15m")
    schedule_seconds: int | None
    enabled: bool
    imported: bool = strawberry.field(description="Made by `hub import` for one file")
    config: JSON = strawberry.field(description="Values that look like secrets as ***")
    mapping: JSON | None
    credential_names: list[str] = strawberry.field(description="Names only; sealed at rest")
    created_at: datetime
    updated_at: datetime
    last_run: SyncRun | None
    open_dead_letters: int
    checkpoint_at: datetime | None = strawberry.field(description="When the checkpoint moved")

    @classmethod
    def of(cls, view: ConnectorView) -> Connector:
        return cls(
            name=view.name,
            kind=view.kind,
            resource=view.resource,
            organization=view.organization,
            schedule=schedule_text(view.schedule_seconds),
            schedule_seconds=view.schedule_seconds,
            enabled=view.enabled,
            imported=view.adhoc,
            config=view.config,  # type: ignore[arg-type]  # JSON scalar: a dict
            mapping=view.mapping,  # type: ignore[arg-type]
            credential_names=view.credential_names,
            created_at=view.created_at,
            updated_at=view.updated_at,
            last_run=None if view.last_run is None else SyncRun.of(view.last_run),
            open_dead_letters=view.open_dead_letters,
            checkpoint_at=view.checkpoint_at,
        )


@strawberry.type(description="A record a connector could not store, and why.")
class SyncDeadLetter:
    id: strawberry.ID
    connector: str
    run_id: strawberry.ID = strawberry.field(description="The run that last met it")
    position: str = strawberry.field(description="Where in the source: line 12, id=42, ...")
    reason: str
    record: JSON = strawberry.field(description="The record as read (sealed at rest)")
    attempts: int
    created_at: datetime
    updated_at: datetime
    resolved_at: datetime | None

    @classmethod
    def of(cls, view: DeadLetterView) -> SyncDeadLetter:
        return cls(
            id=strawberry.ID(to_global_id(DEAD_LETTER_ID_TYPE, view.id)),
            connector=view.connector,
            run_id=strawberry.ID(to_global_id(RUN_ID_TYPE, view.run_id)),
            position=view.position,
            reason=view.reason,
            record=view.record,
            attempts=view.attempts,
            created_at=view.created_at,
            updated_at=view.updated_at,
            resolved_at=view.resolved_at,
        )


@strawberry.enum(
    description="pending (queued or retrying), delivered, dead, or dropped: "
    "not sent, the record was no longer visible to the subscriber."
)
class AdminDeliveryStatus(enum.Enum):
    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD = "dead"
    DROPPED = "dropped"


@strawberry.type(description="An outbound delivery as administrators see it.")
class AdminDelivery:
    id: strawberry.ID
    webhook_id: str = strawberry.field(description="The webhook-id header (same on every try)")
    subscription_id: strawberry.ID
    organization: str = strawberry.field(description="The subscriber's slug")
    url: str
    position: int = strawberry.field(description="The outbox event's position")
    event_type: str
    record_id: str = strawberry.field(description="The record's UUID")
    status: AdminDeliveryStatus
    attempts: int
    response_status: int | None
    last_error: str | None
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    delivered_at: datetime | None
    created_at: datetime

    @classmethod
    def of(cls, view: DeliveryView) -> AdminDelivery:
        return cls(
            id=strawberry.ID(to_global_id(DELIVERY_ID_TYPE, view.id)),
            webhook_id=view.webhook_id,
            subscription_id=strawberry.ID(to_global_id(SUBSCRIPTION_ID_TYPE, view.subscription_id)),
            organization=view.organization,
            url=view.url,
            position=view.position,
            event_type=f"{view.resource}.{view.operation}",
            record_id=str(view.record_id),
            status=AdminDeliveryStatus(view.status),
            attempts=view.attempts,
            response_status=view.response_status,
            last_error=view.last_error,
            next_attempt_at=view.next_attempt_at,
            last_attempt_at=view.last_attempt_at,
            delivered_at=view.delivered_at,
            created_at=view.created_at,
        )


@strawberry.type(description="A page of runs, newest first.")
class SyncRunPage:
    nodes: list[SyncRun]
    page_info: PageInfo


@strawberry.type(description="A page of dead letters, newest first.")
class SyncDeadLetterPage:
    nodes: list[SyncDeadLetter]
    page_info: PageInfo


@strawberry.type(description="A page of deliveries, newest outbox event first.")
class AdminDeliveryPage:
    nodes: list[AdminDelivery]
    page_info: PageInfo


@strawberry.input(description="A connector definition: the keys of a `hub sync apply` file.")
class ConnectorInput:
    name: str
    kind: str
    resource: str = strawberry.field(description="feedback or customers")
    organization: str = strawberry.field(description="The slug of the organization it writes as")
    config: JSON
    schedule: str | None = strawberry.field(
        default=None, description="30s, 15m, 1h, 1d or seconds (at least 10 s); none: on demand"
    )
    enabled: bool = True
    mapping: JSON | None = None
    credentials: JSON | None = strawberry.field(
        default=None, description="Names to text values; sealed at rest, never shown again"
    )

    def to_definition(self) -> dict[str, Any]:
        given: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind,
            "resource": self.resource,
            "organization": self.organization,
            "config": self.config,
            "enabled": self.enabled,
        }
        for key in ("schedule", "mapping", "credentials"):
            if (value := getattr(self, key)) is not None:
                given[key] = value
        return given


@strawberry.input(
    description="Only the keys given change (null clears schedule, mapping or "
    "credentials); config and credentials are replaced whole."
)
class ConnectorPatch:
    kind: str | None = strawberry.UNSET
    resource: str | None = strawberry.UNSET
    organization: str | None = strawberry.UNSET
    config: JSON | None = strawberry.UNSET
    schedule: str | None = strawberry.UNSET
    enabled: bool | None = strawberry.UNSET
    mapping: JSON | None = strawberry.UNSET
    credentials: JSON | None = strawberry.UNSET

    def to_patch(self) -> dict[str, Any]:
        return {
            key: getattr(self, key)
            for key in (
                "kind",
                "resource",
                "organization",
                "config",
                "schedule",
                "enabled",
                "mapping",
                "credentials",
            )
            if getattr(self, key) is not strawberry.UNSET
        }


@strawberry.type
class ConnectorPayload:
    connector: Connector | None
    user_errors: list[UserError]


@strawberry.type
class RunConnectorPayload:
    run: SyncRun | None = strawberry.field(
        description="The run (finished when it was quick); null: starting, see syncRuns"
    )
    user_errors: list[UserError]


ReplayOutcome = strawberry.enum(
    HubReplayOutcome, description="What storing the record again did (DEAD_LETTERED: refused again)"
)


@strawberry.type
class ReplayDeadLetterPayload:
    outcome: ReplayOutcome | None  # type: ignore[valid-type]
    dead_letter: SyncDeadLetter | None = strawberry.field(
        description="Resolved, or open with the new reason"
    )
    user_errors: list[UserError]


@strawberry.type
class ReplayDeliveryPayload:
    delivery: AdminDelivery | None
    user_errors: list[UserError]
