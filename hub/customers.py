"""Customers: scoped reads and validated writes."""

from __future__ import annotations

import enum
import uuid
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from hub import proposals as proposals_module
from hub import provenance
from hub.access import Action, Record, Resource, access, pipeline
from hub.access.pipeline import Update, WriteRequest
from hub.errors import (
    BadInputError,
    ConflictError,
    NotFoundError,
)
from hub.filters import exact, not_before
from hub.models import Customer
from hub.models._types import row_values, utcnow
from hub.models.customer import CUSTOMER_KINDS, LIFECYCLE_STAGES, SEGMENTS
from hub.outbox import Operation
from hub.pagination import Ordering, Page, fetch_page, page_size
from hub.principal import Principal
from hub.proposals import Proposal
from hub.validation import Problems
from hub.vault import email_index, phone_index


class CustomerOrderField(enum.Enum):
    NAME = "name"
    UPDATED_AT = "updated_at"
    CREATED_AT = "created_at"


@dataclass(frozen=True)
class CustomerFilter:
    search: str | None = None
    region: str | None = None
    segment: str | None = None
    lifecycle_stage: str | None = None
    updated_since: datetime | None = None


@dataclass(frozen=True)
class CustomerOrder:
    field: CustomerOrderField = CustomerOrderField.NAME
    descending: bool = False


# Fields a filter reads, per filter attribute (the registry's filters): filtering reveals
# values, so each must be readable by the caller (CHECKLIST: hidden fields leak through
# filters).


# Without a readable name, the default order is by id: random, so it reveals nothing.
_BY_ID = Ordering(key="id:asc", columns=(Customer.id,), types=(uuid.UUID,))  # type: ignore[arg-type]


def _ordering_for(principal: Principal, order: CustomerOrder | None) -> Ordering:
    """The page order: ordering reveals values, so the field must be readable in clear
    on every row the caller sees; otherwise it is refused like a filter is."""
    if order is None:
        if not access.readable(principal, Resource.CUSTOMER, ["name"]):
            return _BY_ID
        order = CustomerOrder()
    elif not access.readable(principal, Resource.CUSTOMER, [order.field.value]):
        raise BadInputError("this ordering is not available")
    return _ordering(order)


def _ordering(order: CustomerOrder) -> Ordering:
    column = getattr(Customer, order.field.value)
    kind = str if order.field is CustomerOrderField.NAME else datetime
    return Ordering(
        key=order.field.value + (":desc" if order.descending else ":asc"),
        columns=(column, Customer.id),  # type: ignore[arg-type]
        types=(kind, uuid.UUID),
        descending=order.descending,
    )


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _conditions(principal: Principal, flt: CustomerFilter) -> list[ColumnElement[bool]]:
    access.require_filters(principal, Resource.CUSTOMER, flt)
    conditions = [access.row_filter(principal, Resource.CUSTOMER)]
    if flt.search:
        pattern = _like(flt.search.strip())
        conditions.append(
            or_(
                Customer.name.ilike(pattern, escape="\\"),  # type: ignore[attr-defined]
                Customer.company.ilike(pattern, escape="\\"),  # type: ignore[union-attr]
            )
        )
    conditions += exact(
        (Customer.region, flt.region),
        (Customer.segment, flt.segment),
        (Customer.lifecycle_stage, flt.lifecycle_stage),
    )
    return conditions + not_before(Customer.updated_at, flt.updated_since, "updatedSince")


def filter_conditions(principal: Principal, flt: CustomerFilter) -> list[ColumnElement[bool]]:
    """What ``customers(filter:)`` selects for the principal: its row policy and the
    filter (refused when the filter reveals a field it does not read in clear)."""
    return _conditions(principal, flt)


def ordering_for(principal: Principal, order: CustomerOrder | None) -> Ordering:
    """The keyset ordering ``customers(orderBy:)`` pages by."""
    return _ordering_for(principal, order)


async def get_customer(
    session: AsyncSession, principal: Principal, customer_id: uuid.UUID
) -> Record | None:
    """The customer as the principal may see it; ``None`` when missing *or* not visible."""
    statement = access.select(principal, Resource.CUSTOMER).where(Customer.id == customer_id)  # type: ignore[arg-type]
    row = (await session.execute(statement)).first()
    return None if row is None else access.project(principal, Resource.CUSTOMER, row)


