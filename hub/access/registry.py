"""The resource registry: every resource access is decided on, declared once (DESIGN §10).

:data:`REGISTRY` holds one :class:`~hub.access.specs.ResourceSpec` per :class:`Resource`.
Every other per-resource list is a view of it:

- the tables and projection allow-lists (:mod:`hub.access.resources`: ``MODELS``,
  ``FIELDS``) and the OAuth scope per action (:data:`hub.access.rules.REQUIRED_SCOPE`);
- the policy catalog and its SQL mapping (:mod:`hub.access.catalog`);
- the per-audience schema's map (:mod:`schema.audience`: ``FEEDS``, ``RESOURCE_PARTS``,
  ``WRITES``, ``WRITE_INPUTS``, ``ENUM_VALUES``, ``TYPE_RESOURCES``);
- node kinds and global ids (:data:`schema.ids.NODE_TYPES`), the policy admin's
  ``PolicyResource`` enum, the customer filters' fields and the order of lists hanging
  off a customer (:data:`hub.related.TIME_COLUMN`).

The GraphQL types stay hand-written (they carry descriptions); tests/hub/test_registry.py
fails when a registry field has no API field or the reverse, and when a table, the
migrated database or the policy catalog disagrees with the registry. :func:`check` runs
at import: a declaration that does not fit its table stops the hub from starting.

Adding a resource: see "Adding a resource" in docs/architecture.md.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

from hub.access.specs import Action, FieldSpec, Order, RelationSpec, ResourceSpec
from hub.models import Customer, CustomerPartner, Feedback, Interaction, Purchase
from hub.models._sealed import EncryptedText
from hub.models.activity import (
    CHANNELS,
    DIRECTIONS,
    FEEDBACK_KINDS,
    FEEDBACK_STATUSES,
    SCALES,
    VISIBILITIES,
)
from hub.models.case import CASE_PRIORITIES, CASE_STATUSES, Case, CaseNote
from hub.models.customer import CUSTOMER_KINDS, LIFECYCLE_STAGES, SEGMENTS
from hub.oauth.scopes import Scope
from policies import FieldType

_T = FieldType


class Resource(enum.StrEnum):
    CUSTOMER = "Customer"
    FEEDBACK = "Feedback"
    INTERACTION = "Interaction"
    PURCHASE = "Purchase"
    ASSIGNMENT = "CustomerPartner"
    CASE = "Case"
    CASE_NOTE = "CaseNote"


class RegistryError(RuntimeError):
    """A resource declaration that does not fit its table or the other declarations."""


_TO_CUSTOMER = RelationSpec("customer", Resource.CUSTOMER, local="customer_id", remote="id")
# Who wrote a row: columns every contributed record has, shown as the organization only
# where the API says so; ``organization`` (the slug) exists for policy conditions.
_ORGANIZATION = FieldSpec("organization", _T.STRING, api=(), derived_from="organization_id")
_CUSTOMER_WRITE = ("CustomerInput", "CustomerPatch")


def _consent(api: str) -> tuple[str, ...]:
    """A consent field's inputs: the customer inputs' and recordConsent's."""
    return tuple(f"{t}.{api}" for t in (*_CUSTOMER_WRITE, "RecordConsentInput"))


