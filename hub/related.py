"""Records hanging off a parent (a customer's feedback, interactions, purchases, assignments
and cases; a case's notes), loaded for many parents at once so a page's statement count
does not grow with its size."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from hub.access import REGISTRY, Record, Resource, access
from hub.access.resources import MODELS
from hub.access.specs import RelationSpec
from hub.pagination import Ordering, Page, fetch_page, page_size
from hub.principal import Principal

# The time column each resource hanging off a customer is listed by, newest first: its
# default order in the registry.
TIME_COLUMN: dict[Resource, str] = {
    resource: spec.default_order.field
    for resource, spec in REGISTRY.items()
    if resource is not Resource.CUSTOMER
}


# The column naming each listed resource's parent: the local column of its first
# one-to-one relation in the registry (``customer_id``; ``case_id`` for case notes).
PARENT_RELATION: dict[Resource, RelationSpec] = {
    resource: next(r for r in spec.relations if not r.many)
    for resource, spec in REGISTRY.items()
    if any(not r.many for r in spec.relations)
}
"""Per resource read as a nested connection, the one-to-one relation to its parent."""

PARENT_COLUMN: dict[Resource, str] = {
    resource: relation.local for resource, relation in PARENT_RELATION.items()
}


def ordering(resource: Resource) -> Ordering:
    model: Any = MODELS[resource]
    return Ordering(
        key=f"{resource.value}:{TIME_COLUMN[resource]}:desc",
        columns=(getattr(model, TIME_COLUMN[resource]), model.id),
        types=(datetime, uuid.UUID),
        descending=True,
    )


async def pages_per_customer(
    session: AsyncSession,
    principal: Principal,
    resource: Resource,
    customer_ids: list[uuid.UUID],
    *,
    first: int | None,
    after: str | None,
    default_size: int,
    max_size: int,
) -> dict[uuid.UUID, Page[Record]]:
    """One page of ``resource`` per customer (per parent: :data:`PARENT_COLUMN`), in a
    single windowed statement."""
    size = page_size(first, default=default_size, maximum=max_size)
    model: Any = MODELS[resource]
    parent = PARENT_COLUMN[resource]
    order = ordering(resource)
    rank = func.row_number().over(partition_by=getattr(model, parent), order_by=order.order_by())
    columns = access.columns(principal, resource)
    inner = (
        select(*columns, rank.label("rank"))
        .where(getattr(model, parent).in_(customer_ids))
        .where(access.row_filter(principal, resource))
    )
    if after:
        inner = inner.where(order.after(after))
    sub = inner.subquery()
    # Plain columns, not ORM entities: building entities costs several times more.
    statement = (
        select(*(sub.c[column.name] for column in columns))
        .where(sub.c.rank <= size + 1)
        .order_by(sub.c[parent], sub.c.rank)
    )
    grouped: dict[uuid.UUID, list[Any]] = defaultdict(list)
    for row in (await session.execute(statement)).all():
        grouped[row._mapping[parent]].append(row)
    pages: dict[uuid.UUID, Page[Record]] = {}
    for customer_id in customer_ids:
        rows = grouped.get(customer_id, [])
        shown = rows[:size]
        pages[customer_id] = Page(
            items=access.project_all(principal, resource, shown),
            keys=[order.values(row) for row in shown],
            ordering_key=order.key,
            has_next=len(rows) > size,
            has_previous=after is not None,
        )
    return pages


async def counts_per_customer(
    session: AsyncSession, principal: Principal, resource: Resource, customer_ids: list[uuid.UUID]
) -> dict[uuid.UUID, int]:
    model: Any = MODELS[resource]
    parent = getattr(model, PARENT_COLUMN[resource])
    statement = (
        select(parent, func.count())
        .where(parent.in_(customer_ids))
        .where(access.row_filter(principal, resource))
        .group_by(parent)
    )
    counts = {row[0]: int(row[1]) for row in (await session.execute(statement)).all()}
    return {customer_id: counts.get(customer_id, 0) for customer_id in customer_ids}


async def get_records(
    session: AsyncSession, principal: Principal, resource: Resource, ids: list[uuid.UUID]
) -> dict[uuid.UUID, Record]:
    """Records of ``resource`` by id, as the principal may see them (missing = invisible)."""
    model: Any = MODELS[resource]
    statement = access.select(principal, resource).where(model.id.in_(ids))
    rows = (await session.execute(statement)).all()
    return {row.id: access.project(principal, resource, row) for row in rows}


async def page_of(
    session: AsyncSession,
    principal: Principal,
    resource: Resource,
    conditions: Sequence[ColumnElement[bool]],
    *,
    first: int | None,
    after: str | None,
    default_size: int,
    max_size: int,
) -> Page[Record]:
    """One keyset page of ``resource`` in its registry order: the rows matching
    ``conditions`` (the caller's row filter among them), projected for the caller."""
    return await fetch_page(
        session,
        select(*access.columns(principal, resource)).where(*conditions),
        ordering(resource),
        size=page_size(first, default=default_size, maximum=max_size),
        after=after,
        project=lambda rows: access.project_all(principal, resource, rows),
    )


async def count_of(
    session: AsyncSession, resource: Resource, conditions: Sequence[ColumnElement[bool]]
) -> int:
    """How many rows of ``resource`` match ``conditions`` (``totalCount``)."""
    statement = select(func.count()).select_from(MODELS[resource]).where(*conditions)
    return int((await session.execute(statement)).scalar_one())