async def get_customers(
    session: AsyncSession, principal: Principal, ids: list[uuid.UUID]
) -> dict[uuid.UUID, Record]:
    """Several customers by id in one statement (DataLoaders, federation entities)."""
    statement = access.select(principal, Resource.CUSTOMER).where(Customer.id.in_(ids))  # type: ignore[attr-defined]
    rows = (await session.execute(statement)).all()
    return {row.id: access.project(principal, Resource.CUSTOMER, row) for row in rows}


async def list_customers(
    session: AsyncSession,
    principal: Principal,
    *,
    flt: CustomerFilter,
    order: CustomerOrder | None,
    first: int | None,
    after: str | None,
    default_size: int,
    max_size: int,
) -> Page[Record]:
    return await fetch_page(
        session,
        select(*access.columns(principal, Resource.CUSTOMER)).where(*_conditions(principal, flt)),
        _ordering_for(principal, order),
        size=page_size(first, default=default_size, maximum=max_size),
        after=after,
        project=lambda rows: access.project_all(principal, Resource.CUSTOMER, rows),
    )


async def count_customers(session: AsyncSession, principal: Principal, flt: CustomerFilter) -> int:
    statement = select(func.count()).select_from(Customer).where(*_conditions(principal, flt))
    return int((await session.execute(statement)).scalar_one())


@dataclass
class CustomerFields:
    """The writable customer fields; ``None`` means "not given" in a patch."""

    kind: str | None = None
    name: str | None = None
    email: str | None = None
    phone: str | None = None
    company: str | None = None
    title: str | None = None
    city: str | None = None
    region: str | None = None
    country: str | None = None
    segment: str | None = None
    lifecycle_stage: str | None = None
    lifetime_value: Decimal | None = None
    consent_share_with_partners: bool | None = None
    consent_marketing_opt_in: bool | None = None
    consent_source: str | None = None
    traits: dict[str, Any] | None = field(default=None)  # any JSON; validated as an object


def _clean(fields: CustomerFields, *, creating: bool, root: str) -> dict[str, Any]:
    """Validate and normalise; returns only the fields that were given."""
    p = Problems(root)
    country = p.country("country", fields.country)
    values: dict[str, Any] = {
        "kind": p.choice("kind", fields.kind, CUSTOMER_KINDS),
        "name": p.text("name", fields.name, max_length=200, required=creating),
        "email": p.email("email", fields.email),
        "phone": p.phone("phone", fields.phone, country=country),
        "company": p.text("company", fields.company, max_length=200),
        "title": p.text("title", fields.title, max_length=200),
        "city": p.text("city", fields.city, max_length=120),
        "region": p.text("region", fields.region, max_length=64),
        "country": country,
        "segment": p.choice("segment", fields.segment, SEGMENTS),
        "lifecycle_stage": p.choice("lifecycleStage", fields.lifecycle_stage, LIFECYCLE_STAGES),
        "lifetime_value": p.money("lifetimeValue", fields.lifetime_value, minimum=Decimal(0)),
        "consent_share_with_partners": fields.consent_share_with_partners,
        "consent_marketing_opt_in": fields.consent_marketing_opt_in,
        "consent_source": p.text("consentSource", fields.consent_source, max_length=120),
        "traits": fields.traits,
    }
    if fields.traits is not None and not isinstance(fields.traits, dict):
        p.add("traits", "must be a JSON object", "INVALID")
    elif fields.traits is not None and len(repr(fields.traits)) > 10_000:
        p.add("traits", "must be at most 10,000 characters of JSON", "TOO_LONG")
    p.raise_any()
    if fields.name is not None and not creating and values["name"] is None:
        p.add("name", "must not be empty", "REQUIRED")
        p.raise_any()
    return {key: value for key, value in values.items() if value is not None}


_INPUT_NAMES = {
    "lifecycle_stage": "lifecycleStage",
    "lifetime_value": "lifetimeValue",
    "consent_share_with_partners": "shareWithPartners",
    "consent_marketing_opt_in": "marketingOptIn",
    "consent_source": "consentSource",
}


@dataclass(frozen=True)
class CustomerWrite:
    """What a customer write did. ``record`` is the customer as the writer may see it
    now (at least its id); ``outcome`` is ``created``, ``updated``, ``unchanged`` or
    ``queued`` (every given field became a proposed change)."""

    record: Record
    outcome: str
    proposals: tuple[Proposal, ...] = ()

    @property
    def customer_id(self) -> uuid.UUID:
        customer_id: uuid.UUID = self.record["id"]
        return customer_id


