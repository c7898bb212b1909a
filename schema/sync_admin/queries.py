"""Admin queries: connectors, their runs and dead letters, and every outbound delivery."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import strawberry
from strawberry.types import Info

from hub.delivery import DeliveryStatus
from hub.delivery import admin as delivery_admin
from hub.errors import NotFoundError
from hub.pagination import Page
from hub.sync import admin as sync_admin
from schema.common import PageInfo
from schema.context import Context
from schema.ids import expect_id
from schema.sync_admin.types import (
    SUBSCRIPTION_ID_TYPE,
    AdminDelivery,
    AdminDeliveryPage,
    AdminDeliveryStatus,
    Connector,
    SyncDeadLetter,
    SyncDeadLetterPage,
    SyncRun,
    SyncRunPage,
)

T = TypeVar("T")
V = TypeVar("V")


def page_info(page: Page[T]) -> PageInfo:
    return PageInfo(
        has_next_page=page.has_next,
        has_previous_page=page.has_previous,
        start_cursor=page.cursor(0) if page.items else None,
        end_cursor=page.cursor(len(page.items) - 1) if page.items else None,
    )


def nodes(page: Page[V], convert: Callable[[V], T]) -> list[T]:
    return [convert(item) for item in page.items]


@strawberry.type
class SyncAdminQueries:
    @strawberry.field(description="Every connector by name, with its last run (administrators).")
    async def connectors(
        self, info: Info[Context, None], include_imports: bool = False
    ) -> list[Connector]:
        ctx = info.context
        async with ctx.database.session() as session:
            views = await sync_admin.list_connectors(
                session, ctx.principal, include_imports=include_imports
            )
        return [Connector.of(view) for view in views]

    @strawberry.field(description="One connector (administrators).")
    async def connector(self, info: Info[Context, None], name: str) -> Connector:
        ctx = info.context
        async with ctx.database.session() as session:
            view = await sync_admin.get_connector(session, ctx.principal, name)
        return Connector.of(view)

    @strawberry.field(description="A connector's runs, newest first (administrators).")
    async def sync_runs(
        self,
        info: Info[Context, None],
        connector: str,
        first: int | None = None,
        after: str | None = None,
    ) -> SyncRunPage:
        ctx = info.context
        async with ctx.database.session() as session:
            page = await sync_admin.runs_page(
                session, ctx.principal, connector, first=first, after=after
            )
        return SyncRunPage(nodes=nodes(page, SyncRun.of), page_info=page_info(page))

    @strawberry.field(
        description="A connector's dead letters, newest first; open ones unless "
        "includeResolved (administrators)."
    )
    async def dead_letters(
        self,
        info: Info[Context, None],
        connector: str,
        first: int | None = None,
        after: str | None = None,
        include_resolved: bool = False,
    ) -> SyncDeadLetterPage:
        ctx = info.context
        async with ctx.database.session() as session:
            page = await sync_admin.dead_letters_page(
                session,
                ctx.principal,
                connector,
                first=first,
                after=after,
                include_resolved=include_resolved,
            )
        return SyncDeadLetterPage(nodes=nodes(page, SyncDeadLetter.of), page_info=page_info(page))

    @strawberry.field(
        description="Outbound deliveries of every subscription (or one: its id as the "
        "subscriber sees it), newest first (administrators)."
    )
    async def deliveries(
        self,
        info: Info[Context, None],
        subscription: strawberry.ID | None = None,
        status: AdminDeliveryStatus | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> AdminDeliveryPage:
        ctx = info.context
        subscription_id = None
        if subscription is not None:
            subscription_id = expect_id(str(subscription), SUBSCRIPTION_ID_TYPE)
            if subscription_id is None:
                raise NotFoundError("no such webhook subscription")
        wanted = None if status is None else DeliveryStatus(status.value)
        async with ctx.database.session() as session:
            page = await delivery_admin.deliveries_page(
                session,
                ctx.principal,
                subscription_id=subscription_id,
                status=wanted,
                first=first,
                after=after,
            )
        return AdminDeliveryPage(nodes=nodes(page, AdminDelivery.of), page_info=page_info(page))
