"""What of the schema an audience sees: the catalog-to-schema map (DESIGN §5).

Every field of the access catalog (``hub.access.FIELDS`` and the derived fields) is mapped
to the schema coordinates it feeds: the output fields that show it, the filter fields that
reveal it, the mutation input fields that set it. :func:`hidden_coordinates` turns what
the access module shows a principal into the coordinates its schema leaves out:

- a coordinate is hidden when *none* of the catalog fields feeding it is shown (so
  ``Feedback.customerRef``, fed by ``customer_ref`` and ``customer_id``, stays while
  either is shown), or, for mutation inputs (:data:`WRITE_INPUTS`), shown or writable;
  ``Type.id`` stays whenever its type does;
- a resource without any shown field (no read scope, or no rule) loses its type, its
  root and connection fields (:data:`RESOURCE_PARTS`); a type left with no field goes
  with every field returning it (``Consent`` and ``Customer.consent``), see
  :mod:`schema._prune`;
- a data mutation (:data:`WRITES`) is hidden unless the caller may use it: its OAuth
  scope and an applicable rule granting its ``create`` or ``write``
  (:meth:`hub.access.Access.may`); the access module refuses it at run time anyway,
  hiding is on top. Its input and payload types go with it when nothing else uses them;
  with no mutation left there is no ``Mutation`` type;
- a value of an enum naming catalog fields (:data:`ENUM_VALUES`: the customer order
  fields) is hidden unless its field is readable in clear on every row the caller sees,
  exactly what the hub accepts to order by; a default naming a hidden value is dropped
  (``CustomerOrder.field`` then has to be given);
- on ``Query``, ``Mutation`` and the data types, a field no table here classifies is for
  administrators only (deny by default: admin queries and mutations, and any field added
  without a mapping; ``tests/schema/test_audience.py`` fails on the latter).

Hub administrators (:data:`hub.access.FULL_SCHEMA`) hide nothing.

Deliberately not filtered: mutation inputs that *reference* a row the caller already sees
(``SubmitFeedbackInput.customerId``...).

Every decision here reads the rules that apply to the caller, which its audience key
(:meth:`hub.access.Access.audience`) covers: equal keys, equal schemas.
"""

from __future__ import annotations

from functools import lru_cache

from graphql import GraphQLInputObjectType, GraphQLObjectType, GraphQLSchema

from hub.access import WITHHELD, Action, Record, Resource, access
from hub.customers import CustomerOrderField
from hub.principal import Principal

_C, _F = Resource.CUSTOMER, Resource.FEEDBACK
_I, _P, _A = Resource.INTERACTION, Resource.PURCHASE, Resource.ASSIGNMENT


def _customer(field: str, *more: str) -> tuple[str, ...]:
    """``Customer.<field>`` and the same-named fields of the customer mutation inputs."""
    return (f"Customer.{field}", f"CustomerInput.{field}", f"CustomerPatch.{field}", *more)


