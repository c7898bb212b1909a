"""Interactions and purchases."""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal

import strawberry

from hub.access import Record, Resource
from schema.audience import NOTHING, split_withheld
from schema.common import Channel, Node, enum_or_none
from schema.ids import to_global_id
from schema.resource_types import resource_type


@strawberry.enum
class Direction(enum.Enum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


@resource_type(Resource.INTERACTION)
@strawberry.type(description="A touchpoint with the customer on a channel.")
class Interaction(Node):
    id: strawberry.ID
    channel: Channel | None
    direction: Direction | None
    summary: str | None
    occurred_at: datetime | None
    withheld: strawberry.Private[frozenset[str]] = NOTHING

    @classmethod
    def from_record(cls, record: Record) -> Interaction:
        withheld, record = split_withheld("Interaction", record)
        return cls(
            id=strawberry.ID(to_global_id("Interaction", record["id"])),
            channel=enum_or_none(Channel, record.get("channel")),
            direction=enum_or_none(Direction, record.get("direction")),
            summary=record.get("summary"),
            occurred_at=record.get("occurred_at"),
            withheld=withheld,
        )


@resource_type(Resource.PURCHASE)
@strawberry.type(description="A sale, direct or reported by a distributor (sell-through).")
class Purchase(Node):
    id: strawberry.ID
    sku: str | None
    quantity: int | None
    amount: Decimal | None
    currency: str | None
    purchased_at: datetime | None
    withheld: strawberry.Private[frozenset[str]] = NOTHING

    @classmethod
    def from_record(cls, record: Record) -> Purchase:
        withheld, record = split_withheld("Purchase", record)
        return cls(
            id=strawberry.ID(to_global_id("Purchase", record["id"])),
            sku=record.get("sku"),
            quantity=record.get("quantity"),
            amount=record.get("amount"),
            currency=record.get("currency"),
            purchased_at=record.get("purchased_at"),
            withheld=withheld,
        )