_CUSTOMER = ResourceSpec(
    table=Customer,
    api_type="Customer",
    node=True,
    entity=True,
    reached_by=("Query.customers", "Query.customer"),
    scopes={
        Action.READ: Scope.CUSTOMERS_READ,
        Action.CREATE: Scope.CUSTOMERS_WRITE,
        Action.UPDATE: Scope.CUSTOMERS_WRITE,
    },
    default_order=Order("name"),
    relations=(
        RelationSpec(
            "assignments", Resource.ASSIGNMENT, local="id", remote="customer_id", many=True
        ),
    ),
    mutations={
        "createCustomer": Action.CREATE,
        "updateCustomer": Action.UPDATE,
        "upsertCustomer": Action.CREATE,
        "recordConsent": Action.UPDATE,
    },
    inputs={
        "CustomerInput": Action.CREATE,
        "CustomerPatch": Action.UPDATE,
        "RecordConsentInput": Action.UPDATE,
    },
    filter_type="CustomerFilter",
    order_enum="CustomerOrderField",
    # Keyed hashes of email and phone for exact matching: never shown, never decided on.
    internal=frozenset({"email_index", "phone_index"}),
    fields=(
        FieldSpec("id", _T.UUID),
        FieldSpec("kind", _T.STRING, values=CUSTOMER_KINDS, inputs=_CUSTOMER_WRITE),
        FieldSpec("name", _T.STRING, inputs=_CUSTOMER_WRITE, filters=("search",), orderable=True),
        FieldSpec("email", _T.STRING, sealed=True, inputs=_CUSTOMER_WRITE),
        FieldSpec("phone", _T.STRING, sealed=True, inputs=_CUSTOMER_WRITE),
        FieldSpec("company", _T.STRING, inputs=_CUSTOMER_WRITE, filters=("search",)),
        FieldSpec("title", _T.STRING, inputs=_CUSTOMER_WRITE),
        FieldSpec("city", _T.STRING, inputs=_CUSTOMER_WRITE),
        FieldSpec("region", _T.STRING, inputs=_CUSTOMER_WRITE, filters=("region",)),
        FieldSpec("country", _T.STRING, inputs=_CUSTOMER_WRITE),
        FieldSpec(
            "segment", _T.STRING, values=SEGMENTS, inputs=_CUSTOMER_WRITE, filters=("segment",)
        ),
        FieldSpec(
            "lifecycle_stage",
            _T.STRING,
            values=LIFECYCLE_STAGES,
            inputs=_CUSTOMER_WRITE,
            filters=("lifecycle_stage",),
        ),
        FieldSpec("lifetime_value", _T.NUMBER, inputs=_CUSTOMER_WRITE),
        FieldSpec(
            "consent_share_with_partners",
            _T.BOOLEAN,
            api=("Consent.shareWithPartners",),
            inputs=_consent("shareWithPartners"),
        ),
        FieldSpec(
            "consent_marketing_opt_in",
            _T.BOOLEAN,
            api=("Consent.marketingOptIn",),
            inputs=_consent("marketingOptIn"),
        ),
        FieldSpec(
            "consent_given_at",
            _T.DATETIME,
            api=("Consent.givenAt",),
            inputs=("RecordConsentInput.givenAt",),
        ),
        FieldSpec(
            "consent_source",
            _T.STRING,
            api=("Consent.source",),
            inputs=(*_CUSTOMER_WRITE, "RecordConsentInput.source"),
        ),
        FieldSpec("traits", _T.JSON, inputs=_CUSTOMER_WRITE),
        FieldSpec("provenance", _T.JSON),
        FieldSpec("version", _T.INTEGER),
        FieldSpec("created_at", _T.DATETIME, orderable=True),
        FieldSpec("updated_at", _T.DATETIME, filters=("updated_since",), orderable=True),
    ),
)

_ASSIGNMENT = ResourceSpec(
    table=CustomerPartner,
    api_type="CustomerPartner",
    reached_by=("Customer.partners",),
    scopes={Action.READ: Scope.CUSTOMERS_READ},
    default_order=Order("since", descending=True),
    relations=(_TO_CUSTOMER,),
    fields=(
        FieldSpec("id", _T.UUID, api=()),
        FieldSpec("customer_id", _T.UUID, api=()),
        FieldSpec("organization_id", _T.UUID, api=("organization",)),
        _ORGANIZATION,
        FieldSpec("role", _T.STRING),
        FieldSpec("since", _T.DATETIME),
    ),
)

