"""Customer inputs: explicit allow-lists converted field by field (never splatted)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import strawberry
from strawberry.scalars import JSON

from hub.customers import CustomerFields
from schema.customers.types import CustomerKind, LifecycleStage, Segment
from schema.writes import IDEMPOTENCY_KEY


def _value(item: Any) -> Any:
    return None if item is None else item.value


@strawberry.input
class CustomerInput:
    name: str
    kind: CustomerKind = CustomerKind.PERSON
    email: str | None = None
    phone: str | None = strawberry.field(
        default=None, description="Any format; stored in E.164. National numbers use country."
    )
    company: str | None = None
    title: str | None = None
    city: str | None = None
    region: str | None = None
    country: str | None = strawberry.field(default=None, description="ISO 3166-1 alpha-2")
    segment: Segment | None = None
    lifecycle_stage: LifecycleStage | None = None
    lifetime_value: Decimal | None = None
    share_with_partners: bool | None = None
    marketing_opt_in: bool | None = None
    consent_source: str | None = None
    traits: JSON | None = None
    idempotency_key: str | None = strawberry.field(default=None, description=IDEMPOTENCY_KEY)

    def to_fields(self) -> CustomerFields:
        return _fields(self)


@strawberry.input(description="Only the fields given are changed.")
class CustomerPatch:
    name: str | None = None
    kind: CustomerKind | None = None
    email: str | None = None
    phone: str | None = None
    company: str | None = None
    title: str | None = None
    city: str | None = None
    region: str | None = None
    country: str | None = None
    segment: Segment | None = None
    lifecycle_stage: LifecycleStage | None = None
    lifetime_value: Decimal | None = None
    share_with_partners: bool | None = None
    marketing_opt_in: bool | None = None
    consent_source: str | None = None
    traits: JSON | None = None

    def to_fields(self) -> CustomerFields:
        return _fields(self)


def _fields(source: CustomerInput | CustomerPatch) -> CustomerFields:
    return CustomerFields(
        kind=_value(source.kind),
        name=source.name,
        email=source.email,
        phone=source.phone,
        company=source.company,
        title=source.title,
        city=source.city,
        region=source.region,
        country=source.country,
        segment=_value(source.segment),
        lifecycle_stage=_value(source.lifecycle_stage),
        lifetime_value=source.lifetime_value,
        consent_share_with_partners=source.share_with_partners,
        consent_marketing_opt_in=source.marketing_opt_in,
        consent_source=source.consent_source,
        traits=source.traits,  # type: ignore[arg-type]  # JSON: hub checks it is an object
    )
