"""Admin queries: organizations, their clients and staff users."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from hub import admin
from schema.admin.types import AdminOrganization, OAuthClient, StaffUser
from schema.context import Context


@strawberry.type
class AdminQueries:
    @strawberry.field(description="Every organization (administrators only).")
    async def organizations(self, info: Info[Context, None]) -> list[AdminOrganization]:
        ctx = info.context
        async with ctx.database.session() as session:
            views = await admin.list_organizations(session, ctx.principal)
        return [AdminOrganization.of(view) for view in views]

    @strawberry.field(description="An organization's OAuth clients (administrators only).")
    async def clients(self, info: Info[Context, None], organization: str) -> list[OAuthClient]:
        ctx = info.context
        async with ctx.database.session() as session:
            views = await admin.list_clients(session, ctx.principal, organization)
        return [OAuthClient.of(view) for view in views]

    @strawberry.field(description="An organization's staff users (administrators only).")
    async def staff_users(self, info: Info[Context, None], organization: str) -> list[StaffUser]:
        ctx = info.context
        async with ctx.database.session() as session:
            views = await admin.list_staff_users(session, ctx.principal, organization)
        return [StaffUser.of(view) for view in views]