_SUBMIT = ("SubmitFeedbackInput",)
_FEEDBACK = ResourceSpec(
    table=Feedback,
    api_type="Feedback",
    node=True,
    entity=True,
    reached_by=("Query.feedback", "Customer.feedback"),
    scopes={
        Action.READ: Scope.FEEDBACK_READ,
        Action.CREATE: Scope.FEEDBACK_WRITE,
        Action.UPDATE: Scope.FEEDBACK_WRITE,
    },
    default_order=Order("created_at", descending=True),
    relations=(_TO_CUSTOMER,),
    mutations={"submitFeedback": Action.CREATE, "updateFeedbackStatus": Action.UPDATE},
    inputs={"SubmitFeedbackInput": Action.CREATE},
    filter_type="FeedbackFilter",
    fields=(
        FieldSpec("id", _T.UUID),
        FieldSpec(
            "customer_id", _T.UUID, api=("customer", "customerRef"), filters=("customer_id",)
        ),
        # A global ID, or a pseudonym when a policy masks it.
        FieldSpec("customer_ref", _T.UUID, api=("customerRef",), derived_from="customer_id"),
        FieldSpec("organization_id", _T.UUID, api=("organization",)),
        _ORGANIZATION,
        FieldSpec("channel", _T.STRING, values=CHANNELS, inputs=_SUBMIT),
        FieldSpec("kind", _T.STRING, values=FEEDBACK_KINDS, inputs=_SUBMIT, filters=("kind",)),
        FieldSpec("scale", _T.STRING, values=tuple(SCALES), inputs=_SUBMIT),
        FieldSpec("score", _T.INTEGER, inputs=_SUBMIT),
        FieldSpec("text", _T.STRING, inputs=_SUBMIT),
        FieldSpec("product", _T.STRING, inputs=_SUBMIT, filters=("product",)),
        FieldSpec("tags", _T.STRING_LIST, inputs=_SUBMIT),
        FieldSpec("status", _T.STRING, values=FEEDBACK_STATUSES, filters=("status",)),
        FieldSpec("visibility", _T.STRING, values=VISIBILITIES, inputs=_SUBMIT),
        FieldSpec("external_ref", _T.STRING, inputs=_SUBMIT),
        FieldSpec("created_at", _T.DATETIME, filters=("since",)),
        FieldSpec("updated_at", _T.DATETIME),
    ),
)

# Interactions and purchases are reached from their customer: neither the customer nor
# the contributing organization is an API field of theirs.
_LOG = ("LogInteractionInput",)
_INTERACTION = ResourceSpec(
    table=Interaction,
    api_type="Interaction",
    node=True,
    reached_by=("Customer.interactions",),
    scopes={Action.READ: Scope.CUSTOMERS_READ, Action.CREATE: Scope.CUSTOMERS_WRITE},
    default_order=Order("occurred_at", descending=True),
    relations=(_TO_CUSTOMER,),
    mutations={"logInteraction": Action.CREATE},
    inputs={"LogInteractionInput": Action.CREATE},
    fields=(
        FieldSpec("id", _T.UUID),
        FieldSpec("customer_id", _T.UUID, api=()),
        FieldSpec("organization_id", _T.UUID, api=()),
        _ORGANIZATION,
        FieldSpec("channel", _T.STRING, values=CHANNELS, inputs=_LOG),
        FieldSpec("direction", _T.STRING, values=DIRECTIONS, inputs=_LOG),
        FieldSpec("summary", _T.STRING, inputs=_LOG),
        FieldSpec("occurred_at", _T.DATETIME, inputs=_LOG),
        FieldSpec("created_at", _T.DATETIME, api=()),
    ),
)

_REPORT = ("ReportPurchaseInput",)
_PURCHASE = ResourceSpec(
    table=Purchase,
    api_type="Purchase",
    node=True,
    reached_by=("Customer.purchases",),
    scopes={Action.READ: Scope.CUSTOMERS_READ, Action.CREATE: Scope.CUSTOMERS_WRITE},
    default_order=Order("purchased_at", descending=True),
    relations=(_TO_CUSTOMER,),
    mutations={"reportPurchase": Action.CREATE},
    inputs={"ReportPurchaseInput": Action.CREATE},
    fields=(
        FieldSpec("id", _T.UUID),
        FieldSpec("customer_id", _T.UUID, api=()),
        FieldSpec("organization_id", _T.UUID, api=()),
        _ORGANIZATION,
        FieldSpec("sku", _T.STRING, inputs=_REPORT),
        FieldSpec("quantity", _T.INTEGER, inputs=_REPORT),
        FieldSpec("amount", _T.NUMBER, inputs=_REPORT),
        FieldSpec("currency", _T.STRING, inputs=_REPORT),
        FieldSpec("purchased_at", _T.DATETIME, inputs=_REPORT),
        FieldSpec("created_at", _T.DATETIME, api=()),
    ),
)

