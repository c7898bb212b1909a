"""The hub's resources as the policy engine sees them: the catalog and its SQL mapping.

The catalog (:data:`CATALOG`) is what a policy may name: every field of
:data:`hub.access.resources.FIELDS` with its type, the relations dotted paths may cross,
and a few *derived* fields that exist for policies only:

- ``organization`` on CustomerPartner, Feedback, Interaction and Purchase: the slug of the
  organization (the assigned partner, the contributor), so a policy says
  ``assignments.organization: {eq: $subject.org}`` rather than naming UUIDs;
- ``customer_ref`` on Feedback: the customer the feedback is about, as the API's
  ``Feedback.customerRef`` shows it (a policy masks it as a ``pseudonym`` to let a partner
  group feedback by customer without learning who the customer is).

A subject may name an organization kind (:class:`hub.models.OrgKind`) and a role: a staff
user's (:data:`hub.models.STAFF_ROLES`) or a department's (:data:`DEPARTMENT_ROLES`); the
validator refuses any other, which would match nobody.

Fields stored encrypted (:class:`hub.models._sealed.EncryptedText`: Customer.email and
phone) are *opaque*: a condition may only test them with ``is_null``, since SQL sees
ciphertext (see :data:`OPAQUE`).

:class:`HubMapping` maps the catalog onto the tables for :func:`policies.plan`.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import ColumnElement, FromClause, select

from hub.access.resources import FIELDS, MODELS, Resource
from hub.models import STAFF_ROLES, Organization, OrgKind
from hub.models._sealed import EncryptedText
from policies import Catalog, FieldType, Join

_T = FieldType
TYPES: dict[Resource, dict[str, FieldType]] = {
    Resource.CUSTOMER: {
        "id": _T.UUID,
        "kind": _T.STRING,
        "name": _T.STRING,
        "email": _T.STRING,
        "phone": _T.STRING,
        "company": _T.STRING,
        "title": _T.STRING,
        "city": _T.STRING,
        "region": _T.STRING,
        "country": _T.STRING,
        "segment": _T.STRING,
        "lifecycle_stage": _T.STRING,
        "lifetime_value": _T.NUMBER,
        "consent_share_with_partners": _T.BOOLEAN,
        "consent_marketing_opt_in": _T.BOOLEAN,
        "consent_given_at": _T.DATETIME,
        "consent_source": _T.STRING,
        "traits": _T.JSON,
        "provenance": _T.JSON,
        "version": _T.INTEGER,
        "created_at": _T.DATETIME,
        "updated_at": _T.DATETIME,
    },
    Resource.ASSIGNMENT: {
        "id": _T.UUID,
        "customer_id": _T.UUID,
        "organization_id": _T.UUID,
        "organization": _T.STRING,
        "role": _T.STRING,
        "since": _T.DATETIME,
    },
    Resource.FEEDBACK: {
        "id": _T.UUID,
        "customer_id": _T.UUID,
        "customer_ref": _T.UUID,
        "organization_id": _T.UUID,
        "organization": _T.STRING,
        "channel": _T.STRING,
        "kind": _T.STRING,
        "scale": _T.STRING,
        "score": _T.INTEGER,
        "text": _T.STRING,
        "product": _T.STRING,
        "tags": _T.STRING_LIST,
        "status": _T.STRING,
        "visibility": _T.STRING,
        "external_ref": _T.STRING,
        "created_at": _T.DATETIME,
        "updated_at": _T.DATETIME,
    },
    Resource.INTERACTION: {
        "id": _T.UUID,
        "customer_id": _T.UUID,
        "organization_id": _T.UUID,
        "organization": _T.STRING,
        "channel": _T.STRING,
        "direction": _T.STRING,
        "summary": _T.STRING,
        "occurred_at": _T.DATETIME,
        "created_at": _T.DATETIME,
    },
    Resource.PURCHASE: {
        "id": _T.UUID,
        "customer_id": _T.UUID,
        "organization_id": _T.UUID,
        "organization": _T.STRING,
        "sku": _T.STRING,
        "quantity": _T.INTEGER,
        "amount": _T.NUMBER,
        "currency": _T.STRING,
        "purchased_at": _T.DATETIME,
        "created_at": _T.DATETIME,
    },
}

API_ENUMS: dict[Resource, frozenset[str]] = {
    Resource.CUSTOMER: frozenset({"kind", "segment", "lifecycle_stage"}),
    Resource.FEEDBACK: frozenset({"channel", "kind", "scale", "status", "visibility"}),
    Resource.INTERACTION: frozenset({"channel", "direction"}),
    Resource.PURCHASE: frozenset(),
    Resource.ASSIGNMENT: frozenset(),
}
"""String fields the API types as enums: no mask output is one of their values."""

DERIVED: dict[str, str] = {"organization": "organization_id", "customer_ref": "customer_id"}
"""Derived field -> the column it is computed from."""

_TO_CUSTOMER = {"customer": {"resource": Resource.CUSTOMER.value}}
RELATIONS: dict[Resource, dict[str, dict[str, Any]]] = {
    Resource.CUSTOMER: {"assignments": {"resource": Resource.ASSIGNMENT.value, "many": True}},
    Resource.ASSIGNMENT: _TO_CUSTOMER,
    Resource.FEEDBACK: _TO_CUSTOMER,
    Resource.INTERACTION: _TO_CUSTOMER,
    Resource.PURCHASE: _TO_CUSTOMER,
}

SUBJECT_ATTRIBUTES = {"regions": "string[]", "products": "string[]", "countries": "string[]"}
"""Organization attributes a policy may use as ``$subject.attributes.<name>``."""

DEPARTMENT_ROLES = ("sales", "support", "marketing")
"""What a department does, as its ``roles`` attribute says (``{"roles": ["support"]}``,
:func:`hub.access.policy_rules.caller_of`). A policy subject may name these and the staff
roles; declare a new department role here before a policy names it."""

_ENCRYPTED = "encrypted at rest"
OPAQUE: dict[Resource, dict[str, str]] = {
    resource: {
        c.name: _ENCRYPTED
        for c in MODELS[resource].__table__.columns  # type: ignore[attr-defined]
        if isinstance(c.type, EncryptedText)
    }
    for resource in TYPES
}
"""Fields a condition may test only with ``is_null``: comparing them in SQL would compare
ciphertext and never match (and disagree with the policy oracle)."""

CATALOG = Catalog.from_dict(
    {
        resource.value: {
            "fields": {name: kind.value for name, kind in TYPES[resource].items()},
            "relations": RELATIONS[resource],
            "opaque": OPAQUE[resource],
        }
        for resource in TYPES
    },
    subject_attributes=SUBJECT_ATTRIBUTES,
    subject_kinds=[kind.value for kind in OrgKind],
    subject_roles=[*STAFF_ROLES, *DEPARTMENT_ROLES],
)


def _check_catalog() -> None:
    # Every column a projection may carry is in the catalog, so a policy can decide it;
    # a new column left out of TYPES fails at import rather than being silently hidden.
    for resource, types in TYPES.items():
        missing = FIELDS[resource] - set(types)
        extra = set(types) - FIELDS[resource] - set(DERIVED)
        if missing or extra:
            raise RuntimeError(f"catalog of {resource} is out of step: {missing=} {extra=}")


_check_catalog()


class HubMapping:
    """:class:`policies.SqlMapping` over the hub's tables, for one caller.

    ``organization`` compares as a slug (a scalar subquery); equality with the caller's
    own slug, by far the commonest condition, compiles to a comparison of
    ``organization_id`` with the caller's id instead, which the indexes serve.
    """

    def __init__(self, org_slug: str, org_id: uuid.UUID) -> None:
        self.org_slug = org_slug
        self.org_id = org_id

    def table(self, resource: str) -> FromClause:
        return MODELS[Resource(resource)].__table__  # type: ignore[attr-defined,no-any-return]

    def column(self, resource: str, table: FromClause, field: str) -> ColumnElement[Any]:
        if field == "organization":
            return (
                select(Organization.__table__.c.slug)  # type: ignore[attr-defined]
                .where(Organization.__table__.c.id == table.c.organization_id)  # type: ignore[attr-defined]
                .scalar_subquery()
            )
        return table.c[DERIVED.get(field, field)]

    def relation(self, resource: str, table: FromClause, name: str) -> Join:
        target_resource = Resource(RELATIONS[Resource(resource)][name]["resource"])
        target = MODELS[target_resource].__table__.alias()  # type: ignore[attr-defined]
        if name == "assignments":
            return Join(target_resource.value, target, target.c.customer_id == table.c.id, True)
        return Join(target_resource.value, target, target.c.id == table.c.customer_id, False)

    def compare(
        self, resource: str, table: FromClause, field: str, op: str, value: Any
    ) -> ColumnElement[bool] | None:
        if field != "organization" or op not in ("eq", "ne") or not isinstance(value, str):
            return None
        if value != self.org_slug:
            return None
        # Slugs are unique and organization_id is never null, so comparing ids is exact.
        column = table.c.organization_id
        return column == self.org_id if op == "eq" else column != self.org_id
