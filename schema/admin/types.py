"""Admin types and inputs: public shapes built from hub views, never from table rows."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from hub.admin import (
    ClientView,
    CreatedStaffUser,
    OrganizationFields,
    OrganizationView,
    RegisteredClient,
    StaffUserFields,
    StaffUserView,
)
from schema.common import OrganizationKind, UserError


@strawberry.type(description="An organization as administrators see it.")
class AdminOrganization:
    slug: str
    name: str
    kind: OrganizationKind
    attributes: JSON
    active: bool
    created_at: datetime

    @classmethod
    def of(cls, view: OrganizationView) -> AdminOrganization:
        return cls(
            slug=view.slug,
            name=view.name,
            kind=OrganizationKind(view.kind),
            attributes=view.attributes,  # type: ignore[arg-type]  # JSON scalar: a dict
            active=view.active,
            created_at=view.created_at,
        )


@strawberry.type(description="An OAuth client; its secret is never shown again.")
class OAuthClient:
    client_id: str
    name: str
    organization: str = strawberry.field(description="The organization's slug")
    scopes: list[str]
    auth_method: str = strawberry.field(description="client_secret_basic or private_key_jwt")
    active: bool
    created_at: datetime
    previous_secret_valid_until: datetime | None

    @classmethod
    def of(cls, view: ClientView) -> OAuthClient:
        return cls(
            client_id=view.client_id,
            name=view.name,
            organization=view.organization_slug,
            scopes=view.scopes,
            auth_method=view.auth_method,
            active=view.active,
            created_at=view.created_at,
            previous_secret_valid_until=view.previous_secret_valid_until,
        )


@strawberry.input
class CreateOrganizationInput:
    slug: str
    name: str
    kind: OrganizationKind
    attributes: JSON | None = None

    def to_fields(self) -> OrganizationFields:
        return OrganizationFields(
            slug=self.slug, name=self.name, kind=self.kind.value, attributes=self.attributes
        )


@strawberry.input(description="Only the fields given are changed; attributes are replaced.")
class OrganizationPatch:
    name: str | None = None
    attributes: JSON | None = None

    def to_fields(self) -> OrganizationFields:
        return OrganizationFields(name=self.name, attributes=self.attributes)


@strawberry.input
class RegisterClientInput:
    organization: str = strawberry.field(description="The organization's slug")
    name: str
    scopes: list[str]
    jwks: JSON | None = strawberry.field(
        default=None, description="Public keys (a JWKS): the client uses private_key_jwt"
    )


@strawberry.type
class OrganizationPayload:
    organization: AdminOrganization | None
    user_errors: list[UserError]

    @classmethod
    def of(cls, view: OrganizationView | None, errors: list[UserError]) -> OrganizationPayload:
        organization = None if view is None else AdminOrganization.of(view)
        return cls(organization=organization, user_errors=errors)


@strawberry.type
class ClientPayload:
    client: OAuthClient | None
    user_errors: list[UserError]


@strawberry.type
class ClientSecretPayload:
    client: OAuthClient | None
    client_secret: str | None = strawberry.field(
        description="Shown this once; null for a private_key_jwt client"
    )
    user_errors: list[UserError]

    @classmethod
    def of(cls, done: RegisteredClient | None, errors: list[UserError]) -> ClientSecretPayload:
        if done is None:
            return cls(client=None, client_secret=None, user_errors=errors)
        client = OAuthClient.of(done.client)
        return cls(client=client, client_secret=done.secret, user_errors=errors)


@strawberry.type
class StaffUser:
    email: str
    name: str
    organization: str
    roles: list[str]
    active: bool
    created_at: datetime

    @classmethod
    def of(cls, view: StaffUserView) -> StaffUser:
        return cls(
            email=view.email,
            name=view.name,
            organization=view.organization_slug,
            roles=view.roles,
            active=view.active,
            created_at=view.created_at,
        )


@strawberry.input
class CreateStaffUserInput:
    organization: str = strawberry.field(description="An operator or department slug")
    email: str
    name: str
    roles: list[str] = strawberry.field(description="admin, policy_editor, analyst, member")

    def to_fields(self) -> StaffUserFields:
        return StaffUserFields(self.organization, self.email, self.name, list(self.roles))


@strawberry.type
class StaffUserPayload:
    staff_user: StaffUser | None
    user_errors: list[UserError]


@strawberry.type
class CreatedStaffUserPayload:
    staff_user: StaffUser | None
    initial_password: str | None = strawberry.field(
        description="Shown this once, for the person's first sign-in"
    )
    user_errors: list[UserError]

    @classmethod
    def of(cls, done: CreatedStaffUser | None, errors: list[UserError]) -> CreatedStaffUserPayload:
        if done is None:
            return cls(staff_user=None, initial_password=None, user_errors=errors)
        return cls(
            staff_user=StaffUser.of(done.user),
            initial_password=done.initial_password,
            user_errors=errors,
        )
