"""Per-request DataLoaders: every nested list is loaded for a whole page in one statement."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING

from strawberry.dataloader import DataLoader

from hub import customers, related
from hub.access import Record, Resource
from hub.organizations import OrganizationRef, get_organizations
from hub.pagination import Page

if TYPE_CHECKING:
    from schema.context import Context

PageKey = tuple[Resource, uuid.UUID, int | None, str | None]
CountKey = tuple[Resource, uuid.UUID]
RecordKey = tuple[Resource, uuid.UUID]


class Loaders:
    def __init__(self, context: Context) -> None:
        self._context = context
        self.customers = DataLoader[uuid.UUID, Record | None](load_fn=self._customers)
        self.records = DataLoader[RecordKey, Record | None](load_fn=self._records)
        self.pages = DataLoader[PageKey, Page[Record]](load_fn=self._pages)
        self.counts = DataLoader[CountKey, int](load_fn=self._counts)
        self.organizations = DataLoader[uuid.UUID, OrganizationRef | None](
            load_fn=self._organizations
        )

    async def _customers(self, ids: Sequence[uuid.UUID]) -> list[Record | None]:
        ctx = self._context
        async with ctx.database.session() as session:
            found = await customers.get_customers(session, ctx.principal, list(ids))
        return [found.get(i) for i in ids]

    async def _records(self, keys: Sequence[RecordKey]) -> list[Record | None]:
        ctx = self._context
        by_resource: dict[Resource, list[uuid.UUID]] = defaultdict(list)
        for resource, record_id in keys:
            by_resource[resource].append(record_id)
        found: dict[RecordKey, Record] = {}
        async with ctx.database.session() as session:
            for resource, ids in by_resource.items():
                records = await related.get_records(session, ctx.principal, resource, ids)
                found.update({(resource, i): r for i, r in records.items()})
        return [found.get(key) for key in keys]

    async def _pages(self, keys: Sequence[PageKey]) -> list[Page[Record]]:
        ctx = self._context
        groups: dict[tuple[Resource, int | None, str | None], list[uuid.UUID]] = defaultdict(list)
        for resource, customer_id, first, after in keys:
            groups[(resource, first, after)].append(customer_id)
        found: dict[PageKey, Page[Record]] = {}
        async with ctx.database.session() as session:
            for (resource, first, after), ids in groups.items():
                pages = await related.pages_per_customer(
                    session,
                    ctx.principal,
                    resource,
                    ids,
                    first=first,
                    after=after,
                    default_size=ctx.settings.default_page_size,
                    max_size=ctx.settings.max_page_size,
                )
                found.update({(resource, i, first, after): p for i, p in pages.items()})
        return [found[key] for key in keys]

    async def _counts(self, keys: Sequence[CountKey]) -> list[int]:
        ctx = self._context
        by_resource: dict[Resource, list[uuid.UUID]] = defaultdict(list)
        for resource, customer_id in keys:
            by_resource[resource].append(customer_id)
        found: dict[CountKey, int] = {}
        async with ctx.database.session() as session:
            for resource, ids in by_resource.items():
                counts = await related.counts_per_customer(session, ctx.principal, resource, ids)
                found.update({(resource, i): n for i, n in counts.items()})
        return [found[key] for key in keys]

    async def _organizations(self, ids: Sequence[uuid.UUID]) -> list[OrganizationRef | None]:
        async with self._context.database.session() as session:
            found = await get_organizations(session, list(ids))
        return [found.get(i) for i in ids]
