"""What of the schema an audience sees: the catalog-to-schema map (DESIGN §5).

Every field of the access catalog (``hub.access.FIELDS`` and the derived fields) is mapped
to the schema coordinates it feeds: the output fields that show it, the filter fields that
reveal it, the mutation input fields that set it. The map is read from the resource
registry (:mod:`hub.access.registry`), which declares each field's API names once.
:func:`hidden_coordinates` turns what the access module shows a principal into the
coordinates its schema leaves out:

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
- a field that is not data but needs a scope (:data:`SCOPED`: a subscriber's own webhook
  subscriptions) is hidden unless the caller holds that scope;
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

from collections.abc import Mapping
from functools import lru_cache

from graphql import GraphQLInputObjectType, GraphQLObjectType, GraphQLSchema

from hub.access import REGISTRY, WITHHELD, Action, Record, Resource, access
from hub.access.registry import NODES
from hub.oauth.scopes import Scope
from hub.principal import Principal

FEEDS: dict[Resource, dict[str, tuple[str, ...]]] = {
    resource: {f.name: spec.coordinates(f) for f in spec.fields}
    for resource, spec in REGISTRY.items()
}
"""Catalog field -> the schema coordinates it feeds, per resource: its output fields, the
mutation input fields setting it and the filter fields revealing it (as the registry
declares them; ``()`` for a field no API shape shows, e.g. ``organization``, derived for
policy conditions only)."""

RESOURCE_PARTS: dict[Resource, tuple[str, ...]] = {
    resource: (spec.api_type, *spec.reached_by) for resource, spec in REGISTRY.items()
}
"""What goes when no field of the resource is shown: its type, root and connection fields."""

WRITES: dict[str, tuple[Resource, Action]] = {
    f"Mutation.{name}": (resource, action)
    for resource, spec in REGISTRY.items()
    for name, action in spec.mutations.items()
}
"""Data mutations -> what they do: hidden unless the caller may (:meth:`Access.may`)."""

ENUM_VALUES: dict[str, tuple[Resource, str]] = {
    f"{spec.order_enum}.{name.upper()}": (resource, name)
    for resource, spec in REGISTRY.items()
    for name in spec.orderable
}
"""Values of input enums that name a catalog field (the order fields): hidden unless the
field is readable in clear (ordering by a field reveals its values, so the hub accepts no
other)."""

WRITE_INPUTS: dict[str, tuple[Resource, Action]] = {
    name: (resource, action)
    for resource, spec in REGISTRY.items()
    for name, action in spec.inputs.items()
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
        *(f"{type_name}.id" for type_name in NODES),  # a node's global ID
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

SCOPED: dict[str, Scope] = {
    coordinate: Scope.WEBHOOKS_MANAGE
    for coordinate in (
        "Query.webhookSubscriptions",
        "Query.webhookSubscription",
        "Query.webhookDeliveries",
        "Mutation.createWebhookSubscription",
        "Mutation.rotateWebhookSecret",
        "Mutation.pauseWebhookSubscription",
        "Mutation.resumeWebhookSubscription",
    )
}
"""Coordinates that are not data but need a scope: shown exactly when the caller holds
it (a subscriber's own webhook subscriptions, schema/webhooks; the scope is part of the
audience key, :meth:`hub.access.Access.audience`)."""

TYPE_RESOURCES: dict[str, Resource] = {
    type_name: resource
    for resource, spec in REGISTRY.items()
    for type_name in (
        spec.api_type,
        *(c.split(".")[0] for f in spec.fields for c in spec.outputs(f)),
    )
}
"""Output types built from a record: their fields may be withheld on a row."""

FEEDERS: dict[str, frozenset[tuple[Resource, str]]] = {}
"""Schema coordinate -> the catalog fields feeding it (the inverse of :data:`FEEDS`)."""
for _resource, _fields in FEEDS.items():
    for _name, _coordinates in _fields.items():
        for _coordinate in _coordinates:
            FEEDERS[_coordinate] = FEEDERS.get(_coordinate, frozenset()) | {(_resource, _name)}

CLASSIFIED = frozenset(FEEDERS) | PUBLIC | frozenset(WRITES) | frozenset(SCOPED)
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


def hidden_coordinates(
    schema: GraphQLSchema,
    principal: Principal,
    remote: Mapping[str, tuple[Resource, str]] | None = None,
) -> frozenset[str]:
    """The types and fields (``"Type"``, ``"Type.field"``) of ``schema`` the principal's
    schema leaves out. A function of ``access.audience(principal)`` alone.

    ``remote`` maps the fields federated subgraphs add (``Customer.loyaltyTier``) to the
    catalog field deciding them: each is shown exactly when some rule shows that field
    to the caller (their own types go with them when no field reaches them)."""
    if access.is_admin(principal):
        return frozenset()
    remote = remote or {}
    shown = {resource: access.shown_fields(principal, resource) for resource in Resource}
    writable = {key: access.writable_fields(principal, *key) for key in set(WRITE_INPUTS.values())}
    hidden = {c for c in data_coordinates(schema) if c not in CLASSIFIED and c not in remote}
    hidden.update(c for c, (r, name) in remote.items() if name not in shown[r])
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
    hidden.update(c for c, scope in SCOPED.items() if not principal.has_scope(scope))
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


def split_withheld(type_name: str, record: Record) -> tuple[frozenset[str], Record]:
    """For ``from_record``: the fields of ``type_name`` withheld on this row, and the
    record without the withheld values (the record itself when nothing is withheld)."""
    if WITHHELD not in record:
        return NOTHING, record
    return withheld_fields(type_name, record), without_withheld(record)


def without_withheld(record: Record) -> Record:
    """The record without the values of its withheld fields (they answer ``null``)."""
    withheld = record.get(WITHHELD)
    if not withheld:
        return record
    return {k: v for k, v in record.items() if k not in withheld}
