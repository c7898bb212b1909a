"""Identity resolution: one customer per person, however it reaches the hub (DESIGN §8).

A contribution is matched to an existing customer by, in order: its external reference
(``source``, ``external_id``), the keyed blind index of its normalised email, the blind
index of its phone (E.164). A match is updated (under source precedence) and gains the
reference; no match creates the customer. Concurrent contributions for the same person
serialise on their identity keys (PostgreSQL advisory locks; SQLite has one writer), so
a match never yields a duplicate. Administrators merge the duplicates that older data
holds (:func:`merge_customers`) after reviewing :func:`duplicate_candidates`.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import SQLModel, col

from hub import audit, changes, disclosures
from hub.access import REGISTRY, Resource, access, pipeline
from hub.assignments import require_operator
from hub.customers import (
    CleanFields,
    CustomerFields,
    CustomerWrite,
    contribute,
    create_request,
    input_names,
    insert_customer,
    queue_all,
    snapshot,
)
from hub.db import serialise
from hub.errors import BadInputError, FieldProblem, InvalidInputError
from hub.models import (
    Customer,
    CustomerPartner,
    ExternalRef,
    ProposedChange,
)
from hub.models._types import utcnow
from hub.outbox import Change, Operation
from hub.principal import Principal
from hub.vault import email_index, phone_index


class MatchKey(enum.Enum):
    EXTERNAL_REF = "external_ref"
    EMAIL = "email"
    PHONE = "phone"


MATCH_ORDER = (MatchKey.EXTERNAL_REF, MatchKey.EMAIL, MatchKey.PHONE)


@dataclass(frozen=True)
class Reference:
    """An id in the contributor's own system. ``system`` names one of several systems of
    the same organization (e.g. ``shop``); the stored source is ``<org slug>[/<system>]``,
    so an organization can only ever claim references in its own namespace."""

    external_id: str
    system: str | None = None

    def source_for(self, principal: Principal) -> str:
        base = principal.organization_slug
        return base if not self.system else f"{base}/{self.system}"


def _clean_reference(ref: Reference | None, root: str) -> Reference | None:
    if ref is None:
        return None
    problems = []
    external_id = ref.external_id.strip()
    if not external_id or len(external_id) > 200:
        problems.append(
            FieldProblem((root, "externalRef", "id"), "must be 1 to 200 characters", "INVALID")
        )
    system = ref.system.strip() if ref.system else None
    if system is not None and (len(system) > 40 or not system.replace("-", "").isalnum()):
        problems.append(
            FieldProblem(
                (root, "externalRef", "system"),
                "must be at most 40 letters, digits or dashes",
                "INVALID",
            )
        )
    if problems:
        raise InvalidInputError(problems)
    return Reference(external_id=external_id, system=system)


async def find_match(
    session: AsyncSession,
    *,
    source: str | None,
    external_id: str | None,
    email: str | None,
    phone: str | None,
    match_by: Sequence[MatchKey] = MATCH_ORDER,
    among: ColumnElement[bool] | None = None,
) -> tuple[Customer, MatchKey] | None:
    """The existing customer these identity keys point at, and the key that matched;
    among several (old duplicates) the oldest. ``among`` limits the candidates."""
    for key in match_by:
        condition: Any
        if key is MatchKey.EXTERNAL_REF and source and external_id:
            condition = Customer.id.in_(  # type: ignore[attr-defined]
                select(col(ExternalRef.customer_id)).where(
                    col(ExternalRef.source) == source,
                    col(ExternalRef.external_id) == external_id,
                )
            )
        elif key is MatchKey.EMAIL and email:
            condition = col(Customer.email_index) == email_index(email)
        elif key is MatchKey.PHONE and phone:
            condition = col(Customer.phone_index) == phone_index(phone)
        else:
            continue
        if among is not None:
            condition = and_(condition, among)
        statement = (
            select(Customer)
            .where(condition)
            .order_by(col(Customer.created_at), col(Customer.id))
            .limit(1)
            .with_for_update()
        )
        found = (await session.execute(statement)).scalar_one_or_none()
        if found is not None:
            return found, key
    return None


async def _attach(
    session: AsyncSession, customer_id: uuid.UUID, source: str, external_id: str
) -> bool:
    existing = (
        await session.execute(
            select(ExternalRef).where(
                col(ExternalRef.source) == source, col(ExternalRef.external_id) == external_id
            )
        )
    ).scalar_one_or_none()
    if existing is not None:
        return False
    session.add(ExternalRef(source=source, external_id=external_id, customer_id=customer_id))
    await session.flush()
    return True


@dataclass(frozen=True)
class UpsertResult:
    write: CustomerWrite
    matched_by: MatchKey | None


async def upsert_customer(
    session: AsyncSession,
    principal: Principal,
    fields: CustomerFields,
    *,
    reference: Reference | None = None,
    match_by: Sequence[MatchKey] = MATCH_ORDER,
    source: str | None = None,
) -> UpsertResult:
    """Create the customer, or contribute to the one it already is.

    Needs the right to create customers (so a caller that may not create learns nothing
    about who exists). A match the caller may update is updated under source
    precedence; a match it may not see or update gets every field as a proposed change
    (``queued``), and its record is not returned.
    """
    form = CleanFields(fields, creating=True, root="input")
    refs: list[Reference] = []

    def given() -> dict[str, str]:
        if not match_by:
            raise InvalidInputError(
                [FieldProblem(("matchBy",), "name at least one key", "REQUIRED")]
            )
        names = form.given()
        cleaned = _clean_reference(reference, "input")
        refs.extend([cleaned] if cleaned else [])
        return names

    # A caller that may not create customers learns nothing about who exists.
    pipeline.authorize(principal, create_request(given))
    values = form.values
    ref = refs[0] if refs else None
    ref_source = ref.source_for(principal) if ref else None
    keys = [f"email:{email_index(values['email'])}"] if values.get("email") else []
    keys += [f"phone:{phone_index(values['phone'])}"] if values.get("phone") else []
    keys += [f"ref:{ref_source}:{ref.external_id}"] if ref else []
    # Contributions about the same identity wait for each other until commit.
    await serialise(session, *keys)
    # Only customers the caller's organization may see are candidates: a match among the
    # others would tell it who exists (and, field by field, what is stored). A contribution
    # about someone it cannot see makes a new record, which duplicateCandidates shows.
    match = await find_match(
        session,
        source=ref_source,
        external_id=ref.external_id if ref else None,
        email=values.get("email"),
        phone=values.get("phone"),
        match_by=match_by,
        among=access.candidates(principal, Resource.CUSTOMER),
    )
    if match is None:
        written = await insert_customer(
            session, principal, input_names(values), lambda: values, source=source
        )
        if ref and ref_source:
            await _attach(session, written.row.id, ref_source, ref.external_id)
        return UpsertResult(CustomerWrite(written.record, "created"), None)
    customer, key = match
    if ref and ref_source:
        await _attach(session, customer.id, ref_source, ref.external_id)
    # Fields the caller may set on a new customer but not change on this one go to review
    # like lower-precedence ones (all of them if it may not update customers at all).
    updatable = access.updatable_fields(principal, Resource.CUSTOMER)
    if not updatable:
        write = await queue_all(session, principal, customer, values, source=source)
        return UpsertResult(write, key)
    queue = values.keys() - updatable
    write = await contribute(
        session,
        principal,
        customer.id,
        input_names({name: value for name, value in values.items() if name not in queue}),
        lambda: values,
        expected_version=customer.version,
        source=source,
        queue=queue,
    )
    return UpsertResult(write, key)


# -- merging -----------------------------------------------------------------------------


def _customer_column(table: type[SQLModel]) -> str | None:
    """The column of ``table`` holding the id of a customer (a foreign key to it), if any."""
    customers = REGISTRY[Resource.CUSTOMER].table_name
    found = [
        fk.parent.name
        for fk in table.__table__.foreign_keys  # type: ignore[attr-defined]
        if fk.column.table.name == customers
    ]
    return found[0] if found else None


# What points at a customer and follows it into the survivor, as (table, its customer
# column, its outbox resource or None): every resource of the registry whose table
# references the customer (a new resource moves without being named here), in registry
# order; then the external references and the proposed changes: bookkeeping, of which
# only the proposals are published. The disclosure index follows too (so that a
# data-subject report on the survivor stays complete), through hub.disclosures, which
# knows how each backend stores it.
_MOVED: tuple[tuple[type[SQLModel], str, str | None], ...] = (
    *(
        (spec.table, column, resource)
        for resource, spec in REGISTRY.items()
        if (column := _customer_column(spec.table)) is not None
    ),
    (ExternalRef, "customer_id", None),
    (ProposedChange, "customer_id", changes.PROPOSED_CHANGE),
)


@dataclass(frozen=True)
class MergeResult:
    survivor_id: uuid.UUID
    duplicate_id: uuid.UUID
    moved: dict[str, int]
    filled: tuple[str, ...]


async def merge_customers(
    session: AsyncSession, principal: Principal, survivor_id: uuid.UUID, duplicate_id: uuid.UUID
) -> MergeResult:
    """Fold ``duplicate`` into ``survivor`` (administrators): everything pointing at it
    moves over (the records of every registry resource about a customer, partner
    assignments among them; external references, proposed changes and the disclosure
    history); fields empty on the survivor take
    the duplicate's values with their provenance; consent is kept only where both records
    gave it (a merge never widens sharing); the duplicate is deleted. Audited with counts
    and filled fields.

    The operator's administrators only: moving assignments decides which partners see
    which customers (as :func:`hub.assignments.assign_partner` does)."""
    require_operator(principal)
    if survivor_id == duplicate_id:
        raise InvalidInputError(
            [FieldProblem(("duplicate",), "must differ from the survivor", "INVALID")]
        )
    rows = (
        (
            await session.execute(
                select(Customer)
                .where(col(Customer.id).in_([survivor_id, duplicate_id]))
                .with_for_update()
            )
        )
        .scalars()
        .all()
    )
    found = {row.id: row for row in rows}
    for path, key in (("survivor", survivor_id), ("duplicate", duplicate_id)):
        if key not in found:
            raise InvalidInputError([FieldProblem((path,), "no such customer", "NOT_FOUND")])
    survivor, duplicate = found[survivor_id], found[duplicate_id]
    before = snapshot(survivor)
    # A partner serving both keeps one assignment (the survivor's).
    served = select(col(CustomerPartner.organization_id)).where(
        col(CustomerPartner.customer_id) == survivor_id
    )
    dropped_links = await session.execute(
        delete(CustomerPartner)
        .where(
            col(CustomerPartner.customer_id) == duplicate_id,
            col(CustomerPartner.organization_id).in_(served),
        )
        .returning(col(CustomerPartner.id))
    )
    events: list[Change] = changes.deleted(Resource.ASSIGNMENT, dropped_links.scalars())
    moved: dict[str, int] = {}
    for model, column, resource in _MOVED:
        statement = (
            update(model)
            .where(getattr(model, column) == duplicate_id)
            .values({column: survivor_id})
            .execution_options(synchronize_session=False)
        )
        table = str(model.__tablename__)
        if resource is None:
            result = await session.execute(statement)
            moved[table] = int(result.rowcount)  # type: ignore[attr-defined]
            continue
        id_column = getattr(model, "id")  # noqa: B009
        ids = list((await session.execute(statement.returning(id_column))).scalars())
        moved[table] = len(ids)
        events += changes.moved(resource, ids)
    moved["disclosure"] = await disclosures.repoint(session, duplicate_id, survivor_id)

    filled: list[str] = []
    stamps = dict(survivor.provenance)
    for name in CustomerFields.__dataclass_fields__:
        if name.startswith("consent_"):
            continue
        if getattr(survivor, name) in (None, {}) and getattr(duplicate, name) not in (None, {}):
            setattr(survivor, name, getattr(duplicate, name))
            if name in duplicate.provenance:
                stamps[name] = duplicate.provenance[name]
            filled.append(name)
    if not survivor.traits and duplicate.traits:
        survivor.traits = dict(duplicate.traits)
    for name in ("consent_share_with_partners", "consent_marketing_opt_in"):
        if getattr(survivor, name) and not getattr(duplicate, name):
            setattr(survivor, name, False)
            filled.append(name)
    survivor.email_index = email_index(survivor.email)
    survivor.phone_index = phone_index(survivor.phone)
    survivor.provenance = stamps
    survivor.version += 1
    survivor.updated_at = utcnow()
    dropped = snapshot(duplicate)
    await session.flush()
    await session.delete(duplicate)
    await session.flush()
    await changes.record_change(
        session,
        principal,
        "customer.merge",
        "Customer",
        survivor_id,
        before,
        snapshot(survivor),
        operation=Operation.MERGE,
        duplicate=duplicate_id,
        moved=moved,
        duplicate_record=audit.field_changes(dropped, {}),
    )
    events += changes.deleted(Resource.CUSTOMER, [duplicate_id])
    await changes.publish(session, principal, events)
    return MergeResult(survivor_id, duplicate_id, moved, tuple(filled))


# -- duplicate candidates ----------------------------------------------------------------


@dataclass(frozen=True)
class DuplicateGroup:
    """Customers sharing an identity key: ``reason`` is ``email`` or ``phone``."""

    reason: str
    customer_ids: tuple[uuid.UUID, ...]


async def duplicate_candidates(
    session: AsyncSession, principal: Principal, *, limit: int = 50
) -> list[DuplicateGroup]:
    """Groups of customers with the same normalised email or phone (administrators),
    largest groups first; each group lists its customers oldest first."""
    access.require_admin(principal)
    if not 1 <= limit <= 500:
        raise BadInputError("first must be between 1 and 500")
    groups: list[DuplicateGroup] = []
    for reason, column in (
        ("email", col(Customer.email_index)),
        ("phone", col(Customer.phone_index)),
    ):
        shared = (
            await session.execute(
                select(column, func.count())
                .where(column.is_not(None))
                .group_by(column)
                .having(func.count() > 1)
                .order_by(func.count().desc(), column)
                .limit(limit)
            )
        ).all()
        for index_value, _count in shared:
            ids = (
                await session.execute(
                    select(col(Customer.id))
                    .where(column == index_value)
                    .order_by(col(Customer.created_at), col(Customer.id))
                )
            ).scalars()
            groups.append(DuplicateGroup(reason, tuple(ids)))
    groups.sort(key=lambda g: -len(g.customer_ids))
    return groups[:limit]


__all__ = [
    "MATCH_ORDER",
    "DuplicateGroup",
    "MatchKey",
    "MergeResult",
    "Reference",
    "UpsertResult",
    "duplicate_candidates",
    "find_match",
    "merge_customers",
    "upsert_customer",
]
