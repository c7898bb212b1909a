"""Running a plan: records from the access module, the response built in one pass.

The records come from the same hub functions the resolvers call (the scoped selects,
the projection, the read audit's notes), in one database session: a page of customers,
then each level's related connections for all its records at once
(:func:`hub.related.pages_per_customer`), then the counts asked for. The response is
then built from the plan without strawberry objects or graphql-core's completion: each
value is serialized as graphql-core would serialize it, and a field withheld on its row
answers ``null`` with its path noted, as :mod:`schema.withheld` does on the resolver path.

Anything unusual while running (a refused argument, a stored value the API type cannot
show) raises, and the operation is answered by the resolver path instead, which words the
error; so the compiled path only ever answers successful reads.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from hub import customers, related
from hub.access import REMOTE, WITHHELD, Record, Resource
from hub.organizations import OrganizationRef, get_organizations
from hub.pagination import Page
from schema.audience import NOTHING, withheld_fields, without_withheld
from schema.compiled.dialects import SQL_DIALECTS
from schema.compiled.plan import (
    CONSENT_FIELDS,
    ConnectionPlan,
    EdgePlan,
    LinkPlan,
    ListRoot,
    NodesRoot,
    ObjectPlan,
    OrganizationPlan,
    PageInfoPlan,
    Path,
    Plan,
    RecordRoot,
    RemotePlan,
    TypenameRoot,
    Unsupported,
)
from schema.compiled.remote import RemoteValues
from schema.compiled.sql import execute_sql
from schema.context import Context
from schema.customers.queries import CustomerFilter
from schema.ids import to_global_id


class _Run:
    """One execution: the loaded pages per connection plan, and the withheld paths."""

    def __init__(self, session: AsyncSession, context: Context) -> None:
        self.session = session
        self.context = context
        self.pages: dict[int, dict[uuid.UUID, Page[Record]]] = {}
        self.counts: dict[int, dict[uuid.UUID, int]] = {}
        self.linked: dict[int, dict[uuid.UUID, Record]] = {}
        self.organizations: dict[int, dict[uuid.UUID, OrganizationRef]] = {}
        self.withheld: list[list[str | int]] = []
        self.remote = RemoteValues()

    async def load(self, plans: list[ObjectPlan], records: list[Record]) -> None:
        """Load the related connections of ``plans`` for ``records``, level by level."""
        if not records:
            return
        ids = [record["id"] for record in records]
        ctx = self.context
        for plan in plans:
            for link in plan.links:
                targets: list[uuid.UUID] = []
                for record in records:
                    target = _link_target(plan, link, record)
                    if target is not None:
                        targets.append(target)
                found = await related.get_records(
                    self.session, ctx.principal, link.resource, sorted(set(targets))
                )
                self.linked[id(link)] = found
                await self.load([link.object], list(found.values()))
            for organization in plan.organizations:
                targets = []
                for record in records:
                    target = _link_target(plan, organization, record)
                    if target is not None:
                        targets.append(target)
                self.organizations[id(organization)] = await get_organizations(
                    self.session, sorted(set(targets))
                )
            for connection in plan.nested:
                pages = await related.pages_per_customer(
                    self.session,
                    ctx.principal,
                    connection.resource,
                    ids,
                    first=connection.first,
                    after=connection.after,
                    default_size=ctx.settings.default_page_size,
                    max_size=ctx.settings.max_page_size,
                )
                self.pages[id(connection)] = pages
                if connection.counted:
                    self.counts[id(connection)] = await related.counts_per_customer(
                        self.session, ctx.principal, connection.resource, ids
                    )
                below = [item for page in pages.values() for item in page.items]
                await self.load(connection.objects, below)

    async def record(self, root: RecordRoot, path: Path) -> dict[str, Any] | None:
        """One record by id, as the scoped loaders read it (``null`` when missing or not
        the caller's)."""
        if root.record_id is None or root.object is None:
            return None
        found = await related.get_records(
            self.session, self.context.principal, root.resource, [root.record_id]
        )
        record = found.get(root.record_id)
        if record is None:
            return None
        await self.load([root.object], [record])
        return self.object(root.object, record, path)

    def object(self, plan: ObjectPlan, record: Record, path: Path) -> dict[str, Any]:
        withheld = NOTHING
        source = record
        if WITHHELD in record:
            withheld = withheld_fields(plan.type_name, record)
            source = without_withheld(record)
        out: dict[str, Any] = {}
        for key, name, emit in plan.entries:
            if isinstance(emit, ObjectPlan):
                out[key] = self.consent(emit, record, source, (*path, key))
            elif isinstance(emit, LinkPlan):
                if name in withheld:
                    out[key] = None
                    self.withheld.append([*path, key])
                    continue
                target = _link_target(plan, emit, source)
                linked = None if target is None else self.linked[id(emit)].get(target)
                out[key] = (
                    None if linked is None else self.object(emit.object, linked, (*path, key))
                )
            elif isinstance(emit, OrganizationPlan):
                if name in withheld:
                    out[key] = None
                    self.withheld.append([*path, key])
                    continue
                target = _link_target(plan, emit, source)
                ref = None if target is None else self.organizations[id(emit)].get(target)
                out[key] = None if ref is None else emit.emit(ref)
            elif isinstance(emit, RemotePlan):
                decisions = record.get(REMOTE)
                decision = decisions.get(emit.remote.name) if decisions else None
                if decision is None:
                    out[key] = None
                    self.withheld.append([*path, key])
                else:
                    record_id = record["id"]
                    entity = to_global_id(plan.type_name, record_id)
                    about = source.get("customer_id")  # as the resolver passes it
                    customer = str(about) if isinstance(about, uuid.UUID) else None
                    self.remote.want(
                        emit, out, key, [*path, key], entity, str(record_id), decision, customer
                    )
            elif isinstance(emit, ConnectionPlan):
                parent = record["id"]
                page = self.pages[id(emit)][parent]
                count = self.counts[id(emit)][parent] if emit.counted else None
                out[key] = self.connection(emit, page, count, (*path, key))
            elif name in withheld:
                out[key] = None
                self.withheld.append([*path, key])
            else:
                out[key] = emit(source)
        return out

    def consent(
        self, plan: ObjectPlan, record: Record, source: Record, path: Path
    ) -> dict[str, Any] | None:
        withheld = withheld_fields(plan.type_name, record) if WITHHELD in record else NOTHING
        if not withheld and not any(name in source for name in CONSENT_FIELDS):
            return None
        out: dict[str, Any] = {}
        for key, name, emit in plan.entries:
            if name in withheld:
                out[key] = None
                self.withheld.append([*path, key])
            elif callable(emit):
                out[key] = emit(source)
        return out

    def connection(
        self, plan: ConnectionPlan, page: Page[Record], count: int | None, path: Path
    ) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, part, sub in plan.parts:
            if part == "__typename":
                out[key] = plan.type_name
            elif part == "totalCount":
                out[key] = count
            elif isinstance(sub, PageInfoPlan):
                out[key] = _page_info(sub, page)
            elif isinstance(sub, EdgePlan):
                out[key] = [
                    self.edge(sub, page, index, item, (*path, key, index))
                    for index, item in enumerate(page.items)
                ]
        return out

    def edge(
        self, plan: EdgePlan, page: Page[Record], index: int, record: Record, path: Path
    ) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, part, node in plan.parts:
            if node is not None:
                out[key] = self.object(node, record, (*path, key))
            elif part == "cursor":
                out[key] = page.cursor(index)
            else:
                out[key] = plan.type_name
        return out


def _link_target(
    plan: ObjectPlan, link: LinkPlan | OrganizationPlan, record: Record
) -> uuid.UUID | None:
    """The id a link follows in ``record`` (as projected: absent when hidden or
    withheld on the row)."""
    if WITHHELD in record and link.feeder in record[WITHHELD]:
        return None
    value = record.get(link.feeder)
    if value is None:
        return None
    if not isinstance(value, uuid.UUID):
        # Masked: the resolver would look the masked text up; leave that to it.
        raise Unsupported(f"{plan.type_name} link by a masked {link.feeder}")
    return value


def _page_info(plan: PageInfoPlan, page: Page[Record]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    last = len(page.items) - 1
    for key, name in plan.parts:
        if name == "hasNextPage":
            out[key] = page.has_next
        elif name == "hasPreviousPage":
            out[key] = page.has_previous
        elif name == "startCursor":
            out[key] = page.cursor(0) if page.items else None
        elif name == "endCursor":
            out[key] = page.cursor(last) if page.items else None
        else:
            out[key] = "PageInfo"
    return out


async def _list(
    session: AsyncSession, context: Context, root: ListRoot
) -> tuple[Page[Record], int | None]:
    """A root list's page (and its count, when asked) as its resolver reads them: the
    customers' own functions, or ``hub.related.page_of`` and ``count_of`` under the
    conditions the list's filter gives (as ``hub.feedback.list_feedback`` does)."""
    principal, settings, resource = context.principal, context.settings, root.resource
    connection = root.connection
    sizes = {"default_size": settings.default_page_size, "max_size": settings.max_page_size}
    count = None
    if resource is Resource.CUSTOMER:
        flt = (root.filter or CustomerFilter()).to_hub()
        order = None if root.order is None else root.order.to_hub()
        page = await customers.list_customers(
            session,
            principal,
            flt=flt,
            order=order,
            first=connection.first,
            after=connection.after,
            **sizes,
        )
        if connection.counted:
            count = await customers.count_customers(session, principal, flt)
        return page, count
    conditions, _ = root.query(principal)
    page = await related.page_of(
        session,
        principal,
        resource,
        conditions,
        first=connection.first,
        after=connection.after,
        **sizes,
    )
    if connection.counted:
        count = await related.count_of(session, resource, conditions)
    return page, count


async def execute(
    plan: Plan, context: Context
) -> tuple[dict[str, Any], list[list[str | int]], list[dict[str, Any]]]:
    """The response ``data`` of ``plan`` for the context's caller, the paths of the
    fields withheld on their row, and the errors of remote fields whose subgraph failed
    (formatted)."""
    data, withheld, remote = await _local(plan, context)
    # After the database work, its connection returned: the subgraphs may take a while.
    errors = await remote.fetch(context) if remote.levels else []
    return data, withheld, errors


async def _local(
    plan: Plan, context: Context
) -> tuple[dict[str, Any], list[list[str | int]], RemoteValues]:
    data: dict[str, Any] = {}
    database = context.database
    if context.settings.compiled_sql and database.engine.dialect.name in SQL_DIALECTS:
        async with database.direct() as connection:
            try:
                return await execute_sql(plan, context, connection)
            except Unsupported:
                pass  # answered from the access module's records below
    async with database.session() as session:
        run = _Run(session, context)
        for key, root in plan.roots:
            if isinstance(root, TypenameRoot):
                data[key] = root.type_name
            elif isinstance(root, ListRoot):
                page, count = await _list(session, context, root)
                await run.load(root.connection.objects, page.items)
                data[key] = run.connection(root.connection, page, count, (key,))
            elif isinstance(root, RecordRoot):
                data[key] = await run.record(root, (key,))
            elif isinstance(root, NodesRoot):
                data[key] = [
                    await run.record(item, (key, index)) for index, item in enumerate(root.items)
                ]
    return data, run.withheld, run.remote
