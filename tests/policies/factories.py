"""Plain factories for the pure policy tests: a small catalog shaped like the hub's."""

from __future__ import annotations

from typing import Any

from policies import Caller, Catalog

CATALOG_DATA: dict[str, Any] = {
    "Customer": {
        "fields": {
            "id": "uuid",
            "name": "string",
            "email": "string",
            "phone": "string",
            "region": "string",
            "lifetime_value": "number",
            "consent_share_with_partners": "boolean",
            "created_at": "datetime",
            "traits": "json",
        },
        "relations": {"assignments": {"resource": "CustomerPartner", "many": True}},
    },
    "CustomerPartner": {"fields": {"organization": "string", "role": "string"}},
    "Feedback": {
        "fields": {
            "id": "uuid",
            "customer_id": "uuid",
            "organization": "string",
            "product": "string",
            "score": "integer",
            "text": "string",
            "tags": "string[]",
        },
        "relations": {"customer": {"resource": "Customer"}},
    },
}


def make_catalog() -> Catalog:
    """The test catalog, with a ``regions`` subject attribute."""
    return Catalog.from_dict(CATALOG_DATA, subject_attributes={"regions": "string[]"})


def make_caller(**overrides: Any) -> Caller:
    """A distributor ``acme`` unless overridden."""
    values: dict[str, Any] = {
        "org": "acme",
        "kind": "distributor",
        "roles": frozenset({"partner"}),
        "scopes": frozenset({"customers:read"}),
        "attributes": {"regions": ["north"]},
    }
    values.update(overrides)
    return Caller(**values)