def derived_columns(values: dict[str, Any], at: datetime) -> dict[str, Any]:
    """Columns that follow from the fields set: the blind indexes of email and phone
    (kept beside their ciphertext), and when consent was given."""
    derived: dict[str, Any] = {}
    if "email" in values:
        derived["email_index"] = email_index(values["email"])
    if "phone" in values:
        derived["phone_index"] = phone_index(values["phone"])
    if "consent_share_with_partners" in values or "consent_marketing_opt_in" in values:
        derived["consent_given_at"] = at
    return derived


AUDITED = (
    *(name for name in CustomerFields.__dataclass_fields__),
    "consent_given_at",
    "version",
)
"""The customer columns whose before/after a write's audit event records."""


def audited(values: Mapping[str, Any]) -> dict[str, Any]:
    """The :data:`AUDITED` columns of a customer's stored values."""
    return {name: values.get(name) for name in AUDITED}


def snapshot(customer: Customer) -> dict[str, Any]:
    return audited(row_values(customer))


class CleanFields:
    """Customer input, validated when the write pipeline asks for the fields it sets
    (after the access check, so a caller without the right learns nothing from the
    validation) and kept for the write."""

    def __init__(self, fields: CustomerFields, *, creating: bool, root: str) -> None:
        self.fields, self.creating, self.root = fields, creating, root
        self.values: dict[str, Any] = {}

    def given(self) -> dict[str, str]:
        self.values = _clean(self.fields, creating=self.creating, root=self.root)
        return input_names(self.values)


def input_names(values: Mapping[str, Any]) -> dict[str, str]:
    """Field -> its name in the customer inputs (for FORBIDDEN paths)."""
    return {name: _INPUT_NAMES.get(name, name) for name in values}


async def create_customer(
    session: AsyncSession,
    principal: Principal,
    fields: CustomerFields,
    *,
    source: str | None = None,
) -> CustomerWrite:
    form = CleanFields(fields, creating=True, root="input")
    written = await insert_customer(
        session, principal, form.given, lambda: form.values, source=source
    )
    return CustomerWrite(written.record, "created")


async def insert_customer(
    session: AsyncSession,
    principal: Principal,
    given: Callable[[], Mapping[str, str]] | Mapping[str, str],
    values: Callable[[], dict[str, Any]],
    *,
    source: str | None = None,
) -> pipeline.Written:
    """Create a customer through the write pipeline: ``given`` names the fields set
    (or validates the input and names them), ``values`` gives the validated values;
    their provenance is stamped."""

    def build() -> Customer:
        now = utcnow()
        fields = values()
        return Customer(
            **fields,
            **derived_columns(fields, now),
            created_at=now,
            updated_at=now,
            provenance=provenance.stamp_all(
                sorted(fields), provenance.stamp(principal, now, source=source)
            ),
        )

    return await pipeline.create(session, principal, create_request(given), build)


def create_request(given: Callable[[], Mapping[str, str]] | Mapping[str, str]) -> WriteRequest:
    """The pipeline's request for creating a customer with the fields ``given``."""
    return WriteRequest(
        Resource.CUSTOMER,
        Action.CREATE,
        audit="customer.create",
        operation=Operation.CREATE,
        given=given,
        snapshot=audited,
    )


async def update_customer(
    session: AsyncSession,
    principal: Principal,
    customer_id: uuid.UUID,
    expected_version: int,
    patch: CustomerFields,
    *,
    source: str | None = None,
) -> CustomerWrite:
    """Apply ``patch`` if the row is still at ``expected_version`` (optimistic concurrency).

    Fields whose current value was set by a higher-precedence source become proposed
    changes instead (:mod:`hub.provenance`); values equal to the current ones are no-ops.
    """
    form = CleanFields(patch, creating=False, root="patch")
    return await contribute(
        session,
        principal,
        customer_id,
        form.given,
        lambda: form.values,
        expected_version=expected_version,
        source=source,
        root="patch",
        require_fields=True,
    )


def _conflict(current: int, expected: int) -> ConflictError:
    return ConflictError(
        f"the customer is at version {current}, not {expected}", current_version=current
    )