# Support cases: a service ticket about a customer and a product. ``organization`` is the
# organization the case is assigned to (a department or a supplier), so a policy scopes
# a partner's cases with ``organization: {eq: $subject.org}``; reassigning is writing
# ``organization_id``. Cases share the feedback scopes: both are the service side.
_OPEN = ("OpenCaseInput",)
_CASE_EDIT = ("OpenCaseInput", "CasePatch")
_CASE = ResourceSpec(
    table=Case,
    api_type="Case",
    node=True,
    entity=True,
    reached_by=("Query.cases", "Query.case", "Customer.cases"),
    scopes={
        Action.READ: Scope.FEEDBACK_READ,
        Action.CREATE: Scope.FEEDBACK_WRITE,
        Action.UPDATE: Scope.FEEDBACK_WRITE,
    },
    default_order=Order("created_at", descending=True),
    relations=(_TO_CUSTOMER,),
    mutations={
        "openCase": Action.CREATE,
        "escalateFeedback": Action.CREATE,
        "updateCase": Action.UPDATE,
    },
    inputs={"OpenCaseInput": Action.CREATE, "CasePatch": Action.UPDATE},
    filter_type="CaseFilter",
    fields=(
        FieldSpec("id", _T.UUID),
        FieldSpec(
            "customer_id",
            _T.UUID,
            api=("customer", "customerRef"),
            inputs=_OPEN,
            filters=("customer_id",),
        ),
        # A global ID, or a pseudonym when a policy masks it (as on Feedback).
        FieldSpec("customer_ref", _T.UUID, api=("customerRef",), derived_from="customer_id"),
        FieldSpec(
            "organization_id",
            _T.UUID,
            api=("assignedTo",),
            inputs=("OpenCaseInput.assignedTo", "CasePatch.assignedTo"),
            filters=("assigned_to",),
        ),
        _ORGANIZATION,
        FieldSpec("opened_by_id", _T.UUID, api=("openedBy",)),
        FieldSpec("feedback_id", _T.UUID, api=("feedback",)),
        FieldSpec("product", _T.STRING, inputs=_CASE_EDIT, filters=("product",)),
        FieldSpec("subject", _T.STRING, inputs=_CASE_EDIT),
        FieldSpec("description", _T.STRING, inputs=_CASE_EDIT),
        FieldSpec(
            "priority",
            _T.STRING,
            values=CASE_PRIORITIES,
            inputs=_CASE_EDIT,
            filters=("priority",),
        ),
        FieldSpec(
            "status", _T.STRING, values=CASE_STATUSES, inputs=("CasePatch",), filters=("status",)
        ),
        FieldSpec("version", _T.INTEGER),
        FieldSpec("created_at", _T.DATETIME),
        FieldSpec("updated_at", _T.DATETIME),
    ),
)

# A case's thread: its own resource, so a policy can let a partner add notes to its
# cases without letting it edit them.
_CASE_NOTE = ResourceSpec(
    table=CaseNote,
    api_type="CaseNote",
    reached_by=("Case.notes",),
    scopes={Action.READ: Scope.FEEDBACK_READ, Action.CREATE: Scope.FEEDBACK_WRITE},
    default_order=Order("created_at", descending=True),
    relations=(RelationSpec("case", Resource.CASE, local="case_id", remote="id"),),
    mutations={"addCaseNote": Action.CREATE},
    fields=(
        FieldSpec("id", _T.UUID),
        FieldSpec("case_id", _T.UUID, api=()),
        # The case's customer, kept on the note for the read audit (hub.disclosures).
        FieldSpec("customer_id", _T.UUID, api=()),
        FieldSpec("organization_id", _T.UUID, api=("author",)),
        _ORGANIZATION,
        FieldSpec("text", _T.STRING),
        FieldSpec("created_at", _T.DATETIME),
    ),
)

