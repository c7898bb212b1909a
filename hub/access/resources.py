"""The resources access is decided on, the actions on them, and their readable fields."""

from __future__ import annotations

import enum

from sqlmodel import SQLModel

from hub.models import Customer, CustomerPartner, Feedback, Interaction, Purchase


class Resource(enum.StrEnum):
    CUSTOMER = "Customer"
    FEEDBACK = "Feedback"
    INTERACTION = "Interaction"
    PURCHASE = "Purchase"
    ASSIGNMENT = "CustomerPartner"


class Action(enum.StrEnum):
    READ = "read"
    CREATE = "create"
    UPDATE = "update"


MODELS: dict[Resource, type[SQLModel]] = {
    Resource.CUSTOMER: Customer,
    Resource.FEEDBACK: Feedback,
    Resource.INTERACTION: Interaction,
    Resource.PURCHASE: Purchase,
    Resource.ASSIGNMENT: CustomerPartner,
}

# Every field a projection may carry, per resource: the allow-list a projection starts
# from, so a column added to a table is hidden until someone decides otherwise.
FIELDS: dict[Resource, frozenset[str]] = {
    Resource.CUSTOMER: frozenset(
        {
            "id",
            "kind",
            "name",
            "email",
            "phone",
            "company",
            "title",
            "city",
            "region",
            "country",
            "segment",
            "lifecycle_stage",
            "lifetime_value",
            "consent_share_with_partners",
            "consent_marketing_opt_in",
            "consent_given_at",
            "consent_source",
            "traits",
            "provenance",
            "version",
            "created_at",
            "updated_at",
        }
    ),
    Resource.FEEDBACK: frozenset(
        {
            "id",
            "customer_id",
            "organization_id",
            "channel",
            "kind",
            "scale",
            "score",
            "text",
            "product",
            "tags",
            "status",
            "visibility",
            "external_ref",
            "created_at",
            "updated_at",
        }
    ),
    Resource.INTERACTION: frozenset(
        {
            "id",
            "customer_id",
            "organization_id",
            "channel",
            "direction",
            "summary",
            "occurred_at",
            "created_at",
        }
    ),
    Resource.PURCHASE: frozenset(
        {
            "id",
            "customer_id",
            "organization_id",
            "sku",
            "quantity",
            "amount",
            "currency",
            "purchased_at",
            "created_at",
        }
    ),
    Resource.ASSIGNMENT: frozenset({"id", "customer_id", "organization_id", "role", "since"}),
}