FEEDS: dict[Resource, dict[str, tuple[str, ...]]] = {
    _C: {
        "id": ("Customer.id",),
        "kind": _customer("kind"),
        "name": _customer("name", "CustomerFilter.search"),
        "email": _customer("email"),
        "phone": _customer("phone"),
        "company": _customer("company", "CustomerFilter.search"),
        "title": _customer("title"),
        "city": _customer("city"),
        "region": _customer("region", "CustomerFilter.region"),
        "country": _customer("country"),
        "segment": _customer("segment", "CustomerFilter.segment"),
        "lifecycle_stage": _customer("lifecycleStage", "CustomerFilter.lifecycleStage"),
        "lifetime_value": _customer("lifetimeValue"),
        "consent_share_with_partners": (
            "Consent.shareWithPartners",
            "CustomerInput.shareWithPartners",
            "CustomerPatch.shareWithPartners",
            "RecordConsentInput.shareWithPartners",
        ),
        "consent_marketing_opt_in": (
            "Consent.marketingOptIn",
            "CustomerInput.marketingOptIn",
            "CustomerPatch.marketingOptIn",
            "RecordConsentInput.marketingOptIn",
        ),
        "consent_given_at": ("Consent.givenAt", "RecordConsentInput.givenAt"),
        "consent_source": (
            "Consent.source",
            "CustomerInput.consentSource",
            "CustomerPatch.consentSource",
            "RecordConsentInput.source",
        ),
        "traits": _customer("traits"),
        "provenance": ("Customer.provenance",),
        "version": ("Customer.version",),
        "created_at": ("Customer.createdAt",),
        "updated_at": ("Customer.updatedAt", "CustomerFilter.updatedSince"),
    },
    _F: {
        "id": ("Feedback.id",),
        "customer_id": ("Feedback.customer", "Feedback.customerRef", "FeedbackFilter.customerId"),
        "customer_ref": ("Feedback.customerRef",),  # derived: a global ID or a pseudonym
        "organization_id": ("Feedback.organization",),
        "organization": (),  # derived, for policy conditions only
        "channel": ("Feedback.channel", "SubmitFeedbackInput.channel"),
        "kind": ("Feedback.kind", "FeedbackFilter.kind", "SubmitFeedbackInput.kind"),
        "scale": ("Feedback.scale", "SubmitFeedbackInput.scale"),
        "score": ("Feedback.score", "SubmitFeedbackInput.score"),
        "text": ("Feedback.text", "SubmitFeedbackInput.text"),
        "product": ("Feedback.product", "FeedbackFilter.product", "SubmitFeedbackInput.product"),
        "tags": ("Feedback.tags", "SubmitFeedbackInput.tags"),
        "status": ("Feedback.status", "FeedbackFilter.status"),
        "visibility": ("Feedback.visibility", "SubmitFeedbackInput.visibility"),
        "external_ref": ("Feedback.externalRef", "SubmitFeedbackInput.externalRef"),
        "created_at": ("Feedback.createdAt", "FeedbackFilter.since"),
        "updated_at": ("Feedback.updatedAt",),
    },
    _I: {
        "id": ("Interaction.id",),
        "customer_id": (),  # not in the API (an interaction is reached from its customer)
        "organization_id": (),
        "organization": (),
        "channel": ("Interaction.channel", "LogInteractionInput.channel"),
        "direction": ("Interaction.direction", "LogInteractionInput.direction"),
        "summary": ("Interaction.summary", "LogInteractionInput.summary"),
        "occurred_at": ("Interaction.occurredAt", "LogInteractionInput.occurredAt"),
        "created_at": (),
    },
    _P: {
        "id": ("Purchase.id",),
        "customer_id": (),
        "organization_id": (),
        "organization": (),
        "sku": ("Purchase.sku", "ReportPurchaseInput.sku"),
        "quantity": ("Purchase.quantity", "ReportPurchaseInput.quantity"),
        "amount": ("Purchase.amount", "ReportPurchaseInput.amount"),
        "currency": ("Purchase.currency", "ReportPurchaseInput.currency"),
        "purchased_at": ("Purchase.purchasedAt", "ReportPurchaseInput.purchasedAt"),
        "created_at": (),
    },
    _A: {
        "id": (),
        "customer_id": (),
        "organization_id": ("CustomerPartner.organization",),
        "organization": (),
        "role": ("CustomerPartner.role",),
        "since": ("CustomerPartner.since",),
    },
}
"""Catalog field -> the schema coordinates it feeds, per resource."""

RESOURCE_PARTS: dict[Resource, tuple[str, ...]] = {
    _C: ("Customer", "Query.customers", "Query.customer"),
    _F: ("Feedback", "Query.feedback", "Customer.feedback"),
    _I: ("Interaction", "Customer.interactions"),
    _P: ("Purchase", "Customer.purchases"),
    _A: ("CustomerPartner", "Customer.partners"),
}
"""What goes when no field of the resource is shown: its type, root and connection fields."""

WRITES: dict[str, tuple[Resource, Action]] = {
    "Mutation.createCustomer": (_C, Action.CREATE),
    "Mutation.updateCustomer": (_C, Action.UPDATE),
    "Mutation.upsertCustomer": (_C, Action.CREATE),
    "Mutation.submitFeedback": (_F, Action.CREATE),
    "Mutation.logInteraction": (_I, Action.CREATE),
    "Mutation.reportPurchase": (_P, Action.CREATE),
    "Mutation.updateFeedbackStatus": (_F, Action.UPDATE),
    "Mutation.recordConsent": (_C, Action.UPDATE),
}
"""Data mutations -> what they do: hidden unless the caller may (:meth:`Access.may`)."""

ENUM_VALUES: dict[str, tuple[Resource, str]] = {
    f"CustomerOrderField.{member.name}": (_C, member.value) for member in CustomerOrderField
}
"""Values of input enums that name a catalog field: hidden unless the field is readable
in clear (ordering by a field reveals its values, so the hub accepts no other)."""

WRITE_INPUTS: dict[str, tuple[Resource, Action]] = {
    "CustomerInput": (_C, Action.CREATE),
    "CustomerPatch": (_C, Action.UPDATE),
    "SubmitFeedbackInput": (_F, Action.CREATE),
    "LogInteractionInput": (_I, Action.CREATE),
    "ReportPurchaseInput": (_P, Action.CREATE),
    "RecordConsentInput": (_C, Action.UPDATE),
}
"""Mutation inputs: a field stays if the caller may see *or* set what it feeds (so a field it
sees but may not set is refused with a user error at run time, and a write-only field is
there); a required one gone takes the input and its mutation with it."""