REGISTRY: Mapping[Resource, ResourceSpec] = {
    Resource.CUSTOMER: _CUSTOMER,
    Resource.ASSIGNMENT: _ASSIGNMENT,
    Resource.FEEDBACK: _FEEDBACK,
    Resource.INTERACTION: _INTERACTION,
    Resource.PURCHASE: _PURCHASE,
    Resource.CASE: _CASE,
    Resource.CASE_NOTE: _CASE_NOTE,
}
"""Every resource, in the policy catalog's order."""

NODES: Mapping[str, Resource] = {
    spec.api_type: resource for resource, spec in REGISTRY.items() if spec.node
}
"""Global-id type name -> resource, for every Relay node."""


def check(registry: Mapping[Resource, ResourceSpec]) -> list[str]:
    """What in ``registry`` does not fit its tables or itself; empty when all is well."""
    problems = [f"{r.value}: no declaration in the registry" for r in Resource if r not in registry]
    derived: dict[str, str] = {}
    for resource, spec in registry.items():
        problems += _check_resource(resource.value, spec, registry, derived)
    return problems


def _check_resource(
    where: str,
    spec: ResourceSpec,
    registry: Mapping[Resource, ResourceSpec],
    derived: dict[str, str],
) -> list[str]:
    problems: list[str] = []
    table = spec.table_name
    columns = {c.name: c for c in spec.table.__table__.columns}  # type: ignore[attr-defined]
    names = [f.name for f in spec.fields]
    if len(set(names)) != len(names) or "id" not in names:
        problems.append(f"{where}: fields must be unique and include id")
    for f in spec.fields:
        column = columns.get(f.column)
        if column is None:
            problems.append(
                f"{where}.{f.name}: table {table} has no column {f.column!r}; add the column "
                "and its migration, or correct the declaration"
            )
        elif f.derived_from is None and f.sealed != isinstance(column.type, EncryptedText):
            problems.append(
                f"{where}.{f.name}: sealed must say whether {table}.{f.name} is an "
                "EncryptedText column"
            )
        if f.derived_from and derived.setdefault(f.name, f.derived_from) != f.derived_from:
            problems.append(
                f"{where}.{f.name}: a derived field is computed from the same column "
                f"on every resource ({derived[f.name]!r} elsewhere)"
            )
        if f.filters and spec.filter_type is None:
            problems.append(f"{where}.{f.name}: has filters but {where} has no filter_type")
        if f.orderable and spec.order_enum is None:
            problems.append(f"{where}.{f.name}: is orderable but {where} has no order_enum")
    undeclared = sorted(set(columns) - spec.stored - spec.internal)
    if undeclared:
        problems.append(
            f"{where}: columns {undeclared} of {table} are not declared: add a FieldSpec "
            "for each (shown as a policy decides) or list it in internal (never shown)"
        )
    if spec.internal & set(names) or not spec.internal <= set(columns):
        problems.append(f"{where}: internal must name columns of {table} that are not fields")
    for relation in spec.relations:
        target = next((s for r, s in registry.items() if r.value == relation.target), None)
        if target is None:
            problems.append(f"{where}.{relation.name}: no resource {relation.target!r}")
            continue
        target_columns = target.table.__table__.columns  # type: ignore[attr-defined]
        if relation.local not in columns or relation.remote not in target_columns:
            problems.append(
                f"{where}.{relation.name}: joins {table}.{relation.local} to "
                f"{target.table_name}.{relation.remote}, which must both be columns"
            )
        if relation.name in names:
            problems.append(f"{where}.{relation.name}: is both a field and a relation")
    if spec.default_order.field not in names:
        problems.append(f"{where}: default order by unknown field {spec.default_order.field!r}")
    actions = {Action.READ, *spec.mutations.values(), *spec.inputs.values()}
    for action in sorted(actions - set(spec.scopes)):
        problems.append(f"{where}: no OAuth scope declared for {action}")
    return problems


_PROBLEMS = check(REGISTRY)
if _PROBLEMS:
    raise RegistryError(
        "the resource registry (hub/access/registry.py) is out of step:\n" + "\n".join(_PROBLEMS)
    )
