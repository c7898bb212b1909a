"""Admin mutations: each one transaction, bad input as user errors, FORBIDDEN otherwise."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from hub import admin
from hub.oauth.clients import DEFAULT_ROTATION_OVERLAP
from schema.admin.types import (
    ClientPayload,
    ClientSecretPayload,
    CreatedStaffUserPayload,
    CreateOrganizationInput,
    CreateStaffUserInput,
    OAuthClient,
    OrganizationPatch,
    OrganizationPayload,
    RegisterClientInput,
    StaffUser,
    StaffUserPayload,
)
from schema.context import Context
from schema.writes import run_write


@strawberry.type
class AdminMutations:
    @strawberry.mutation
    async def create_organization(
        self, info: Info[Context, None], input: CreateOrganizationInput
    ) -> OrganizationPayload:
        ctx = info.context
        view, errors = await run_write(
            ctx,
            lambda s: admin.create_organization(s, ctx.principal, input.to_fields()),
            not_found_path=("input",),
        )
        return OrganizationPayload.of(view, errors)

    @strawberry.mutation
    async def update_organization(
        self, info: Info[Context, None], slug: str, patch: OrganizationPatch
    ) -> OrganizationPayload:
        ctx = info.context
        view, errors = await run_write(
            ctx,
            lambda s: admin.update_organization(s, ctx.principal, slug, patch.to_fields()),
            not_found_path=("slug",),
        )
        return OrganizationPayload.of(view, errors)

    @strawberry.mutation(description="Its clients are refused and their tokens stop working.")
    async def disable_organization(
        self, info: Info[Context, None], slug: str
    ) -> OrganizationPayload:
        ctx = info.context
        view, errors = await run_write(
            ctx,
            lambda s: admin.disable_organization(s, ctx.principal, slug),
            not_found_path=("slug",),
        )
        return OrganizationPayload.of(view, errors)

    @strawberry.mutation(description="Returns the secret once (none when jwks is given).")
    async def register_client(
        self, info: Info[Context, None], input: RegisterClientInput
    ) -> ClientSecretPayload:
        ctx = info.context
        fields = admin.RegisterFields(input.organization, input.name, input.scopes, input.jwks)
        done, errors = await run_write(
            ctx,
            lambda s: admin.register_client(s, ctx.principal, fields),
            not_found_path=("input", "organization"),
        )
        return ClientSecretPayload.of(done, errors)

    @strawberry.mutation(description="The previous secret keeps working overlapSeconds.")
    async def rotate_client_secret(
        self,
        info: Info[Context, None],
        client_id: str,
        overlap_seconds: int = DEFAULT_ROTATION_OVERLAP,
    ) -> ClientSecretPayload:
        ctx = info.context
        done, errors = await run_write(
            ctx,
            lambda s: admin.rotate_client_secret(s, ctx.principal, client_id, overlap_seconds),
            not_found_path=("clientId",),
        )
        return ClientSecretPayload.of(done, errors)

    @strawberry.mutation
    async def disable_client(self, info: Info[Context, None], client_id: str) -> ClientPayload:
        ctx = info.context
        view, errors = await run_write(
            ctx,
            lambda s: admin.disable_client(s, ctx.principal, client_id),
            not_found_path=("clientId",),
        )
        return ClientPayload(
            client=None if view is None else OAuthClient.of(view), user_errors=errors
        )

    @strawberry.mutation(description="Returns a random initial password, shown this once.")
    async def create_staff_user(
        self, info: Info[Context, None], input: CreateStaffUserInput
    ) -> CreatedStaffUserPayload:
        ctx = info.context
        done, errors = await run_write(
            ctx,
            lambda s: admin.add_staff_user(s, ctx.principal, input.to_fields()),
            not_found_path=("input",),
        )
        return CreatedStaffUserPayload.of(done, errors)

    @strawberry.mutation(description="The user can no longer sign in; their tokens stop.")
    async def disable_staff_user(self, info: Info[Context, None], email: str) -> StaffUserPayload:
        ctx = info.context
        view, errors = await run_write(
            ctx,
            lambda s: admin.disable_staff_user(s, ctx.principal, email),
            not_found_path=("email",),
        )
        return StaffUserPayload(
            staff_user=None if view is None else StaffUser.of(view), user_errors=errors
        )
