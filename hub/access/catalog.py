"""The hub's resources as the policy engine sees them: the catalog and its SQL mapping.

The catalog (:data:`CATALOG`) is what a policy may name, read from the resource registry
(:mod:`hub.access.registry`): every field with its type, the relations dotted paths may
cross, and a few *derived* fields that exist for policies:

- ``organization`` on CustomerPartner, Feedback, Interaction and Purchase: the slug of the
  organization (the assigned partner, the contributor), so a policy says
  ``assignments.organization: {eq: $subject.org}`` rather than naming UUIDs;
- ``customer_ref`` on Feedback: the customer the feedback is about, as the API's
  ``Feedback.customerRef`` shows it (a policy masks it as a ``pseudonym`` to let a partner
  group feedback by customer without learning who the customer is).

A subject may name an organization kind (:class:`hub.models.OrgKind`) and a role: a staff
user's (:data:`hub.models.STAFF_ROLES`) or a department's (:data:`DEPARTMENT_ROLES`); the
validator refuses any other, which would match nobody.

Fields the registry declares sealed (stored as :class:`hub.models._sealed.EncryptedText`:
Customer.email and phone) are *opaque*: a condition may only test them with ``is_null``,
since SQL sees ciphertext (see :data:`OPAQUE`).

:class:`HubMapping` maps the catalog onto the tables for :func:`policies.plan`.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import ColumnElement, FromClause, select

from hub.access.registry import REGISTRY, Resource
from hub.models import STAFF_ROLES, Organization, OrgKind
from policies import Catalog, FieldType, Join

TYPES: dict[Resource, dict[str, FieldType]] = {
    resource: {f.name: f.type for f in spec.fields} for resource, spec in REGISTRY.items()
}
"""Every field a policy may name, per resource, with its type."""

API_ENUMS: dict[Resource, frozenset[str]] = {
    resource: frozenset(f.name for f in spec.fields if f.values)
    for resource, spec in REGISTRY.items()
}
"""String fields the API types as enums: no mask output is one of their values."""

DERIVED: dict[str, str] = {
    f.name: f.derived_from
    for spec in REGISTRY.values()
    for f in spec.fields
    if f.derived_from is not None
}
"""Derived field -> the column it is computed from (the same on every resource: the
registry's check refuses otherwise)."""

RELATIONS: dict[Resource, dict[str, dict[str, Any]]] = {
    resource: {r.name: {"resource": str(r.target), "many": r.many} for r in spec.relations}
    for resource, spec in REGISTRY.items()
}

SUBJECT_ATTRIBUTES = {"regions": "string[]", "products": "string[]", "countries": "string[]"}
"""Organization attributes a policy may use as ``$subject.attributes.<name>``."""

DEPARTMENT_ROLES = ("sales", "support", "marketing")
"""What a department does, as its ``roles`` attribute says (``{"roles": ["support"]}``,
:func:`hub.access.policy_rules.caller_of`). A policy subject may name these and the staff
roles; declare a new department role here before a policy names it."""

OPAQUE: dict[Resource, dict[str, str]] = {
    resource: {f.name: f.opaque for f in spec.fields if f.opaque is not None}
    for resource, spec in REGISTRY.items()
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
        for resource in REGISTRY
    },
    subject_attributes=SUBJECT_ATTRIBUTES,
    subject_kinds=[kind.value for kind in OrgKind],
    subject_roles=[*STAFF_ROLES, *DEPARTMENT_ROLES],
)


class HubMapping:
    """:class:`policies.SqlMapping` over the hub's tables, for one caller.

    ``organization`` compares as a slug (a scalar subquery); equality with the caller's
    own slug, by far the commonest condition, compiles to a comparison of
    ``organization_id`` with the caller's id instead, which the indexes serve.
    """

    def __init__(
        self, org_slug: str, org_id: uuid.UUID, within: tuple[str, str, FromClause] | None = None
    ) -> None:
        self.org_slug = org_slug
        self.org_id = org_id
        # (resource, relation, row in scope): conditions are evaluated on rows of the
        # resource's table that are all related through ``relation`` to that one row
        # (the enclosing row of a nested read), so paths across it read it directly.
        self.within = within

    def table(self, resource: str) -> FromClause:
        return REGISTRY[Resource(resource)].table.__table__  # type: ignore[attr-defined,no-any-return]

    def column(self, resource: str, table: FromClause, field: str) -> ColumnElement[Any]:
        if field == "organization":
            return (
                select(Organization.__table__.c.slug)  # type: ignore[attr-defined]
                .where(Organization.__table__.c.id == table.c.organization_id)  # type: ignore[attr-defined]
                .scalar_subquery()
            )
        return table.c[DERIVED.get(field, field)]

    def relation(self, resource: str, table: FromClause, name: str) -> Join:
        relation = REGISTRY[Resource(resource)].relation_named(name)
        within = self.within
        if (
            within is not None
            and (resource, name) == within[:2]
            and table is self.table(resource)
            and not relation.many
        ):
            row = within[2]
            return Join(
                str(relation.target),
                row,
                row.c[relation.remote] == table.c[relation.local],
                many=False,
                bound=True,
            )
        target = self.table(relation.target).alias()
        joined = target.c[relation.remote] == table.c[relation.local]
        return Join(str(relation.target), target, joined, relation.many)

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