PUBLIC = frozenset(
    {
        "Query.node",
        "Query.nodes",
        "Query.me",
        "Query._service",
        "Query._entities",
        "Customer.id",
        "Feedback.id",
        "Interaction.id",
        "Purchase.id",
        "Customer.consent",  # goes with Consent when none of its fields is shown
        "SubmitFeedbackInput.customerId",  # references a customer the caller sees
        "LogInteractionInput.customerId",
        "ReportPurchaseInput.customerId",
        "RecordConsentInput.customerId",
        # Idempotency keys are request metadata, not data.
        "SubmitFeedbackInput.idempotencyKey",
        "LogInteractionInput.idempotencyKey",
        "ReportPurchaseInput.idempotencyKey",
        "RecordConsentInput.idempotencyKey",
        "CustomerInput.idempotencyKey",
    }
)
"""Coordinates that are not data: never hidden by this table (the pruning may still
remove them with their type)."""

TYPE_RESOURCES: dict[str, Resource] = {
    "Customer": _C,
    "Consent": _C,
    "Feedback": _F,
    "Interaction": _I,
    "Purchase": _P,
    "CustomerPartner": _A,
}
"""Output types built from a record: their fields may be withheld on a row."""

FEEDERS: dict[str, frozenset[tuple[Resource, str]]] = {}
"""Schema coordinate -> the catalog fields feeding it (the inverse of :data:`FEEDS`)."""
for _resource, _fields in FEEDS.items():
    for _name, _coordinates in _fields.items():
        for _coordinate in _coordinates:
            FEEDERS[_coordinate] = FEEDERS.get(_coordinate, frozenset()) | {(_resource, _name)}

CLASSIFIED = frozenset(FEEDERS) | PUBLIC | frozenset(WRITES)
CLASSIFIED |= frozenset(c for parts in RESOURCE_PARTS.values() for c in parts if "." in c)
"""Every coordinate some table here decides."""

DATA_TYPES = frozenset({"Query", "Mutation"} | {c.split(".")[0] for c in FEEDERS})
"""Types whose unclassified fields are for administrators only."""


def data_coordinates(schema: GraphQLSchema) -> list[str]:
    """Every field and input field of :data:`DATA_TYPES` in ``schema``."""
    found: list[str] = []
    for name in sorted(DATA_TYPES):
        type_ = schema.type_map.get(name)
        if isinstance(type_, GraphQLObjectType | GraphQLInputObjectType):
            found.extend(f"{name}.{field}" for field in type_.fields)
    return found


def hidden_coordinates(schema: GraphQLSchema, principal: Principal) -> frozenset[str]:
    """The types and fields (``"Type"``, ``"Type.field"``) of ``schema`` the principal's
    schema leaves out. A function of ``access.audience(principal)`` alone."""
    if access.is_admin(principal):
        return frozenset()
    shown = {resource: access.shown_fields(principal, resource) for resource in Resource}
    writable = {key: access.writable_fields(principal, *key) for key in set(WRITE_INPUTS.values())}
    hidden = {c for c in data_coordinates(schema) if c not in CLASSIFIED}
    for resource, parts in RESOURCE_PARTS.items():
        if not shown[resource]:
            hidden.update(parts)
    for coordinate, feeders in FEEDERS.items():
        if coordinate in PUBLIC or any(f in shown[r] for r, f in feeders):
            continue
        write = WRITE_INPUTS.get(coordinate.split(".")[0])
        if write is None or not any(f in writable[write] for _, f in feeders):
            hidden.add(coordinate)
    for coordinate, (resource, action) in WRITES.items():
        if not access.may(principal, resource, action):
            hidden.add(coordinate)
    readable = {resource: access.readable_fields(principal, resource) for resource in Resource}
    hidden.update(c for c, (r, name) in ENUM_VALUES.items() if name not in readable[r])
    return frozenset(hidden)


# --- fields withheld on one row ---------------------------------------------------------

NOTHING: frozenset[str] = frozenset()


@lru_cache(maxsize=4096)
def _withholdable(
    type_name: str, withheld: frozenset[str]
) -> tuple[tuple[str, frozenset[str]], ...]:
    """The fields of ``type_name`` fed by a withheld catalog field, with their feeders."""
    resource = TYPE_RESOURCES[type_name]
    prefix = f"{type_name}."
    found: list[tuple[str, frozenset[str]]] = []
    for coordinate, feeders in FEEDERS.items():
        if coordinate.startswith(prefix) and any((resource, f) in feeders for f in withheld):
            names = frozenset(f for r, f in feeders if r is resource)
            found.append((coordinate[len(prefix) :], names))
    return tuple(found)


def withheld_fields(type_name: str, record: Record) -> frozenset[str]:
    """The fields of ``type_name`` that answer ``null`` on this row because a policy
    withholds what feeds them (and nothing else feeding them is in the record)."""
    withheld = record.get(WITHHELD)
    if not withheld:
        return NOTHING
    return frozenset(
        name
        for name, feeders in _withholdable(type_name, frozenset(withheld))
        if not any(f in record and f not in withheld for f in feeders)
    )


def without_withheld(record: Record) -> Record:
    """The record without the values of its withheld fields (they answer ``null``)."""
    withheld = record.get(WITHHELD)
    if not withheld:
        return record
    return {k: v for k, v in record.items() if k not in withheld}