class _Contribution:
    """The change a contribution makes to one customer under source precedence: the
    fields it may overwrite are applied with a compare-and-set on ``expected_version``;
    the others (and those in ``queue``) are left for review in :attr:`queued`."""

    def __init__(
        self,
        principal: Principal,
        values: Callable[[], dict[str, Any]],
        *,
        expected_version: int,
        source: str | None,
        queue: Collection[str],
        require_fields: bool,
    ) -> None:
        self.principal, self.values, self.expected_version = principal, values, expected_version
        self.source, self.queue, self.require_fields = source, queue, require_fields
        self.now = utcnow()
        self.queued: dict[str, Any] = {}

    def change(self, current: Customer) -> Update | None:
        values = self.values()
        if self.require_fields and not values:
            raise BadInputError("patch sets no field")
        if current.version != self.expected_version:
            raise _conflict(current.version, self.expected_version)
        new_stamp = provenance.stamp(self.principal, self.now, source=self.source)
        order = provenance.current()
        # An equal value is a no-op, but only where the caller reads the field in clear:
        # for a masked or hidden one, "unchanged" would confirm a guess of the stored value.
        clear = access.readable_fields(self.principal, Resource.CUSTOMER)
        changed = {k: v for k, v in values.items() if k not in clear or getattr(current, k) != v}
        applied: dict[str, Any] = {}
        for name, value in changed.items():
            held = current.provenance.get(name)
            if name not in self.queue and order.overrides(name, new_stamp, held):
                applied[name] = value
            else:
                self.queued[name] = value
        if not applied:
            return None
        stamps = {**current.provenance, **provenance.stamp_all(sorted(applied), new_stamp)}
        return Update(
            {
                **applied,
                **derived_columns(applied, self.now),
                "provenance": stamps,
                "updated_at": self.now,
                "version": Customer.version + 1,
            },
            # Compare-and-set on the version column: a concurrent writer matches no row.
            where=(col(Customer.version) == self.expected_version,),
        )


async def contribute(
    session: AsyncSession,
    principal: Principal,
    customer_id: uuid.UUID,
    given: Callable[[], Mapping[str, str]] | Mapping[str, str],
    values: Callable[[], dict[str, Any]],
    *,
    expected_version: int,
    source: str | None = None,
    queue: Collection[str] = (),
    root: str = "input",
    require_fields: bool = False,
) -> CustomerWrite:
    """Write validated ``values`` to the customer through the write pipeline, under
    source precedence (:class:`_Contribution`); the fields it leaves for review become
    proposed changes. ``given`` names the fields the update sets directly (or validates
    the input and names them)."""
    contribution = _Contribution(
        principal,
        values,
        expected_version=expected_version,
        source=source,
        queue=queue,
        require_fields=require_fields,
    )
    request = WriteRequest(
        Resource.CUSTOMER,
        Action.UPDATE,
        audit="customer.update",
        operation=Operation.UPDATE,
        target=customer_id,
        given=given,
        root=root,
        details={"source": source} if source else {},
        snapshot=audited,
    )
    written = await pipeline.update(
        session,
        principal,
        request,
        contribution.change,
        conflict=lambda row: _conflict(row.version, expected_version),
    )
    # After the update: its row lock comes before the audit log's lock, as in every
    # other write, so two writers cannot wait on each other (PostgreSQL).
    return await _with_proposals(
        session, principal, written, contribution.queued, source, contribution.now, expected_version
    )


async def queue_all(
    session: AsyncSession,
    principal: Principal,
    current: Customer,
    values: dict[str, Any],
    *,
    source: str | None,
) -> CustomerWrite:
    """Leave every field of a contribution for review (a writer that may not update the
    customer): nothing is written to it; it is read back as the writer may see it."""
    clear = access.readable_fields(principal, Resource.CUSTOMER)
    changed = {k: v for k, v in values.items() if k not in clear or getattr(current, k) != v}
    record = await access.read_back(session, principal, Resource.CUSTOMER, current.id)
    written = pipeline.Written(record, current, changed=False)
    return await _with_proposals(
        session, principal, written, changed, source, utcnow(), current.version
    )


async def _with_proposals(
    session: AsyncSession,
    principal: Principal,
    written: pipeline.Written,
    queued: dict[str, Any],
    source: str | None,
    at: datetime,
    base_version: int,
) -> CustomerWrite:
    proposals = await proposals_module.propose(
        session, principal, written.row, queued, source=source, at=at, base_version=base_version
    )
    outcome = "updated" if written.changed else "queued" if proposals else "unchanged"
    return CustomerWrite(written.record, outcome, tuple(proposals))


async def require_customer(
    session: AsyncSession, principal: Principal, customer_id: uuid.UUID
) -> None:
    """NOT_FOUND unless the principal can read this customer."""
    if await get_customer(session, principal, customer_id) is None:
        raise NotFoundError("no such customer")
